// eirnn: train many E/I (Dale's law) recurrent networks and analyse their spectra.
// Exit status: 0 success, 2 bad input (one line on stderr naming the problem), 1 other failures.
#include <cstdio>
#include <exception>
#include <new>

#include "host/cli/commands.hpp"
#include "host/core/error.hpp"
#include "kernels/cpu/blas.hpp"

int main(int argc, char** argv) {
    // OpenBLAS kernels of this CPU's instruction set where the packaged library does not know it.
    eirnn::cpu::use_the_cpus_openblas_kernels(argv);
    CLI::App app{
        "eirnn: train many excitatory/inhibitory recurrent networks at once and analyse the "
        "eigenvalue spectra of every one of them."};
    app.set_version_flag("--version", std::string(EIRNN_VERSION));
    app.require_subcommand(1);
    eirnn::cli::add_train_command(app);
    eirnn::cli::add_spectrum_command(app);
    eirnn::cli::add_dynamics_command(app);
    eirnn::cli::add_data_command(app);
    eirnn::cli::add_sweep_command(app);
    eirnn::cli::add_reproduce_command(app);
    eirnn::cli::add_merge_command(app);
    eirnn::cli::strict_numbers(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "eirnn: %s\n", e.what());
        return 2;
    } catch (const eirnn::InputError& e) {
        std::fprintf(stderr, "eirnn: %s\n", e.what());
        return 2;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr,
                     "eirnn: error: out of memory (the request needs more memory than the "
                     "machine has; lower the sizes, or see docs/RELIABILITY.md)\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "eirnn: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
