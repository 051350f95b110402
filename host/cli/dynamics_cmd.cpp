// `eirnn dynamics`: fixed points, slow points and their stability for every network of results
// files (host/io/dynamics_io.hpp), written in place atomically (the `dynamics/` subgroup of each
// group, docs/FORMAT.md), with a summary per network on stdout (table, csv or json). Every file is
// read and checked, and the solver made, before anything is computed.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/analysis/eig_solver.hpp"
#include "host/cli/commands.hpp"
#include "host/cli/options.hpp"
#include "host/cli/table.hpp"
#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/io/dynamics_io.hpp"

namespace eirnn::cli {
namespace {

struct DynamicsArgs {
    std::vector<std::string> results;
    DynamicsOptions d;
    std::string format = "table";
    int threads = 0;
    std::string backend = "auto", eig_method = "auto";
};

const char* stability_name(Stability s) {
    switch (s) {
        case Stability::Stable:
            return "stable";
        case Stability::Saddle:
            return "saddle";
        case Stability::Unstable:
            return "unstable";
    }
    return "?";
}

const char* status_name(std::uint8_t s) {
    return s == 0 ? "ok" : s == 1 ? "diverged" : "not-finite";
}

struct NetworkRow {
    std::string file, group, condition;
    int k;
    std::uint8_t status;
    const PointSet* ps;
};

/// Largest spectral radius of J over the stable fixed points (NaN without one).
double rho_stable(const PointSet& ps) {
    double r = NAN;
    for (int i = 0; i < ps.size(); ++i)
        if (ps.kind[i] == PointKind::Fixed && ps.stability[i] == Stability::Stable)
            r = std::isnan(r) ? ps.rho[i] : std::max(r, ps.rho[i]);
    return r;
}

int count_fixed(const PointSet& ps, Stability s) {
    int n = 0;
    for (int i = 0; i < ps.size(); ++i) n += ps.kind[i] == PointKind::Fixed && ps.stability[i] == s;
    return n;
}

void print_network_table(const std::vector<NetworkRow>& rows) {
    std::vector<std::vector<std::string>> cells = {{"network", "condition", "status", "fixed",
                                                    "stable", "saddle", "unstable", "slow",
                                                    "rho_J(stable)", "rho_J(fixed points)"}};
    for (const NetworkRow& r : rows) {
        std::string rhos;
        for (int i = 0; i < r.ps->size(); ++i)
            if (r.ps->kind[i] == PointKind::Fixed) {
                if (!rhos.empty()) rhos += ' ';
                rhos += format_number("%.3f", r.ps->rho[i]);
            }
        cells.push_back({r.file + " " + r.group + "[" + std::to_string(r.k) + "]", r.condition,
                         status_name(r.status), std::to_string(r.ps->count(PointKind::Fixed)),
                         std::to_string(count_fixed(*r.ps, Stability::Stable)),
                         std::to_string(count_fixed(*r.ps, Stability::Saddle)),
                         std::to_string(count_fixed(*r.ps, Stability::Unstable)),
                         std::to_string(r.ps->count(PointKind::Slow)),
                         format_number("%.4f", rho_stable(*r.ps)), rhos});
    }
    print_columns(cells, /*last_is_text=*/true);
}

void print_network_csv(const std::vector<NetworkRow>& rows) {
    std::printf(
        "source,group,condition,k,status,n_fixed,n_stable,n_saddle,n_unstable,n_slow,"
        "rho_J_stable_max\n");
    for (const NetworkRow& r : rows)
        std::printf("%s,%s,%s,%d,%s,%d,%d,%d,%d,%d,%s\n", csv_field(r.file).c_str(),
                    r.group.c_str(), csv_field(r.condition).c_str(), r.k, status_name(r.status),
                    r.ps->count(PointKind::Fixed), count_fixed(*r.ps, Stability::Stable),
                    count_fixed(*r.ps, Stability::Saddle), count_fixed(*r.ps, Stability::Unstable),
                    r.ps->count(PointKind::Slow),
                    format_number("%.17g", rho_stable(*r.ps)).c_str());
}

void print_network_json(const std::vector<NetworkRow>& rows) {
    nlohmann::json out = nlohmann::json::array();
    for (const NetworkRow& r : rows) {
        nlohmann::json pts = nlohmann::json::array();
        for (int i = 0; i < r.ps->size(); ++i)
            pts.push_back({{"kind", r.ps->kind[i] == PointKind::Fixed ? "fixed" : "slow"},
                           {"stability", stability_name(r.ps->stability[i])},
                           {"n_unstable", r.ps->n_unstable[i]},
                           {"q", r.ps->q[i]},
                           {"rho_J", r.ps->rho[i]},
                           {"basin", r.ps->basin[i]}});
        out.push_back({{"source", r.file},
                       {"group", r.group},
                       {"condition", r.condition},
                       {"k", r.k},
                       {"status", status_name(r.status)},
                       {"n_fixed", r.ps->count(PointKind::Fixed)},
                       {"n_stable", count_fixed(*r.ps, Stability::Stable)},
                       {"n_slow", r.ps->count(PointKind::Slow)},
                       {"points", pts}});
    }
    std::printf("%s\n", out.dump(2).c_str());
}

void run(DynamicsArgs& a) {
    if (a.results.empty()) throw InputError("dynamics: no results file given");
    a.threads = resolve_threads(a.threads);
    validate(a.d.settings);
    const BackendKind backend = parse_backend_option(a.backend);
    const EigMethod method = parse_eig_method_option(a.eig_method);
    std::vector<DynamicsFile> files;
    for (const std::string& p : a.results) {
        bool seen = false;
        for (const DynamicsFile& f : files) {
            std::error_code ec;
            seen |= std::filesystem::equivalent(f.path, p, ec) && !ec;
        }
        if (!seen) files.push_back(read_dynamics_file(p));
    }
    for (const DynamicsFile& f : files)
        for (const DynamicsGroupData& g : f.groups) try {
                input_conditions(a.d.inputs, g.cfg.task, g.I);
            } catch (const InputError& e) {
                throw InputError(f.path.string() + ": groups/" + g.id + ": " + e.what());
            }
    std::unique_ptr<EigSolver> solver = make_eig_solver(backend, method, a.threads);
    std::unique_ptr<DynamicsSearch> search = make_dynamics_search(backend, a.threads);
    std::vector<std::vector<GroupDynamics>> results;
    for (const DynamicsFile& f : files) {
        results.push_back(update_file_dynamics(f, a.d.inputs, a.d.settings, a.threads, solver.get(),
                                               search.get()));
        for (const GroupDynamics& d : results.back())
            for (const std::string& note : d.notes)
                std::fprintf(stderr, "%s: %s\n", f.path.c_str(), note.c_str());
    }
    std::vector<NetworkRow> rows;
    for (std::size_t i = 0; i < files.size(); ++i)
        for (const GroupDynamics& d : results[i])
            for (std::size_t c = 0; c < d.conditions.size(); ++c)
                for (int k = 0; k < d.K; ++k)
                    rows.push_back({files[i].path.string(), d.id, d.conditions[c].name, k,
                                    d.status[c * d.K + k], &d.sets[c * d.K + k]});
    if (a.format == "csv")
        print_network_csv(rows);
    else if (a.format == "json")
        print_network_json(rows);
    else
        print_network_table(rows);
}

}  // namespace

void check_dynamics_options(const DynamicsOptions& d, const std::vector<TaskParams>& tasks) {
    validate(d.settings);
    for (const TaskParams& t : tasks) input_conditions(d.inputs, t, task_inputs(t));
}

void run_dynamics_on(const std::string& path, const DynamicsOptions& d, BackendKind backend,
                     EigMethod method, int threads) {
    DynamicsFile f = read_dynamics_file(path);
    std::unique_ptr<EigSolver> solver = make_eig_solver(backend, method, threads);
    std::unique_ptr<DynamicsSearch> search = make_dynamics_search(backend, threads);
    std::vector<GroupDynamics> res =
        update_file_dynamics(f, d.inputs, d.settings, threads, solver.get(), search.get());
    int networks = 0, skipped = 0, two_stable = 0;
    double seconds = 0;
    for (const GroupDynamics& g : res) {
        for (const std::string& note : g.notes)
            std::fprintf(stderr, "%s: %s\n", path.c_str(), note.c_str());
        seconds += g.seconds;
        for (int k = 0; k < g.K; ++k) {  // the first condition
            ++networks;
            skipped += g.status[k] != 0;
            two_stable += g.sets[k].count_stable_fixed() >= 2;
        }
    }
    std::printf(
        "dynamics: %d networks (%d skipped), %d with >= 2 stable fixed points at %s, %.1f s -> "
        "%s\n",
        networks, skipped, two_stable,
        res.empty() || res[0].conditions.empty() ? "?" : res[0].conditions[0].name.c_str(), seconds,
        path.c_str());
    std::fflush(stdout);
}

void add_dynamics_command(CLI::App& app) {
    auto args = std::make_shared<DynamicsArgs>();
    CLI::App* sub = app.add_subcommand(
        "dynamics",
        "Fixed points and slow points of every trained network of results files (Sussillo & "
        "Barak 2013): minimises q(h) = 1/2 |F(h) - h|^2 for F(h) = (1-alpha) h + alpha "
        "tanh(W h + W_in u + b) from initial states sampled from each network's held-out "
        "trajectories plus noise (batched L-BFGS in double precision, on the CPU or one warp per "
        "initial state on the GPU, then Newton refinement), "
        "de-duplicates, and classifies each point by the eigenvalues of its Jacobian "
        "(stable: no |lambda| > 1, saddle, unstable). Results files are updated in place "
        "(the dynamics/ subgroup of each group; docs/FORMAT.md). Diverged networks are "
        "skipped with a note on stderr.");
    sub->add_option("results", args->results, "eirnn results files")->required();
    args->d.add(sub);
    sub->add_option("--format", args->format, "summary on stdout, one row per network")
        ->check(CLI::IsMember({"table", "csv", "json"}))
        ->capture_default_str();
    sub->add_option("--threads", args->threads, "CPU threads (0 = all cores)")
        ->capture_default_str();
    sub->add_option("--backend", args->backend,
                    "auto | cpu | cuda: where the L-BFGS search from the initial states and the "
                    "Jacobian eigenvalues run (auto: cuda when a device is usable; clustering, "
                    "Newton refinement and classification run on the CPU)")
        ->capture_default_str();
    sub->add_option("--eig-method", args->eig_method, eig_method_help())->capture_default_str();
    sub->callback([args] { run(*args); });
}

}  // namespace eirnn::cli
