// `eirnn reproduce`: the study of docs/MODEL.md §7 as a built-in sweep (presets
// examples/reproduce_<preset>.toml: quick, standard, paper; compiled in), then the report:
// DIR/results.h5, DIR/report.md. The report is tools/report of the source tree this binary was
// built from (EIRNN_REPORT overrides the script, EIRNN_PYTHON the interpreter, /usr/bin/python3 by
// default).
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "eirnn_presets.hpp"
#include "host/cli/commands.hpp"
#include "host/cli/sweep_cli.hpp"
#include "host/core/error.hpp"

namespace eirnn::cli {

namespace {
namespace fs = std::filesystem;

struct ReproduceArgs {
    std::string preset = "quick";
    std::string out;
    SweepCliOptions opt;
};

fs::path report_script() {
    if (const char* e = std::getenv("EIRNN_REPORT"); e && *e) return e;
    return fs::path(EIRNN_SOURCE_DIR) / "tools" / "report";
}

/// Runs the report on results, writing into dir; its stdout goes to our stderr so that stdout ends
/// with the one path this command prints. Throws Error when it cannot run or fails.
void run_report(const fs::path& results, const fs::path& dir) {
    const fs::path script = report_script();
    const char* py_env = std::getenv("EIRNN_PYTHON");
    const std::string python = py_env && *py_env ? py_env : "/usr/bin/python3";
    std::error_code ec;
    if (!fs::exists(script, ec))
        throw Error("report: " + script.string() +
                    " not found (set EIRNN_REPORT to tools/report); the "
                    "results are in " +
                    results.string());
    std::fflush(stdout);
    std::fflush(stderr);
    const std::string s = script.string(), r = results.string(), d = dir.string();
    pid_t pid = fork();
    if (pid < 0) throw Error("report: cannot start " + python);
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        const char* argv[] = {python.c_str(), s.c_str(), r.c_str(), "--out", d.c_str(), nullptr};
        execv(python.c_str(), const_cast<char* const*>(argv));
        std::fprintf(stderr, "eirnn: cannot run %s\n", python.c_str());
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw Error("report: lost the report process");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const std::string why = WIFEXITED(status)
                                    ? "exit status " + std::to_string(WEXITSTATUS(status))
                                    : "killed by signal " + std::to_string(WTERMSIG(status));
        throw Error("report failed (" + s + ", " + why + "); the results are in " + r);
    }
}

void run(ReproduceArgs& a) {
    const char* text = preset_text(a.preset);
    Sweep s = parse_sweep(text, "examples/reproduce_" + a.preset + ".toml");
    const fs::path dir = a.out.empty() ? fs::path("reproduce_" + a.preset) : fs::path(a.out);
    s.output = dir / "results.h5";
    a.opt.apply(s);
    if (a.opt.dry_run) {
        print_plan(s, a.opt);
        return;
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw InputError("--out: cannot create " + dir.string() + ": " + ec.message());
    run_sweep_cli(s, a.opt);
    run_report(s.output, dir);
    const fs::path md = dir / "report.md";
    if (!fs::exists(md, ec)) throw Error("report: it finished but wrote no " + md.string());
    std::printf("%s\n", md.c_str());
}

}  // namespace

void add_reproduce_command(CLI::App& app) {
    auto args = std::make_shared<ReproduceArgs>();
    CLI::App* sub = app.add_subcommand(
        "reproduce",
        "Reproduce the study (Jarne & Caruso): tasks x init x e_frac x dale x units, trained, "
        "analysed and reported in DIR/report.md. quick: a thinned design for a laptop CPU "
        "(minutes); standard: all four tasks at the study's timing, N 50 and 100, on a CPU "
        "(hours); paper: the full design and protocol (use --backend cuda). Rerun the same "
        "command to resume.");
    sub->add_option("--preset", args->preset,
                    "quick | standard | paper (examples/reproduce_<preset>.toml)")
        ->capture_default_str();
    sub->add_option("--out,-o", args->out, "output folder (default: reproduce_<preset>)");
    args->opt.add(sub);
    sub->callback([args] { run(*args); });
}

}  // namespace eirnn::cli
