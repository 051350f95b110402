// libFuzzer harness of the sweep file parser (host/sweep/sweep.hpp: parse_sweep, what `eirnn sweep`
// calls on the file's text): TOML syntax, keys, types, ranges and the expansion into cells.
#include <cstdint>
#include <string_view>

#include "host/sweep/sweep.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    eirnn::fuzz::run([&] {
        eirnn::Sweep s = eirnn::parse_sweep(
            std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
        // What the CLI computes from a parsed sweep before training: the plan's hash and labels.
        (void)s.hash();
        if (!s.cells.empty()) (void)eirnn::cell_label(s, s.cells.front());
    });
    return 0;
}
