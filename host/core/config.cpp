// Validation, names and JSON form of GroupConfig (host/core/config.hpp).
#include "host/core/config.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "host/core/error.hpp"

namespace eirnn {
using nlohmann::json;

namespace {

template <class E, std::size_t M>
std::optional<E> lookup(std::string_view s, const std::pair<E, const char*> (&table)[M]) {
    for (const auto& [v, n] : table)
        if (s == n) return v;
    return std::nullopt;
}

template <class E, std::size_t M>
std::string_view reverse(E v, const std::pair<E, const char*> (&table)[M]) {
    for (const auto& [e, n] : table)
        if (e == v) return n;
    return "?";
}

constexpr std::pair<Init, const char*> kInit[] = {{Init::Normal, "normal"},
                                                  {Init::Orthogonal, "orthogonal"}};
constexpr std::pair<DaleMode, const char*> kDale[] = {
    {DaleMode::Project, "project"}, {DaleMode::Reparam, "reparam"}, {DaleMode::None, "none"}};
constexpr std::pair<DaleAxis, const char*> kAxis[] = {{DaleAxis::Outgoing, "outgoing"},
                                                      {DaleAxis::Incoming, "incoming"}};
constexpr std::pair<ClipMode, const char*> kClip[] = {{ClipMode::Global, "global"},
                                                      {ClipMode::PerTensor, "per-tensor"}};
constexpr std::pair<BackendKind, const char*> kBackend[] = {
    {BackendKind::Auto, "auto"}, {BackendKind::Cpu, "cpu"}, {BackendKind::Cuda, "cuda"}};

void need(bool ok, const std::string& msg) {
    if (!ok) throw InputError(msg);
}

void finite(double v, const char* flag) {
    need(std::isfinite(v), std::string(flag) + ": must be a finite number");
}

template <class T>
void get(const json& j, const char* key, T& out) {
    if (j.contains(key)) out = j.at(key).get<T>();
}

template <class E>
void get_enum(const json& j, const char* key, E& out, std::optional<E> (*parse)(std::string_view)) {
    if (!j.contains(key)) return;
    auto s = j.at(key).get<std::string>();
    auto v = parse(s);
    if (!v) throw InputError(std::string("config: bad value '") + s + "' for " + key);
    out = *v;
}

void check_keys(const json& j, std::initializer_list<const char*> keys, const char* where) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        bool known = false;
        for (const char* k : keys) known = known || it.key() == k;
        if (!known)
            throw InputError(std::string("config: unknown key '") + it.key() + "' in " + where);
    }
}

}  // namespace

std::optional<Init> parse_init(std::string_view s) {
    return lookup(s, kInit);
}
std::optional<DaleMode> parse_dale(std::string_view s) {
    return lookup(s, kDale);
}
std::optional<DaleAxis> parse_dale_axis(std::string_view s) {
    return lookup(s, kAxis);
}
std::optional<ClipMode> parse_clip(std::string_view s) {
    return lookup(s, kClip);
}
std::optional<BackendKind> parse_backend(std::string_view s) {
    return lookup(s, kBackend);
}
std::string_view name(Init v) {
    return reverse(v, kInit);
}
std::string_view name(DaleMode v) {
    return reverse(v, kDale);
}
std::string_view name(DaleAxis v) {
    return reverse(v, kAxis);
}
std::string_view name(ClipMode v) {
    return reverse(v, kClip);
}
std::string_view name(BackendKind v) {
    return reverse(v, kBackend);
}

int excitatory_units(const ModelConfig& m) {
    return static_cast<int>(std::lround(m.e_frac * m.units));
}

void validate(const GroupConfig& c) {
    const auto& m = c.model;
    const auto& t = c.train;
    need(m.units >= 2 && m.units <= 8192,
         "--units: must be in [2, 8192], got " + std::to_string(m.units));
    finite(m.e_frac, "--e-frac");
    need(m.e_frac > 0 && m.e_frac < 1, "--e-frac: must be in (0, 1)");
    int ne = excitatory_units(m);
    need(ne >= 1 && ne <= m.units - 1, "--e-frac: round(e_frac * units) = " + std::to_string(ne) +
                                           " leaves no " + (ne < 1 ? "excitatory" : "inhibitory") +
                                           " unit");
    finite(m.mu, "--mu");
    finite(m.gain, "--gain");
    need(m.gain > 0, "--gain: must be > 0");
    finite(m.p_connect, "--p-connect");
    need(m.p_connect > 0 && m.p_connect <= 1, "--p-connect: must be in (0, 1]");
    finite(m.alpha, "--alpha");
    need(m.alpha > 0 && m.alpha <= 1, "--alpha: must be in (0, 1]");
    finite(m.sigma_rec, "--sigma-rec");
    need(m.sigma_rec >= 0, "--sigma-rec: must be >= 0");
    need(t.epochs > 0, "--epochs: must be > 0");
    need(t.trials > 0, "--trials: must be > 0");
    need(t.test_trials > 0, "--test-trials: must be > 0");
    need(t.test_trials < t.trials, "--test-trials: must be smaller than --trials");
    need(t.batch > 0, "--batch: must be > 0");
    need(t.batch <= t.trials - t.test_trials, "--batch: must not exceed the training trials (" +
                                                  std::to_string(t.trials - t.test_trials) + ")");
    finite(t.lr, "--lr");
    need(t.lr > 0, "--lr: must be > 0");
    finite(t.decay, "--decay");
    need(t.decay >= 0, "--decay: must be >= 0");
    finite(t.beta1, "--beta1");
    need(t.beta1 >= 0 && t.beta1 < 1, "--beta1: must be in [0, 1)");
    finite(t.beta2, "--beta2");
    need(t.beta2 >= 0 && t.beta2 < 1, "--beta2: must be in [0, 1)");
    finite(t.eps, "--eps");
    need(t.eps > 0, "--eps: must be > 0");
    finite(t.clipnorm, "--clipnorm");
    need(t.clipnorm >= 0, "--clipnorm: must be >= 0");
    finite(t.early_stop, "--early-stop");
    need(t.early_stop >= 0, "--early-stop: must be >= 0");
    finite(t.l2_weight, "--l2-weight");
    need(t.l2_weight >= 0, "--l2-weight: must be >= 0");
    finite(t.l2_rate, "--l2-rate");
    need(t.l2_rate >= 0, "--l2-rate: must be >= 0");
    need(c.networks >= 1 && c.networks <= 10'000'000, "--networks: must be >= 1");
    need(c.threads >= 0, "--threads: must be >= 0");
    need(c.outliers >= 0, "--outliers: must be >= 0");
    need(c.outliers < m.units, "--outliers: " + std::to_string(c.outliers) +
                                   " must be smaller than --units (" + std::to_string(m.units) +
                                   "); give --outliers " + std::to_string(m.units - 1) +
                                   " or less (the default is 6)");
    validate(c.task);
}

json to_json(const GroupConfig& c) {
    const auto& m = c.model;
    const auto& t = c.train;
    const auto& p = c.task;
    json model = {{"units", m.units},
                  {"e_frac", m.e_frac},
                  {"init", name(m.init)},
                  {"mu", m.mu},
                  {"gain", m.gain},
                  {"dale", name(m.dale)},
                  {"dale_axis", name(m.dale_axis)},
                  {"project_init", m.project_init},
                  {"nonneg_input", m.nonneg_input},
                  {"p_connect", m.p_connect},
                  {"autapses", m.autapses},
                  {"alpha", m.alpha},
                  {"sigma_rec", m.sigma_rec}};
    json train = {
        {"epochs", t.epochs},       {"trials", t.trials},   {"test_trials", t.test_trials},
        {"batch", t.batch},         {"lr", t.lr},           {"decay", t.decay},
        {"beta1", t.beta1},         {"beta2", t.beta2},     {"eps", t.eps},
        {"clipnorm", t.clipnorm},   {"clip", name(t.clip)}, {"early_stop", t.early_stop},
        {"l2_weight", t.l2_weight}, {"l2_rate", t.l2_rate}};
    json task = {{"kind", task_name(p.kind)},    {"first_in", p.first_in},
                 {"stim_dur", p.stim_dur},       {"mem_gap", p.mem_gap},
                 {"var_delay", p.var_delay},     {"out_gap", p.out_gap},
                 {"stim_noise", p.stim_noise},   {"ff_pulse", p.ff_pulse},
                 {"ff_pulses", p.ff_pulses},     {"ff_spacing", p.ff_spacing},
                 {"ff_first", p.ff_first},       {"ff_length", p.ff_length},
                 {"ff_lag", p.ff_lag},           {"dm_fixation", p.dm_fixation},
                 {"dm_stim", p.dm_stim},         {"dm_delay", p.dm_delay},
                 {"dm_response", p.dm_response}, {"dm_coherence", p.dm_coherence},
                 {"dm_noise", p.dm_noise}};
    return json{{"model", model},
                {"train", train},
                {"task", task},
                {"networks", c.networks},
                {"seed", c.seed},
                {"data_seed", c.data_seed},
                {"backend", name(c.backend)},
                {"spectra", c.spectra},
                {"outliers", c.outliers}};
}

GroupConfig group_config_from_json(const json& j) {
    GroupConfig c;
    try {
        check_keys(j,
                   {"model", "train", "task", "networks", "seed", "data_seed", "backend", "spectra",
                    "outliers", "threads"},
                   "config");
        if (j.contains("model")) {
            const json& m = j.at("model");
            check_keys(
                m,
                {"units", "e_frac", "init", "mu", "gain", "dale", "dale_axis", "project_init",
                 "nonneg_input", "p_connect", "autapses", "alpha", "sigma_rec"},
                "model");
            get(m, "units", c.model.units);
            get(m, "e_frac", c.model.e_frac);
            get_enum(m, "init", c.model.init, parse_init);
            get(m, "mu", c.model.mu);
            get(m, "gain", c.model.gain);
            get_enum(m, "dale", c.model.dale, parse_dale);
            get_enum(m, "dale_axis", c.model.dale_axis, parse_dale_axis);
            get(m, "project_init", c.model.project_init);
            get(m, "nonneg_input", c.model.nonneg_input);
            get(m, "p_connect", c.model.p_connect);
            get(m, "autapses", c.model.autapses);
            get(m, "alpha", c.model.alpha);
            get(m, "sigma_rec", c.model.sigma_rec);
        }
        if (j.contains("train")) {
            const json& t = j.at("train");
            check_keys(t,
                       {"epochs", "trials", "test_trials", "batch", "lr", "decay", "beta1", "beta2",
                        "eps", "clipnorm", "clip", "early_stop", "l2_weight", "l2_rate"},
                       "train");
            get(t, "epochs", c.train.epochs);
            get(t, "trials", c.train.trials);
            get(t, "test_trials", c.train.test_trials);
            get(t, "batch", c.train.batch);
            get(t, "lr", c.train.lr);
            get(t, "decay", c.train.decay);
            get(t, "beta1", c.train.beta1);
            get(t, "beta2", c.train.beta2);
            get(t, "eps", c.train.eps);
            get(t, "clipnorm", c.train.clipnorm);
            get_enum(t, "clip", c.train.clip, parse_clip);
            get(t, "early_stop", c.train.early_stop);
            get(t, "l2_weight", c.train.l2_weight);
            get(t, "l2_rate", c.train.l2_rate);
        }
        if (j.contains("task")) {
            const json& p = j.at("task");
            check_keys(
                p,
                {"kind", "first_in", "stim_dur", "mem_gap", "var_delay", "out_gap", "stim_noise",
                 "ff_pulse", "ff_pulses", "ff_spacing", "ff_first", "ff_length", "ff_lag",
                 "dm_fixation", "dm_stim", "dm_delay", "dm_response", "dm_coherence", "dm_noise"},
                "task");
            get_enum(p, "kind", c.task.kind, parse_task);
            get(p, "first_in", c.task.first_in);
            get(p, "stim_dur", c.task.stim_dur);
            get(p, "mem_gap", c.task.mem_gap);
            get(p, "var_delay", c.task.var_delay);
            get(p, "out_gap", c.task.out_gap);
            get(p, "stim_noise", c.task.stim_noise);
            get(p, "ff_pulse", c.task.ff_pulse);
            get(p, "ff_pulses", c.task.ff_pulses);
            get(p, "ff_spacing", c.task.ff_spacing);
            get(p, "ff_first", c.task.ff_first);
            get(p, "ff_length", c.task.ff_length);
            get(p, "ff_lag", c.task.ff_lag);
            get(p, "dm_fixation", c.task.dm_fixation);
            get(p, "dm_stim", c.task.dm_stim);
            get(p, "dm_delay", c.task.dm_delay);
            get(p, "dm_response", c.task.dm_response);
            get(p, "dm_coherence", c.task.dm_coherence);
            get(p, "dm_noise", c.task.dm_noise);
        }
        get(j, "networks", c.networks);
        get(j, "seed", c.seed);
        get(j, "data_seed", c.data_seed);
        get(j, "threads", c.threads);
        get_enum(j, "backend", c.backend, parse_backend);
        get(j, "spectra", c.spectra);
        get(j, "outliers", c.outliers);
    } catch (const json::exception& e) {
        throw InputError(std::string("config: ") + e.what());
    }
    return c;
}

}  // namespace eirnn
