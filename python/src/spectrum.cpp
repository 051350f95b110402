// spectrum(): eigenvalues and singular values (fp64) and the study's metrics of (K,N,N) matrices,
// by the function `eirnn spectrum --h5/--keras` uses (analyse_matrices): signs inferred from
// single-signed columns, the solver chosen by --backend / --eig-method. The GIL is released while
// it runs; a C-contiguous float64 array is read in place.
#include <nanobind/stl/string.h>

#include "host/cli/options.hpp"
#include "host/core/error.hpp"
#include "host/io/keras.hpp"
#include "python/src/common.hpp"

namespace eirnn::py {

namespace {

using Matrices = nb::ndarray<const double, nb::ndim<3>, nb::c_contig, nb::device::cpu>;

nb::tuple spectrum(Matrices w, int outliers, const std::string& method, const std::string& backend,
                   int threads) {
    if (outliers < 0) throw InputError("--outliers: must be >= 0");
    if (threads < 0) throw InputError("--threads: must be >= 0 (0 = all cores)");
    const std::size_t K = w.shape(0), N = w.shape(1);
    if (w.shape(2) != N)
        throw InputError("W: matrices must be square, got shape (" + std::to_string(K) + ", " +
                         std::to_string(N) + ", " + std::to_string(w.shape(2)) + ")");
    if (K == 0 || N == 0) throw InputError("W: empty (K and N must be >= 1)");
    const BackendKind kind = cli::parse_backend_option(backend);
    const EigMethod how = cli::parse_eig_method_option(method);
    std::vector<cplx> eig(K * N);
    std::vector<double> sv(K * N);
    std::vector<std::int8_t> sign;
    MetricsTable t;
    std::string solver_name;
    {
        nb::gil_scoped_release release;
        auto solver = make_eig_solver(kind, how, threads);
        t = analyse_matrices(w.data(), static_cast<int>(K), static_cast<int>(N), outliers,
                             eig.data(), threads, *solver, &sign, sv.data());
        solver_name = solver->name();
    }
    nb::dict metrics;
    for (std::size_t c = 0; c < t.names.size(); ++c)
        metrics[t.names[c].c_str()] = take(std::move(t.columns[c]), {K});
    return nb::make_tuple(take(std::move(eig), {K, N}), metrics, take(std::move(sign), {K, N}),
                          solver_name, take(std::move(sv), {K, N}));
}

}  // namespace

void bind_spectrum(nb::module_& m) {
    m.def("spectrum", &spectrum, nb::arg("w").noconvert(), nb::arg("outliers") = 6,
          nb::arg("method") = "auto", nb::arg("backend") = "auto", nb::arg("threads") = 0,
          "(eig (K,N) complex128, metrics {name: (K,)}, inferred signs (K,N) int8, solver, "
          "singular values (K,N) float64 descending) of K matrices (K,N,N) float64 "
          "C-contiguous.");
}

}  // namespace eirnn::py
