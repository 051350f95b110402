// Spectra and metrics of a results-file group (docs/FORMAT.md): eig_initial / eig_projected / eig,
// the singular values sv_initial / sv_projected / sv and the metrics_initial / metrics_projected /
// metrics tables, computed and written in one call, with the name of the eigensolver that computed
// the eigenvalues.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "host/analysis/eig_solver.hpp"
#include "host/analysis/spectra.hpp"
#include "host/core/config.hpp"

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

/// The three stages' spectra and metrics of a group, as written by write_group_spectra.
struct GroupSpectra {
    int K = 0, N = 0;
    std::vector<cplx> eig_initial, eig_projected, eig;  // (K,N) each
    std::vector<double> sv_initial, sv_projected, sv;   // (K,N) each, descending
    MetricsTable metrics_initial, metrics_projected, metrics;
    std::string eig_method;          // the solver's name, "lapack" without one
    std::int64_t eig_fallbacks = 0;  // matrices the solver's fallback recomputed
};

/// Computes the spectra and metrics of the three stages. solver: null = LAPACK.
GroupSpectra compute_group_spectra(const GroupMatrices& g, int outliers, int threads = 0,
                                   EigSolver* solver = nullptr);

/// Writes (replacing) eig_initial, eig_projected, eig, sv_initial, sv_projected, sv and the three
/// metrics groups, and the group attributes eig_method and eig_fallbacks.
void write_group_spectra(hid_t group, const GroupSpectra& s, int outliers);

/// compute_group_spectra, then write_group_spectra.
void write_group_spectra(hid_t group, const GroupMatrices& g, int outliers, int threads = 0,
                         EigSolver* solver = nullptr);

/// One metrics table as group `name` with one (K) float64 dataset per column, attribute `outliers`.
void write_metrics(hid_t group, const std::string& name, const MetricsTable& t, int outliers);
MetricsTable read_metrics(hid_t group, const std::string& name);

}  // namespace eirnn
