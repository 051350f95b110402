// libFuzzer harness of `eirnn spectrum --h5 FILE:DATASET` (host/io/keras.hpp: read_h5_matrices).
// The input is the dataset path, a newline, then the file's bytes: both the path (with its ':'
// rule) and the file are fuzzed.
#include <cstdint>
#include <cstring>
#include <string>

#include "host/io/keras.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const void* nl = std::memchr(data, '\n', size < 256 ? size : 256);
    if (!nl) return 0;
    const std::size_t n = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data);
    std::string dataset(reinterpret_cast<const char*>(data), n);
    if (dataset.find('\0') != std::string::npos) return 0;  // not expressible on a command line
    const eirnn::fuzz::InputFile& in = eirnn::fuzz::input_file("matrices.h5");
    in.write(data + n + 1, size - n - 1);
    eirnn::fuzz::run([&] { (void)eirnn::read_h5_matrices(in.path() + ":" + dataset); });
    return 0;
}
