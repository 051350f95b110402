// libFuzzer harness of the results-file reader (host/io/dynamics_io.hpp: read_dynamics_file, what
// `eirnn dynamics` calls on a file written by `eirnn train` or `eirnn sweep`): the root attributes,
// every group's `config` (JSON), the shapes and types of W_rec, W_in, b, seed and diverged, and the
// metrics tables (host/io/spectra_io.hpp: read_metrics, what `eirnn spectrum` reads back).
#include <cstdint>
#include <string>

#include "host/io/dynamics_io.hpp"
#include "host/io/h5.hpp"
#include "host/io/spectra_io.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const eirnn::fuzz::InputFile& in = eirnn::fuzz::input_file("results.h5");
    in.write(data, size);
    eirnn::fuzz::run([&] { (void)eirnn::read_dynamics_file(in.path()); });
    eirnn::fuzz::run([&] {
        namespace h5 = eirnn::h5;
        h5::Id f = h5::open_untrusted(in.path());
        if (!h5::exists(f, "groups")) return;
        h5::Id groups = h5::open_group(f, "groups");
        for (const std::string& id : h5::children(groups)) {
            h5::Id g = h5::open_group(groups, id);
            for (const char* name : {"metrics_initial", "metrics_projected", "metrics"})
                if (h5::exists(g, name)) (void)eirnn::read_metrics(g, name);
            for (const char* name : {"eig_initial", "eig_projected", "eig"})
                if (h5::exists(g, name)) (void)h5::read_complex(g, name);
        }
    });
    return 0;
}
