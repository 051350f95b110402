// Guards against requests the machine cannot serve: size arithmetic checked for overflow (every
// reader multiplies a declared shape through here), the memory a command will need against the
// memory available (MemAvailable, or EIRNN_MEMORY_LIMIT), and thread counts clamped to the machine.
// Failures are InputError naming the file or flag: exit 2, before anything is allocated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/core/config.hpp"

namespace eirnn {

/// a * b, or nullopt when it does not fit in 64 bits.
std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b);

/// "4294967296x4294967296" ("scalar" for rank 0).
std::string shape_text(const std::vector<std::uint64_t>& dims);

/// Elements of a shape times elem_size, in bytes. InputError "<what>: shape AxB ... is too large"
/// when the product overflows 64 bits or exceeds the memory limit (memory_limit()).
std::uint64_t checked_bytes(const std::vector<std::uint64_t>& dims, std::uint64_t elem_size,
                            const std::string& what);

/// Bytes this process may allocate: EIRNN_MEMORY_LIMIT when set (bytes, or with a K, M, G or T
/// suffix, powers of 1024), else MemAvailable of /proc/meminfo; 0 when neither is known (no
/// limit). InputError when EIRNN_MEMORY_LIMIT is not a number.
std::uint64_t memory_limit();

/// "1.5 GiB", "12.0 MiB", "512 B".
std::string bytes_text(double bytes);

/// Throws InputError "<what> needs about X, more than the Y available (<hint>)" when bytes exceeds
/// memory_limit().
void check_memory(double bytes, const std::string& what, const std::string& hint);

/// Host bytes `eirnn train` needs for a group (trial set, parameters and moments of every network,
/// per-thread workspaces, the results and spectra), a slight overestimate.
double train_memory_bytes(const GroupConfig& cfg, int threads);
/// Host bytes of a trial set of `trials` trials of `task` (as `eirnn data` writes it).
double data_memory_bytes(const TaskParams& task, long long trials);
/// check_memory of train_memory_bytes with the flags to change in the message.
void check_train_memory(const GroupConfig& cfg, const std::string& what = "this group");

/// A --threads value checked: 0 (every hardware thread) stays 0; above 4x the hardware threads it
/// is clamped there, with one note on stderr. Negative: InputError naming `flag`.
int resolve_threads(long long requested, const std::string& flag = "--threads");
/// The strict check of a numeric command-line value ("" when valid, else the reason): decimal
/// only, not empty, no trailing text, no sign when unsigned, finite when floating.
std::string check_number_text(const std::string& text, bool floating, bool is_unsigned);

/// Hardware threads (at least 1).
int hardware_threads();

}  // namespace eirnn
