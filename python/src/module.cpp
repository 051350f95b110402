// eirnn._core: the Python binding of the engine. Registers the areas (train, spectrum, data, io,
// sweep) and maps the engine's exceptions onto Python's: bad input (InputError and the CLI's
// parse errors) -> ValueError, a cancelled training -> KeyboardInterrupt, other engine failures
// -> RuntimeError. The messages are the CLI's one-line messages without its "eirnn: " prefix.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <CLI/CLI.hpp>
#include <algorithm>

#include "host/core/error.hpp"
#include "kernels/cpu/blas.hpp"
#include "python/src/common.hpp"

namespace eirnn::py {

void bind_train(nb::module_& m);
void bind_spectrum(nb::module_& m);
void bind_data(nb::module_& m);
void bind_io(nb::module_& m);
void bind_sweep(nb::module_& m);

namespace {

/// A keyword value that is neither a number nor a string.
struct NotText {};

std::string flag_text(const nb::handle v) {
    if (nb::isinstance<nb::bool_>(v)) return nb::cast<bool>(v) ? "true" : "false";
    if (nb::isinstance<nb::str>(v)) return nb::cast<std::string>(v);
    if (nb::hasattr(v, "__fspath__"))  // a path (pathlib.Path, os.DirEntry)
        return nb::cast<std::string>(nb::steal(PyOS_FSPath(v.ptr())));
    if (PyLong_Check(v.ptr()) || PyIndex_Check(v.ptr()))
        return nb::cast<std::string>(nb::str(nb::int_(nb::borrow(v))));
    if (PyFloat_Check(v.ptr()) || nb::hasattr(v, "__float__"))
        return nb::cast<std::string>(nb::repr(nb::float_(nb::borrow(v))));
    throw NotText{};
}

}  // namespace

void parse_keywords(CLI::App& app, const char* function, nb::handle kwargs) {
    std::vector<std::string> args;
    for (auto [k, v] : nb::borrow<nb::dict>(kwargs)) {
        const std::string key = nb::cast<std::string>(k);
        if (v.is_none()) continue;
        std::string flag = "--" + key;
        std::replace(flag.begin(), flag.end(), '_', '-');
        CLI::Option* opt = nullptr;
        if (key.find('-') == std::string::npos && key.size() > 1) {
            try {
                opt = app.get_option(flag);
            } catch (const CLI::OptionNotFound&) {
                opt = nullptr;
            }
        }
        if (!opt)
            throw nb::type_error(
                (std::string(function) + "() got an unexpected keyword argument '" + key + "'")
                    .c_str());
        if (opt->get_expected_max() == 0) {  // a flag
            if (!nb::isinstance<nb::bool_>(v))
                throw nb::type_error((key + ": expected True or False").c_str());
            if (nb::cast<bool>(v)) args.push_back(flag);
            continue;
        }
        try {
            if ((nb::isinstance<nb::list>(v) || nb::isinstance<nb::tuple>(v)) &&
                opt->get_expected_max() == CLI::detail::expected_max_vector_size) {
                for (nb::handle item : v) args.push_back(flag + "=" + flag_text(item));
            } else {
                args.push_back(flag + "=" + flag_text(v));
            }
        } catch (const NotText&) {
            throw nb::type_error((key + ": expected a number or a string, got " +
                                  nb::cast<std::string>(nb::str(v.type().attr("__name__"))))
                                     .c_str());
        }
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
    app.parse(args);
}

}  // namespace eirnn::py

NB_MODULE(_core, m) {
    namespace py = eirnn::py;
    m.doc() =
        "The eirnn engine (C++), bound for Python; use the package `eirnn`, see docs/PYTHON.md.";
    m.attr("__version__") = EIRNN_VERSION;
    nanobind::register_exception_translator([](const std::exception_ptr& p, void*) {
        try {
            std::rethrow_exception(p);
        } catch (const eirnn::Interrupted& e) {
            PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
        } catch (const eirnn::InputError& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const CLI::ParseError& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const eirnn::Error& e) {
            PyErr_SetString(PyExc_RuntimeError, e.what());
        }
    });
    py::bind_train(m);
    py::bind_spectrum(m);
    py::bind_data(m);
    py::bind_io(m);
    py::bind_sweep(m);
    // The CLI's choice of OpenBLAS kernels, for the tests of eirnn._openblas (which must decide
    // before this module loads OpenBLAS).
    m.def(
        "_better_openblas_core",
        [](const std::string& picked, bool avx512, bool avx2_fma) -> nanobind::object {
            const char* core = eirnn::cpu::better_openblas_core(picked, avx512, avx2_fma);
            return core ? nanobind::object(nanobind::str(core)) : nanobind::none();
        },
        nanobind::arg("picked"), nanobind::arg("avx512"), nanobind::arg("avx2_fma"));
}
