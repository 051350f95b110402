// Spectra and metrics of a results-file group (docs/FORMAT.md): three stages (initial, after one
// Dale projection of the initial matrix, trained), each an eigenvalue dataset (K,N) complex128, a
// singular-value dataset (K,N) float64 and a metrics group of (K) float64 columns with the
// attribute `outliers`; the group attributes `eig_method` and `eig_fallbacks` say which solver
// computed the eigenvalues.
#include "host/io/spectra_io.hpp"

#include <algorithm>
#include <vector>

#include "host/core/error.hpp"
#include "host/core/model.hpp"
#include "host/io/h5.hpp"

namespace eirnn {
namespace {

/// True when the stage "after the first projection" differs from the initial matrix.
bool projection_changes_initial(const GroupMatrices& g) {
    return g.dale == DaleMode::Project && !g.project_init;
}

}  // namespace

GroupSpectra compute_group_spectra(const GroupMatrices& g, int outliers, int threads,
                                   EigSolver* solver) {
    if (g.K <= 0 || g.N <= 0 || !g.w_initial || !g.w_final || !g.sign)
        throw Error("write_group_spectra: incomplete group matrices");
    const std::size_t K = g.K, N = g.N, nn = N * N;
    std::span<const std::int8_t> sign(g.sign, K * N);
    GroupSpectra s;
    s.K = g.K;
    s.N = g.N;
    s.eig_initial.resize(K * N);
    s.sv_initial.resize(K * N);
    const std::int64_t fallbacks_before = solver ? solver->stats().fallbacks : 0;

    s.metrics_initial = analyse(g.w_initial, g.K, g.N, sign, outliers, s.eig_initial.data(),
                                threads, solver, s.sv_initial.data());

    if (projection_changes_initial(g)) {
        std::vector<float> projected(g.w_initial, g.w_initial + K * nn);
        std::vector<float> sign_f(N);
        for (std::size_t k = 0; k < K; ++k) {
            std::transform(g.sign + k * N, g.sign + (k + 1) * N, sign_f.begin(),
                           [](std::int8_t v) { return static_cast<float>(v); });
            project_dale(projected.data() + k * nn, g.N, sign_f.data(), g.axis,
                         g.mask ? g.mask + k * nn : nullptr);
        }
        s.eig_projected.resize(K * N);
        s.sv_projected.resize(K * N);
        s.metrics_projected =
            analyse(projected.data(), g.K, g.N, sign, outliers, s.eig_projected.data(), threads,
                    solver, s.sv_projected.data());
    } else {
        s.eig_projected = s.eig_initial;
        s.sv_projected = s.sv_initial;
        s.metrics_projected = s.metrics_initial;
    }

    s.eig.resize(K * N);
    s.sv.resize(K * N);
    s.metrics =
        analyse(g.w_final, g.K, g.N, sign, outliers, s.eig.data(), threads, solver, s.sv.data());
    s.eig_method = solver ? solver->name() : std::string("lapack");
    s.eig_fallbacks = solver ? solver->stats().fallbacks - fallbacks_before : std::int64_t{0};
    return s;
}

void write_group_spectra(hid_t group, const GroupSpectra& s, int outliers) {
    const std::vector<hsize_t> eig_dims = {static_cast<hsize_t>(s.K), static_cast<hsize_t>(s.N)};
    h5::write(group, "eig_initial", s.eig_initial.data(), eig_dims);
    write_metrics(group, "metrics_initial", s.metrics_initial, outliers);
    h5::write(group, "eig_projected", s.eig_projected.data(), eig_dims);
    write_metrics(group, "metrics_projected", s.metrics_projected, outliers);
    h5::write(group, "eig", s.eig.data(), eig_dims);
    write_metrics(group, "metrics", s.metrics, outliers);
    h5::write(group, "sv_initial", s.sv_initial.data(), eig_dims);
    h5::write(group, "sv_projected", s.sv_projected.data(), eig_dims);
    h5::write(group, "sv", s.sv.data(), eig_dims);
    h5::write_attr(group, "eig_method", s.eig_method);
    h5::write_attr(group, "eig_fallbacks", s.eig_fallbacks);
}

void write_group_spectra(hid_t group, const GroupMatrices& g, int outliers, int threads,
                         EigSolver* solver) {
    write_group_spectra(group, compute_group_spectra(g, outliers, threads, solver), outliers);
}

void write_metrics(hid_t group, const std::string& name, const MetricsTable& t, int outliers) {
    if (t.names.size() != t.columns.size())
        throw Error("write_metrics: " + name + " has " + std::to_string(t.names.size()) +
                    " names but " + std::to_string(t.columns.size()) + " columns");
    h5::remove(group, name);
    h5::Id g = h5::require_group(group, name);
    for (std::size_t c = 0; c < t.names.size(); ++c)
        h5::write(g, t.names[c], t.columns[c].data(), {t.columns[c].size()});
    h5::write_attr(g, "outliers", static_cast<std::int64_t>(outliers));
}

MetricsTable read_metrics(hid_t group, const std::string& name) {
    h5::Id g = h5::open_group(group, name);
    std::vector<std::string> present = h5::children(g);
    MetricsTable t;
    // Known columns first, in metric_names() order; then any others, sorted.
    for (const std::string& n : metric_names())
        if (std::find(present.begin(), present.end(), n) != present.end()) t.names.push_back(n);
    for (const std::string& n : present)
        if (std::find(t.names.begin(), t.names.end(), n) == t.names.end()) t.names.push_back(n);
    for (const std::string& n : t.names) {
        h5::Array<double> a = h5::read_double(g, n);
        if (a.dims.size() != 1) throw InputError(name + "/" + n + ": a metrics column must be 1-D");
        if (!t.columns.empty() && a.data.size() != t.columns.front().size())
            throw InputError(name + ": columns of different lengths");
        t.columns.push_back(std::move(a.data));
    }
    return t;
}

}  // namespace eirnn
