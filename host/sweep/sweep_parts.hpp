// The parts folder of a sweep (docs/SWEEP.md, docs/CLUSTER.md), shared by the run, the merge and
// the status: `<output>.parts/` holds sweep.json (the plan and its hash), one complete file per
// finished cell (gNNNN.h5), a marker per cell in training (gNNNN.running), the rounds a cell in
// training has finished (gNNNN.rounds, with until_learned), one record per shard that ran
// (shard-I-of-N.json) and the locks. Internal to the host library.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "host/sweep/sweep.hpp"
#include "host/train/trainer.hpp"

namespace eirnn::sweep_parts {

inline constexpr const char* kManifest = "sweep.json";

/// Exclusive lock on a file, released when the process ends (also by kill -9).
class LockFile {
public:
    /// Throws InputError `busy` when another process holds it.
    LockFile(const std::filesystem::path& path, const std::string& busy);
    LockFile(const LockFile&) = delete;
    LockFile& operator=(const LockFile&) = delete;
    ~LockFile();

private:
    int fd_ = -1;
};

/// "host" of this machine (for markers: a pid means something on its own host only).
std::string host_name();
/// Writes a small text file atomically (temporary named by host and pid, fsync, rename).
void write_text_atomic(const std::filesystem::path& path, const std::string& text);
std::string read_text(const std::filesystem::path& path);

/// The sweep hash stored in a results or part file, or "" when it has none or cannot be read.
std::string stored_hash(const std::filesystem::path& path);
/// True when `path` is a complete part of the sweep `hash` holding group `id`.
bool part_complete(const std::filesystem::path& path, const std::string& id,
                   const std::string& hash);

/// The sweep's description stored on the results file's root and on every part (without the
/// per-cell configs, which every group carries).
nlohmann::json sweep_attr(const Sweep& s);

/// "g0003 (task=and units=50)" for the cell of index i, from a plan JSON (Sweep::plan_json()).
std::string cell_name(const nlohmann::json& plan, int index);

/// Marker of a cell in training: "<parts>/gNNNN.running" with host, pid and shard.
std::filesystem::path running_marker(const std::filesystem::path& parts, int index);
/// True when the marker's process is known to be gone (same host, pid not alive).
bool marker_stale(const nlohmann::json& marker);

/// The finished rounds of a cell in training: "<parts>/gNNNN.rounds", written atomically after
/// every round that does not end the cell, so that an interrupted sweep continues the cell at its
/// next round instead of training it again (rounds equal one batch, so the result is the same).
std::filesystem::path rounds_file(const std::filesystem::path& parts, int index);
/// Saves the networks of the rounds so far (acc: all rounds appended, as the cell's group).
void save_rounds(const std::filesystem::path& path, const std::string& hash, const SweepCell& cell,
                 const GroupResult& acc);
/// The rounds saved for `cell` of the sweep `hash`, or nothing when there is no file, or it is of
/// another sweep or cell, or it is damaged (then it is removed: the cell starts over).
std::optional<GroupResult> load_rounds(const std::filesystem::path& path, const std::string& hash,
                                       const SweepCell& cell);

}  // namespace eirnn::sweep_parts
