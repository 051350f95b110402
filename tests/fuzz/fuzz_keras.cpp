// libFuzzer harness of the Keras SimpleRNN reader (host/io/keras.hpp: read_keras, what
// `eirnn spectrum --keras FILE` calls): layer order, the walk of the weight groups, shapes, the
// Dense readout, NaN/inf checks.
#include <cstdint>

#include "host/io/keras.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const eirnn::fuzz::InputFile& in = eirnn::fuzz::input_file("model.h5");
    in.write(data, size);
    eirnn::fuzz::run([&] { (void)eirnn::read_keras(in.path()); });
    return 0;
}
