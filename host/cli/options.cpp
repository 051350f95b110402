// Group options of the CLI (see options.hpp).
#include "host/cli/options.hpp"

#include "host/analysis/eig_solver.hpp"
#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/cuda/eig.hpp"

namespace eirnn::cli {

namespace {
template <class E>
E parse_or_throw(const std::string& v, std::optional<E> (*parse)(std::string_view),
                 const char* flag, const char* allowed) {
    auto e = parse(v);
    if (!e) throw InputError(std::string(flag) + ": unknown value '" + v + "' (" + allowed + ")");
    return *e;
}
}  // namespace

void GroupOptions::add_task(CLI::App* app) {
    TaskParams& p = cfg.task;
    app->add_option("--task", task, "and | or | xor | not | ff | perceptual_dm | context_dm")
        ->capture_default_str();
    const char* g = "Task timing (steps of 1 ms)";
    app->add_option("--first-in", p.first_in, "binary tasks: steps before the input pulse")
        ->group(g)
        ->capture_default_str();
    app->add_option("--stim-dur", p.stim_dur, "binary tasks: pulse length")
        ->group(g)
        ->capture_default_str();
    app->add_option("--mem-gap", p.mem_gap, "binary tasks: pulse end to response start")
        ->group(g)
        ->capture_default_str();
    app->add_option("--var-delay", p.var_delay, "binary tasks: delay d ~ U{1..var-delay}")
        ->group(g)
        ->capture_default_str();
    app->add_option("--out-gap", p.out_gap, "binary tasks: steps after the latest response start")
        ->group(g)
        ->capture_default_str();
    app->add_option("--stim-noise", p.stim_noise, "std of Gaussian noise on every input sample")
        ->group(g)
        ->capture_default_str();
    app->add_option("--ff-pulse", p.ff_pulse, "ff: pulse length")->group(g)->capture_default_str();
    app->add_option("--ff-pulses", p.ff_pulses, "ff: pulses per trial")
        ->group(g)
        ->capture_default_str();
    app->add_option("--ff-spacing", p.ff_spacing, "ff: steps between pulse starts")
        ->group(g)
        ->capture_default_str();
    app->add_option("--ff-first", p.ff_first, "ff: start of the first pulse")
        ->group(g)
        ->capture_default_str();
    app->add_option("--ff-length", p.ff_length, "ff: trial length")
        ->group(g)
        ->capture_default_str();
    app->add_option("--ff-lag", p.ff_lag,
                    "ff: output switches this many steps after a pulse starts")
        ->group(g)
        ->capture_default_str();
    app->add_option("--dm-fixation", p.dm_fixation, "dm tasks: steps before the evidence")
        ->group(g)
        ->capture_default_str();
    app->add_option("--dm-stim", p.dm_stim, "dm tasks: evidence duration")
        ->group(g)
        ->capture_default_str();
    app->add_option("--dm-delay", p.dm_delay, "dm tasks: evidence end to response")
        ->group(g)
        ->capture_default_str();
    app->add_option("--dm-response", p.dm_response, "dm tasks: response duration")
        ->group(g)
        ->capture_default_str();
    app->add_option("--dm-coherence", p.dm_coherence, "dm tasks: mean |evidence|")
        ->group(g)
        ->capture_default_str();
    app->add_option("--dm-noise", p.dm_noise, "dm tasks: evidence noise std")
        ->group(g)
        ->capture_default_str();
}

void GroupOptions::add_model(CLI::App* app) {
    ModelConfig& m = cfg.model;
    const char* g = "Model";
    app->add_option("--units,-N", m.units, "recurrent units N (2..8192)")
        ->group(g)
        ->capture_default_str();
    app->add_option("--e-frac", m.e_frac, "fraction of excitatory units, in (0,1)")
        ->group(g)
        ->capture_default_str();
    app->add_option("--init", init, "normal | orthogonal")->group(g)->capture_default_str();
    app->add_option("--mu", m.mu, "normal init: E columns mean +mu, I columns -mu")
        ->group(g)
        ->capture_default_str();
    app->add_option("--gain,-g", m.gain, "normal init std g/sqrt(N); orthogonal gain")
        ->group(g)
        ->capture_default_str();
    app->add_option("--dale", dale, "project | reparam | none")->group(g)->capture_default_str();
    app->add_option("--dale-axis", dale_axis,
                    "outgoing (columns) | incoming (rows, the study's Keras)")
        ->group(g)
        ->capture_default_str();
    app->add_flag("--project-init", m.project_init, "project the initial matrix too")->group(g);
    app->add_flag("--free-input", free_input, "allow negative input weights")->group(g);
    app->add_option("--p-connect", m.p_connect, "density of the fixed connectivity mask, (0,1]")
        ->group(g)
        ->capture_default_str();
    app->add_flag("--no-autapses", no_autapses, "no self-connections")->group(g);
    app->add_option("--alpha", m.alpha, "dt/tau in (0,1]; 1 = discrete SimpleRNN")
        ->group(g)
        ->capture_default_str();
    app->add_option("--sigma-rec", m.sigma_rec, "recurrent noise std")
        ->group(g)
        ->capture_default_str();
}

void GroupOptions::add_training(CLI::App* app) {
    TrainConfig& t = cfg.train;
    const char* g = "Training";
    app->add_option("--networks,-K", cfg.networks, "networks K trained together")
        ->group(g)
        ->capture_default_str();
    app->add_option("--seed", cfg.seed, "network k has seed seed+k")
        ->group(g)
        ->capture_default_str();
    app->add_option("--data-seed", cfg.data_seed, "seed of the trial set")
        ->group(g)
        ->capture_default_str();
    app->add_option("--epochs", t.epochs, "epochs")->group(g)->capture_default_str();
    app->add_option("--trials", t.trials, "trials drawn (the last --test-trials held out)")
        ->group(g)
        ->capture_default_str();
    app->add_option("--test-trials", t.test_trials, "held-out trials")
        ->group(g)
        ->capture_default_str();
    app->add_option("--batch", t.batch, "batch size")->group(g)->capture_default_str();
    app->add_option("--lr", t.lr, "Adam learning rate")->group(g)->capture_default_str();
    app->add_option("--decay", t.decay, "Keras-2 time decay of the learning rate")
        ->group(g)
        ->capture_default_str();
    app->add_option("--clipnorm", t.clipnorm, "gradient L2-norm limit (0 = off)")
        ->group(g)
        ->capture_default_str();
    app->add_option("--clip", clip, "global (one network's gradients together) | per-tensor")
        ->group(g)
        ->capture_default_str();
    app->add_option("--early-stop", t.early_stop,
                    "stop a network when its epoch loss < this (0 = off)")
        ->group(g)
        ->capture_default_str();
    app->add_option("--l2-weight", t.l2_weight, "L2 penalty on W_rec, W_in, W_out")
        ->group(g)
        ->capture_default_str();
    app->add_option("--l2-rate", t.l2_rate, "L2 penalty on the rates h (mean over T,B,N)")
        ->group(g)
        ->capture_default_str();
    app->add_option("--threads", cfg.threads, "CPU threads (0 = all cores)")
        ->group(g)
        ->capture_default_str();
    app->add_option("--backend", backend, "auto | cpu | cuda")->group(g)->capture_default_str();
}

const GroupConfig& GroupOptions::resolve() {
    cfg.task.kind = parse_or_throw(task, parse_task, "--task",
                                   "and, or, xor, not, ff, perceptual_dm, context_dm");
    cfg.model.init = parse_or_throw(init, parse_init, "--init", "normal, orthogonal");
    cfg.model.dale = parse_or_throw(dale, parse_dale, "--dale", "project, reparam, none");
    cfg.model.dale_axis =
        parse_or_throw(dale_axis, parse_dale_axis, "--dale-axis", "outgoing, incoming");
    cfg.train.clip = parse_or_throw(clip, parse_clip, "--clip", "global, per-tensor");
    cfg.backend = parse_backend_option(backend);
    cfg.model.nonneg_input = !free_input;
    cfg.model.autapses = !no_autapses;
    cfg.threads = resolve_threads(cfg.threads);
    validate(cfg);
    return cfg;
}

void strict_numbers(CLI::App& app) {
    for (CLI::Option* opt : app.get_options()) {
        const std::string t = opt->get_type_name();
        const bool is_int = t == "INT", is_uint = t == "UINT", is_float = t == "FLOAT";
        if (!is_int && !is_uint && !is_float) continue;
        opt->check(CLI::Validator(
            [is_float, is_uint](std::string& v) { return check_number_text(v, is_float, is_uint); },
            "", "strict number"));
    }
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) strict_numbers(*sub);
}

const TaskParams& GroupOptions::resolve_task() {
    cfg.task.kind = parse_or_throw(task, parse_task, "--task",
                                   "and, or, xor, not, ff, perceptual_dm, context_dm");
    validate(cfg.task);
    return cfg.task;
}

void TrainOptions::add(CLI::App* sub) {
    g.add_task(sub);
    g.add_model(sub);
    g.add_training(sub);
    sub->add_option("--out,-o", out, "results file (HDF5)")->capture_default_str();
    sub->add_flag("--force", force, "overwrite an existing --out");
    sub->add_flag("--quiet,-q", quiet, "no progress bar");
    sub->add_flag("--no-spectra", no_spectra, "skip eigenvalues and metrics");
    sub->add_option("--outliers", g.cfg.outliers, "k of r_outer: dominant eigenvalues excluded")
        ->capture_default_str();
    sub->add_option("--eig-method", eig_method, eig_method_help())->capture_default_str();
    sub->add_flag("--dynamics", dynamics,
                  "also find the fixed points of every trained network (as `eirnn dynamics`, "
                  "with the options below, on --backend)");
    dyn.add(sub);
}

GroupConfig TrainOptions::resolve() {
    GroupConfig cfg = g.resolve();
    cfg.spectra = !no_spectra;
    validate(cfg);
    return cfg;
}

void DataOptions::add(CLI::App* sub) {
    g.add_task(sub);
    sub->add_option("--trials", trials, "number of trials (train uses the first ones)")
        ->capture_default_str();
    sub->add_option("--data-seed", g.cfg.data_seed, "seed of the trial set")->capture_default_str();
    sub->add_option("--out,-o", out, "data file (HDF5)")->capture_default_str();
    sub->add_flag("--force", force, "overwrite an existing --out");
}

const TaskParams& DataOptions::resolve() {
    g.resolve_task();
    if (trials < 1) throw InputError("--trials: must be >= 1");
    return g.cfg.task;
}

std::string eig_method_help() {
    return "how eigenvalues are computed (double precision): auto (cuda backend: the batched GPU "
           "kernel up to N = " +
           std::to_string(cuda::kEigBatchedMaxN) +
           ", cuSOLVER Xgeev beyond; cpu backend: the batched kernel's CPU twin up to N = " +
           std::to_string(kCpuTwinMaxN) +
           ", LAPACK dgeev beyond) | lapack | batched (the batched "
           "GPU kernel; on the cpu backend its CPU twin) | xgeev (cuSOLVER, cuda backend only)";
}

EigMethod parse_eig_method_option(const std::string& value) {
    return parse_or_throw(value, parse_eig_method, "--eig-method", "auto, lapack, batched, xgeev");
}

BackendKind parse_backend_option(const std::string& value) {
    return parse_or_throw(value, parse_backend, "--backend", "auto, cpu, cuda");
}

void DynamicsOptions::add(CLI::App* app) {
    DynamicsSettings& s = settings;
    app->add_option("--input", inputs,
                    "constant input held on while searching (repeatable): zero, task (the task's "
                    "input patterns, e.g. the four (A,B) of and/or/xor) or I comma-separated "
                    "numbers")
        ->capture_default_str();
    app->add_option("--starts", s.starts, "initial states per network and input (M)")
        ->capture_default_str();
    app->add_option("--noise", s.noise, "std of the noise added to the sampled initial states")
        ->capture_default_str();
    app->add_option("--sample-trials", s.sample_trials,
                    "held-out trials whose trajectories the initial states are drawn from")
        ->capture_default_str();
    app->add_option("--dynamics-seed", s.seed, "seed of the initial-state sampling")
        ->capture_default_str();
    app->add_option("--fp-iterations", s.iterations, "L-BFGS iteration cap per initial state")
        ->capture_default_str();
    app->add_option("--candidate-q", s.candidate_q,
                    "endpoints with q below this are Newton-refined")
        ->capture_default_str();
    app->add_option("--fixed-q", s.fixed_q, "q below which a refined point is a fixed point")
        ->capture_default_str();
    app->add_option("--slow-q", s.slow_q, "other endpoints with q below this are slow points")
        ->capture_default_str();
    app->add_option("--dedup-tol", s.dedup_tol,
                    "max-norm distance under which two points are the same")
        ->capture_default_str();
}

}  // namespace eirnn::cli
