// Helpers shared by the binding files of eirnn._core: engine buffers handed to numpy without a
// copy, and Python keywords parsed by the CLI's own options (host/cli/options.hpp), so that
// every keyword gets the flag's parsing, defaults, validation and error message.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <CLI/CLI.hpp>
#include <complex>
#include <string>
#include <utility>
#include <vector>

namespace eirnn::py {

namespace nb = nanobind;

/// A numpy array that takes over `v` (no copy): the vector lives until the array is freed.
template <class T>
nb::object take(std::vector<T>&& v, std::vector<std::size_t> shape) {
    auto* heap = new std::vector<T>(std::move(v));
    nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
    return nb::cast(nb::ndarray<nb::numpy, T>(heap->data(), shape.size(), shape.data(), owner));
}

/// A numpy array viewing `data`, kept alive by `owner` (the Python object holding the buffer).
template <class T>
nb::object view(const T* data, std::vector<std::size_t> shape, nb::handle owner) {
    return nb::cast(
        nb::ndarray<nb::numpy, T>(const_cast<T*>(data), shape.size(), shape.data(), owner));
}

/// Parses Python keywords as the options of `app` (keyword e_frac is the flag --e-frac): values
/// become the flag's text (floats by repr, so the same double), True switches a flag on, False
/// and None leave the default, lists repeat a repeatable option. Unknown keywords: TypeError
/// naming `function`. CLI11's parse errors propagate (ValueError with the CLI's message).
void parse_keywords(CLI::App& app, const char* function, nb::handle kwargs);

}  // namespace eirnn::py
