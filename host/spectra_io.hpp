// Spectra and metrics of a results-file group (docs/FORMAT.md): eig_initial / eig_projected / eig
// and the metrics_initial / metrics_projected / metrics tables, computed and written in one call,
// with the name of the eigensolver that computed them.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>

#include "host/config.hpp"
#include "host/eig_solver.hpp"
#include "host/spectra.hpp"

namespace eirnn {

/// The matrices of one group (all row-major, W[i][j] = j -> i).
struct GroupMatrices {
    int K = 0, N = 0;
    const float* w_initial = nullptr;   // (K,N,N)
    const float* w_final = nullptr;     // (K,N,N)
    const std::int8_t* sign = nullptr;  // (K,N)
    const float* mask = nullptr;        // (K,N,N) 1/0, or null
    DaleMode dale = DaleMode::Project;
    DaleAxis axis = DaleAxis::Outgoing;
    bool project_init = false;
};

/// Computes and writes (replacing) eig_initial, eig_projected, eig and the three metrics groups,
/// and the group attributes eig_method (the solver's name, "lapack" without one) and
/// eig_fallbacks (matrices the solver's fallback recomputed for this group). solver: null = LAPACK.
void write_group_spectra(hid_t group, const GroupMatrices& g, int outliers, int threads = 0,
                         EigSolver* solver = nullptr);

/// One metrics table as group `name` with one (K) float64 dataset per column, attribute `outliers`.
void write_metrics(hid_t group, const std::string& name, const MetricsTable& t, int outliers);
MetricsTable read_metrics(hid_t group, const std::string& name);

}  // namespace eirnn
