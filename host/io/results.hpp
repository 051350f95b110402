// The results file (docs/FORMAT.md): groups of trained networks with their spectra and metrics.
#pragma once
#include <hdf5.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "host/analysis/eig_solver.hpp"
#include "host/io/spectra_io.hpp"
#include "host/train/trainer.hpp"

namespace eirnn {

/// "g0000", "g0001", ... (inline: the sweep parser, which the fuzzers build alone, uses it)
inline std::string group_id(int index) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "g%04d", index);
    return buf;
}

/// Root attributes (format, format_version, eirnn_version).
void write_root_attrs(hid_t file);

/// Spectra and metrics of a trained group's three stages (initial, after the first projection,
/// trained), eigenvalues from `solver` (null: LAPACK).
GroupSpectra group_spectra(const GroupResult& r, int threads, EigSolver* solver = nullptr);

/// Writes one trained group under /groups/<id> (replacing it), with spectra and metrics when
/// r.cfg.spectra: `spectra` when given (from group_spectra), else computed with `solver` (null:
/// LAPACK). cell: the sweep axes' values, or null.
void write_group(hid_t file, const std::string& id, const GroupResult& r,
                 const nlohmann::json* cell, int threads, EigSolver* solver = nullptr,
                 const GroupSpectra* spectra = nullptr);

/// A whole results file with one group, written atomically (temporary file, then rename).
void write_results_file(const std::filesystem::path& path, bool overwrite, const GroupResult& r,
                        int threads, EigSolver* solver = nullptr,
                        const GroupSpectra* spectra = nullptr);

}  // namespace eirnn
