// Fixed points of the networks of a results file: conditions, sampling of initial states from the
// networks' own held-out trajectories, and the `dynamics/` subgroup (docs/FORMAT.md).
#include "host/io/dynamics_io.hpp"

#include <cblas.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "host/analysis/eig_solver.hpp"
#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "kernels/rng.hpp"

namespace eirnn {
namespace {

std::string number_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

InputCondition condition(std::string name, int I, std::vector<std::pair<int, double>> on = {}) {
    InputCondition c{std::move(name), std::vector<double>(I, 0.0)};
    for (auto [i, v] : on) c.u[i] = v;
    return c;
}

std::vector<InputCondition> task_conditions(const TaskParams& t, int I) {
    switch (t.kind) {
        case TaskKind::And:
        case TaskKind::Or:
        case TaskKind::Xor: {
            std::vector<InputCondition> v;
            for (int k = 0; k < 4; ++k)
                v.push_back(condition("A=" + std::to_string(k % 2) + ",B=" + std::to_string(k / 2),
                                      I, {{0, k % 2}, {1, k / 2}}));
            return v;
        }
        case TaskKind::Not:
            return {condition("A=0", I), condition("A=1", I, {{0, 1.0}})};
        case TaskKind::FlipFlop:
            return {condition("zero", I), condition("S=1", I, {{0, 1.0}}),
                    condition("R=1", I, {{1, 1.0}})};
        case TaskKind::PerceptualDm:
            return {
                condition("zero", I),
                condition("evidence=+" + number_text(t.dm_coherence), I, {{0, t.dm_coherence}}),
                condition("evidence=-" + number_text(t.dm_coherence), I, {{0, -t.dm_coherence}})};
        case TaskKind::ContextDm:
            return {condition("cue=0", I, {{2, 1.0}}), condition("cue=1", I, {{3, 1.0}})};
    }
    return {condition("zero", I)};
}

}  // namespace

std::vector<InputCondition> input_conditions(const std::vector<std::string>& specs,
                                             const TaskParams& task, int I) {
    std::vector<InputCondition> out;
    auto add = [&](InputCondition c) {
        for (const InputCondition& o : out)
            if (o.name == c.name) return;
        out.push_back(std::move(c));
    };
    for (const std::string& spec : specs) {
        if (spec == "zero") {
            add(condition("zero", I));
        } else if (spec == "task") {
            for (InputCondition& c : task_conditions(task, I)) add(std::move(c));
        } else {
            std::vector<double> u;
            std::stringstream ss(spec);
            std::string item;
            while (std::getline(ss, item, ',')) {
                char* end = nullptr;
                const double v = std::strtod(item.c_str(), &end);
                if (item.empty() || *end != '\0' || !std::isfinite(v))
                    throw InputError("--input: '" + spec +
                                     "' is not zero, task or a list of numbers");
                u.push_back(v);
            }
            if (static_cast<int>(u.size()) != I)
                throw InputError("--input: '" + spec + "' has " + std::to_string(u.size()) +
                                 " values, the task has " + std::to_string(I) + " inputs");
            std::string name = "u=";
            for (std::size_t i = 0; i < u.size(); ++i) {
                if (i) name += ',';
                name += number_text(u[i]);
            }
            add({name, u});
        }
    }
    if (out.empty()) throw InputError("--input: no input condition");
    return out;
}

DynamicsGroupData read_dynamics_group(hid_t file, const std::string& id) {
    DynamicsGroupData g;
    g.id = id;
    try {
        h5::Id grp = h5::open_group(file, "groups/" + id);
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(h5::read_attr_string(grp, "config"));
        } catch (const nlohmann::json::exception& e) {
            throw InputError(std::string("attribute 'config' is not JSON: ") + e.what());
        }
        g.cfg = group_config_from_json(j);
        validate(g.cfg);  // e.g. held-out trials to sample initial states from
        h5::Array<float> w = h5::read_float(grp, "W_rec");
        if (w.dims.size() != 3 || w.dims[1] != w.dims[2] || w.dims[0] == 0 || w.dims[1] == 0)
            throw InputError("W_rec has shape " + h5::shape_text(w.dims) + ", expected (K,N,N)");
        g.K = static_cast<int>(w.dims[0]);
        g.N = static_cast<int>(w.dims[1]);
        g.I = task_inputs(g.cfg.task);
        const hsize_t K = g.K, N = g.N, I = g.I;
        h5::Array<float> w_in = h5::read_float(grp, "W_in");
        if (w_in.dims != std::vector<hsize_t>{K, N, I})
            throw InputError("W_in has shape " + h5::shape_text(w_in.dims) + ", expected " +
                             h5::shape_text({K, N, I}));
        h5::Array<float> b = h5::read_float(grp, "b");
        if (b.dims != std::vector<hsize_t>{K, N})
            throw InputError("b has shape " + h5::shape_text(b.dims) + ", expected " +
                             h5::shape_text({K, N}));
        h5::Array<std::int64_t> seed = h5::read_int(grp, "seed");
        if (seed.dims != std::vector<hsize_t>{K})
            throw InputError("seed has shape " + h5::shape_text(seed.dims) + ", expected (K)");
        g.diverged.assign(K, 0);
        if (h5::exists(grp, "diverged")) {
            h5::Array<std::int64_t> dv = h5::read_int(grp, "diverged");
            if (dv.dims != std::vector<hsize_t>{K})
                throw InputError("diverged has shape " + h5::shape_text(dv.dims) +
                                 ", expected (K)");
            for (hsize_t k = 0; k < K; ++k) g.diverged[k] = dv.data[k] != 0;
        }
        for (std::int64_t s : seed.data) g.seeds.push_back(static_cast<std::uint64_t>(s));
        g.w_rec = std::move(w.data);
        g.w_in = std::move(w_in.data);
        g.b = std::move(b.data);
    } catch (const InputError& e) {
        throw InputError("groups/" + id + ": " + e.what());
    }
    return g;
}

std::vector<double> sample_initial_states(const DynamicsGroupData& g, int k,
                                          const DynamicsSettings& s) {
    const TaskParams& task = g.cfg.task;
    const int N = g.N, I = g.I, O = task_outputs(task), T = task_steps(task);
    const int S = std::min(s.sample_trials, g.cfg.train.test_trials);
    const int first = g.cfg.train.trials - g.cfg.train.test_trials;
    const double al = g.cfg.model.alpha;
    const std::size_t nn = std::size_t(N) * N;
    std::vector<double> w(g.w_rec.begin() + k * nn, g.w_rec.begin() + (k + 1) * nn);
    std::vector<double> w_in(g.w_in.begin() + std::size_t(k) * N * I,
                             g.w_in.begin() + std::size_t(k + 1) * N * I);
    std::vector<double> b(g.b.begin() + std::size_t(k) * N, g.b.begin() + std::size_t(k + 1) * N);
    // Inputs (S,T,I) of the held-out trials, then the states (S*T, N) in (trial, step) order.
    std::vector<float> xf(std::size_t(T) * I), yf(std::size_t(T) * O), mf(std::size_t(T) * O);
    std::vector<double> x(std::size_t(S) * T * I);
    for (int r = 0; r < S; ++r) {
        make_trial(task, g.cfg.data_seed, first + r, xf.data(), yf.data(), mf.data());
        std::copy(xf.begin(), xf.end(), x.begin() + std::size_t(r) * T * I);
    }
    std::vector<double> states(std::size_t(S) * T * N);
    std::vector<double> h(std::size_t(S) * N, 0.0), a(std::size_t(S) * N);
    for (int t = 0; t < T; ++t) {
        // a (S,N) = h W^T + x_t W_in^T + b
        for (int r = 0; r < S; ++r) std::copy(b.begin(), b.end(), a.begin() + std::size_t(r) * N);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, N, N, 1.0, h.data(), N, w.data(), N,
                    1.0, a.data(), N);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, N, I, 1.0,
                    x.data() + std::size_t(t) * I, T * I, w_in.data(), I, 1.0, a.data(), N);
        for (int r = 0; r < S; ++r)
            for (int i = 0; i < N; ++i) {
                double& hv = h[std::size_t(r) * N + i];
                hv = (1.0 - al) * hv + al * std::tanh(a[std::size_t(r) * N + i]);
                states[(std::size_t(r) * T + t) * N + i] = hv;
            }
    }
    for (double v : states)
        if (!std::isfinite(v)) return {};
    const Philox rng{g.seeds[k], static_cast<std::uint64_t>(RngStream::kDynamics) | (s.seed << 8)};
    const std::size_t per = std::size_t(N) + 1, n_states = std::size_t(S) * T;
    std::vector<double> out(std::size_t(s.starts) * N);
    for (int m = 0; m < s.starts; ++m) {
        const std::size_t pick =
            std::min(n_states - 1, static_cast<std::size_t>(rng.uniform(m * per) * n_states));
        for (int i = 0; i < N; ++i)
            out[std::size_t(m) * N + i] =
                states[pick * N + i] + s.noise * rng.normal(m * per + 1 + i);
    }
    return out;
}

nlohmann::json to_json(const DynamicsSettings& s) {
    return {{"starts", s.starts},
            {"noise", s.noise},
            {"sample_trials", s.sample_trials},
            {"seed", s.seed},
            {"iterations", s.iterations},
            {"history", s.history},
            {"candidate_q", s.candidate_q},
            {"fixed_q", s.fixed_q},
            {"slow_q", s.slow_q},
            {"dedup_tol", s.dedup_tol},
            {"newton_iterations", s.newton_iterations}};
}

GroupDynamics analyse_group_dynamics(const DynamicsGroupData& g,
                                     const std::vector<std::string>& inputs,
                                     const DynamicsSettings& s, int threads, EigSolver* solver,
                                     DynamicsSearch* search) {
    const auto t0 = std::chrono::steady_clock::now();
    GroupDynamics d;
    d.id = g.id;
    d.K = g.K;
    d.N = g.N;
    d.I = g.I;
    d.alpha = g.cfg.model.alpha;
    d.settings = s;
    d.conditions = input_conditions(inputs, g.cfg.task, g.I);
    const int C = static_cast<int>(d.conditions.size()), K = g.K, N = g.N, I = g.I;
    const std::size_t nn = std::size_t(N) * N;
    d.status.assign(std::size_t(C) * K, 0);
    std::vector<std::vector<double>> starts(K);
    std::vector<double> w(g.w_rec.begin(), g.w_rec.end());
    for (int k = 0; k < K; ++k) {
        bool finite_w = true;
        for (std::size_t e = k * nn; e < (k + 1) * nn; ++e) finite_w &= std::isfinite(w[e]);
        for (std::size_t e = std::size_t(k) * N * I; e < std::size_t(k + 1) * N * I; ++e)
            finite_w &= std::isfinite(g.w_in[e]);
        for (std::size_t e = std::size_t(k) * N; e < std::size_t(k + 1) * N; ++e)
            finite_w &= std::isfinite(g.b[e]);
        std::uint8_t st = 0;
        std::string why;
        if (g.diverged[k]) {
            st = 1;
            why = "diverged during training";
        } else if (!finite_w) {
            st = 2;
            why = "non-finite weights";
        } else {
            starts[k] = sample_initial_states(g, k, s);
            if (starts[k].empty()) {
                st = 2;
                why = "its held-out trajectories are not finite";
            }
        }
        if (st) {
            for (int c = 0; c < C; ++c) d.status[std::size_t(c) * K + k] = st;
            d.notes.push_back("groups/" + g.id + " network " + std::to_string(k) + ": skipped (" +
                              why + ")");
        }
    }
    // c (C,K,N) = W_in u + b
    std::vector<double> cvec(std::size_t(C) * K * N);
    for (int c = 0; c < C; ++c)
        for (int k = 0; k < K; ++k)
            for (int i = 0; i < N; ++i) {
                double v = g.b[std::size_t(k) * N + i];
                for (int j = 0; j < I; ++j)
                    v += double(g.w_in[(std::size_t(k) * N + i) * I + j]) * d.conditions[c].u[j];
                cvec[(std::size_t(c) * K + k) * N + i] = v;
            }
    std::vector<DynamicsProblem> problems;
    std::vector<int> where;
    for (int c = 0; c < C; ++c)
        for (int k = 0; k < K; ++k) {
            if (d.status[std::size_t(c) * K + k]) continue;
            DynamicsProblem p;
            p.N = N;
            p.alpha = d.alpha;
            p.w = w.data() + k * nn;
            p.c = cvec.data() + (std::size_t(c) * K + k) * N;
            p.starts = starts[k].data();
            p.M = s.starts;
            problems.push_back(p);
            where.push_back(c * K + k);
        }
    std::vector<PointSet> found = find_fixed_points(problems, s, threads, solver, search);
    d.sets.assign(std::size_t(C) * K, PointSet{});
    for (PointSet& ps : d.sets) ps.N = N;
    for (std::size_t i = 0; i < found.size(); ++i) {
        d.sets[where[i]] = std::move(found[i]);
        if (d.sets[where[i]].skipped) d.status[where[i]] = 2;
    }
    d.eig_method = solver ? solver->name() : std::string("lapack");
    d.search = search ? search->name() : std::string("cpu");
    d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return d;
}

void write_group_dynamics(hid_t group, const GroupDynamics& d) {
    h5::remove(group, "dynamics");
    h5::Id g = h5::require_group(group, "dynamics");
    const hsize_t C = d.conditions.size(), K = d.K, N = d.N, I = d.I;
    nlohmann::json names = nlohmann::json::array();
    std::vector<double> inputs;
    for (const InputCondition& c : d.conditions) {
        names.push_back(c.name);
        inputs.insert(inputs.end(), c.u.begin(), c.u.end());
    }
    h5::write_attr(g, "settings", to_json(d.settings).dump());
    h5::write_attr(g, "conditions", names.dump());
    h5::write_attr(g, "alpha", d.alpha);
    h5::write_attr(g, "eig_method", d.eig_method);
    h5::write_attr(g, "search", d.search);
    h5::write_attr(g, "seconds", d.seconds);
    h5::write(g, "inputs", inputs.data(), {C, I});
    std::vector<std::int64_t> offsets = {0};
    std::vector<double> h, q, rho;
    std::vector<std::uint8_t> kind;
    std::vector<std::int8_t> stability;
    std::vector<std::int32_t> n_unstable, basin, n_fixed, n_stable, n_slow;
    std::vector<cplx> eig;
    for (const PointSet& ps : d.sets) {
        h.insert(h.end(), ps.h.begin(), ps.h.end());
        q.insert(q.end(), ps.q.begin(), ps.q.end());
        rho.insert(rho.end(), ps.rho.begin(), ps.rho.end());
        for (PointKind k : ps.kind) kind.push_back(static_cast<std::uint8_t>(k));
        for (Stability st : ps.stability) stability.push_back(static_cast<std::int8_t>(st));
        n_unstable.insert(n_unstable.end(), ps.n_unstable.begin(), ps.n_unstable.end());
        basin.insert(basin.end(), ps.basin.begin(), ps.basin.end());
        eig.insert(eig.end(), ps.eig.begin(), ps.eig.end());
        offsets.push_back(offsets.back() + ps.size());
        n_fixed.push_back(ps.count(PointKind::Fixed));
        n_stable.push_back(ps.count_stable_fixed());
        n_slow.push_back(ps.count(PointKind::Slow));
    }
    const hsize_t P = q.size();
    std::vector<std::uint64_t> offsets_u(offsets.begin(), offsets.end());
    h5::write(g, "offsets", offsets_u.data(), {C * K + 1});
    h5::write(g, "h", h.data(), {P, N});
    h5::write(g, "q", q.data(), {P});
    h5::write(g, "kind", kind.data(), {P});
    h5::write(g, "stability", stability.data(), {P});
    h5::write(g, "n_unstable", n_unstable.data(), {P});
    h5::write(g, "rho_J", rho.data(), {P});
    h5::write(g, "basin", basin.data(), {P});
    h5::write(g, "eig_J", eig.data(), {P, N});
    h5::write(g, "status", d.status.data(), {C, K});
    h5::write(g, "n_fixed", n_fixed.data(), {C, K});
    h5::write(g, "n_stable", n_stable.data(), {C, K});
    h5::write(g, "n_slow", n_slow.data(), {C, K});
}

namespace {
DynamicsFile read_dynamics_file_unchecked(const std::filesystem::path& path) {
    DynamicsFile f;
    f.path = path;
    const std::string where = path.string();
    h5::Id file = h5::open_untrusted(path);
    bool ours = false;
    try {
        ours =
            h5::has_attr(file, "format") && h5::read_attr_string(file, "format") == "eirnn-results";
    } catch (const InputError&) {
        ours = false;
    }
    if (!ours) throw InputError(where + ": not an eirnn results file");
    if (!h5::exists(file, "groups")) throw InputError(where + ": no /groups in the results file");
    h5::Id groups = h5::open_group(file, "groups");
    for (const std::string& id : h5::children(groups)) {
        try {
            f.groups.push_back(read_dynamics_group(file, id));
        } catch (const InputError& e) {
            throw InputError(where + ": " + e.what());
        }
    }
    if (f.groups.empty()) throw InputError(where + ": the results file holds no groups");
    h5::check_writable(h5::in_place_target(path), true, where);
    return f;
}
}  // namespace

DynamicsFile read_dynamics_file(const std::filesystem::path& path) {
    return h5::reading(path, [&] { return read_dynamics_file_unchecked(path); });
}

std::vector<GroupDynamics> update_file_dynamics(const DynamicsFile& f,
                                                const std::vector<std::string>& inputs,
                                                const DynamicsSettings& s, int threads,
                                                EigSolver* solver, DynamicsSearch* search) {
    validate(s);
    // Conditions of every group first: a bad --input stops before anything is computed.
    for (const DynamicsGroupData& g : f.groups) {
        try {
            input_conditions(inputs, g.cfg.task, g.I);
        } catch (const InputError& e) {
            throw InputError(f.path.string() + ": groups/" + g.id + ": " + e.what());
        }
    }
    std::vector<GroupDynamics> out;
    h5::OutputLock lock(f.path, f.path.string());
    h5::AtomicFile file(f.path, true, true);
    h5::write_attr(file.file(), "eirnn_version", std::string(EIRNN_VERSION));
    for (const DynamicsGroupData& g : f.groups) {
        out.push_back(analyse_group_dynamics(g, inputs, s, threads, solver, search));
        h5::Id grp = h5::open_group(file.file(), "groups/" + g.id);
        write_group_dynamics(grp, out.back());
    }
    file.commit();
    return out;
}

}  // namespace eirnn
