// `eirnn merge OUT.h5 PARTS...`: joins the part files of a sharded sweep (files or parts folders,
// e.g. copied back from several machines) into one results file, identical to an unsharded run's.
#include <cstdio>
#include <memory>

#include "host/cli/commands.hpp"
#include "host/sweep/sweep.hpp"

namespace eirnn::cli {

namespace {

struct MergeArgs {
    std::string out;
    std::vector<std::string> inputs;
    bool force = false;
};

void run(const MergeArgs& a) {
    std::vector<std::filesystem::path> in(a.inputs.begin(), a.inputs.end());
    MergeOptions opt;
    opt.force = a.force;
    opt.untrusted = true;
    MergeOutcome mo = merge_sweep(in, a.out, opt);
    std::printf("merged %d groups from %d part files (sweep hash %s) -> %s\n", mo.groups, mo.parts,
                mo.hash.c_str(), a.out.c_str());
}

}  // namespace

void add_merge_command(CLI::App& app) {
    auto args = std::make_shared<MergeArgs>();
    CLI::App* sub = app.add_subcommand(
        "merge",
        "Merge the part files of a sharded sweep (eirnn sweep --shard, docs/CLUSTER.md) into one "
        "results file, groups in cell order. Refuses parts of another sweep configuration, "
        "duplicate cells, and names missing cells.");
    sub->add_option("output", args->out, "results file to write")->required();
    sub->add_option("parts", args->inputs,
                    "part files (gNNNN.h5) or folders of them (<output>.parts)")
        ->required();
    sub->add_flag("--force", args->force, "replace an existing output that is not this sweep's");
    sub->callback([args] { run(*args); });
}

}  // namespace eirnn::cli
