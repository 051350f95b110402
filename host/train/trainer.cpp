// Group training orchestration (see trainer.hpp).
#include "host/train/trainer.hpp"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include "host/core/error.hpp"
#include "host/train/batching.hpp"
#include "host/train/progress.hpp"
#include "kernels/cpu/blas.hpp"
#include "kernels/cpu/rnn.hpp"

namespace eirnn {

namespace {

/// Forward of network k on all trials of d (time-major batch of d.n trials): outputs and states.
struct Forward {
    std::vector<float> x, y, mask, out, h, th, w;
};

void forward_network(const GroupConfig& cfg, const GroupParams& g, int k, const Dataset& d,
                     Forward& f) {
    const ParamLayout& L = g.layout;
    const int B = d.n, T = d.T, N = L.N;
    const std::size_t P = L.total, NN = static_cast<std::size_t>(N) * N;
    f.x.resize(static_cast<std::size_t>(T) * B * L.I);
    f.y.resize(static_cast<std::size_t>(T) * B * L.O);
    f.mask.resize(f.y.size());
    f.out.resize(f.y.size());
    f.h.resize(static_cast<std::size_t>(T + 1) * B * N);
    f.th.resize(static_cast<std::size_t>(T) * B * N);
    f.w.resize(NN);
    std::vector<int> idx(B);
    for (int i = 0; i < B; ++i) idx[i] = i;
    gather_batch(d, idx.data(), B, f.x.data(), f.y.data(), f.mask.data());
    const float* p = g.params.data() + k * P;
    const float* mask = g.mask.empty() ? nullptr : g.mask.data() + k * NN;
    effective_w_rec(cfg.model, L, p, g.sign.data(), mask, f.w.data());
    cpu::rnn_forward(RnnDims{B, N, L.I, L.O, T}, f.w.data(), p + L.w_in, p + L.b, p + L.w_out,
                     p + L.b_out, f.x.data(), static_cast<const float*>(nullptr),
                     static_cast<float>(cfg.model.alpha), f.h.data(), f.th.data(), f.out.data());
}

/// Trial r's (T,O) block of a time-major (T,B,O) array, copied out.
std::vector<float> trial_of(const std::vector<float>& tm, int r, int T, int B, int O) {
    std::vector<float> v(static_cast<std::size_t>(T) * O);
    for (int t = 0; t < T; ++t)
        for (int o = 0; o < O; ++o)
            v[static_cast<std::size_t>(t) * O + o] =
                tm[(static_cast<std::size_t>(t) * B + r) * O + o];
    return v;
}

}  // namespace

std::vector<float> GroupResult::w_rec_final() const {
    const GroupParams& g = st.params;
    const std::size_t NN = static_cast<std::size_t>(g.layout.N) * g.layout.N;
    std::vector<float> w(static_cast<std::size_t>(g.K) * NN);
    for (int k = 0; k < g.K; ++k)
        effective_w_rec(cfg.model, g.layout, g.params.data() + k * g.layout.total, g.sign.data(),
                        g.mask.empty() ? nullptr : g.mask.data() + k * NN, w.data() + k * NN);
    return w;
}

void GroupResult::capture_initial() {
    const GroupParams& g = st.params;
    w_rec_initial = w_rec_final();
    w_in_initial.resize(static_cast<std::size_t>(g.K) * g.layout.size(1));
    w_out_initial.resize(static_cast<std::size_t>(g.K) * g.layout.size(3));
    for (int k = 0; k < g.K; ++k) {
        const float* p = g.params.data() + k * g.layout.total;
        std::copy(p + g.layout.w_in, p + g.layout.w_in + g.layout.size(1),
                  w_in_initial.begin() + k * g.layout.size(1));
        std::copy(p + g.layout.w_out, p + g.layout.w_out + g.layout.size(3),
                  w_out_initial.begin() + k * g.layout.size(3));
    }
}

Evaluation evaluate(const GroupConfig& cfg, const GroupParams& g, const Dataset& d, int threads) {
    Evaluation ev;
    ev.loss.assign(g.K, 0.0f);
    ev.accuracy.assign(g.K, std::numeric_limits<float>::quiet_NaN());
    const cpu::SingleThreadedBlas blas_guard;  // restored on every exit
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads())
    {
        Forward f;
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < g.K; ++k) {
            forward_network(cfg, g, k, d, f);
            ev.loss[k] =
                cpu::masked_mse(RnnDims{d.n, g.layout.N, g.layout.I, g.layout.O, d.T}, f.out.data(),
                                f.y.data(), f.mask.data(), static_cast<float*>(nullptr));
            if (task_is_binary(cfg.task.kind)) {
                int correct = 0;
                for (int r = 0; r < d.n; ++r) {
                    auto out = trial_of(f.out, r, d.T, d.n, g.layout.O);
                    auto tgt = trial_of(f.y, r, d.T, d.n, g.layout.O);
                    correct += trial_correct(out.data(), tgt.data(), d.T, g.layout.O);
                }
                ev.accuracy[k] = static_cast<float>(correct) / static_cast<float>(d.n);
            }
        }
    }
    return ev;
}

GroupResult train_group(const GroupConfig& cfg, Backend& backend, TrainProgress* progress,
                        const TrainHooks* hooks) {
    validate(cfg);
    GroupResult r;
    r.cfg = cfg;
    r.backend = backend.name();
    Dataset all = make_dataset(cfg.task, cfg.train.trials, cfg.data_seed);
    const int n_train = cfg.train.trials - cfg.train.test_trials;
    Dataset train = slice(all, 0, n_train);
    Dataset test = slice(all, n_train, cfg.train.test_trials);
    r.I = all.I;
    r.O = all.O;
    r.T = all.T;

    r.st.params = init_group(cfg, r.I, r.O);
    r.st.reset(cfg.networks, cfg.train.epochs);
    if (hooks && !hooks->lr_scale.empty()) {
        if (static_cast<int>(hooks->lr_scale.size()) != cfg.networks)
            throw Error("lr_scale hook: one factor per network expected");
        r.st.lr_scale = hooks->lr_scale;
    }
    const GroupParams& g = r.st.params;
    r.capture_initial();

    auto t0 = std::chrono::steady_clock::now();
    backend.train(cfg, train, r.st, progress);
    r.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    Evaluation ev = evaluate(cfg, g, test, cfg.threads);
    r.test_loss = ev.loss;
    r.accuracy = ev.accuracy;
    for (int k = 0; k < g.K; ++k)
        if (r.st.diverged[k]) r.test_loss[k] = std::numeric_limits<float>::quiet_NaN();

    // Example activity: the first network with the best accuracy (lowest test loss when no
    // accuracy).
    int best = 0;
    for (int k = 1; k < g.K; ++k) {
        float a = r.accuracy[k], ab = r.accuracy[best];
        bool better =
            std::isfinite(a) && std::isfinite(ab) ? a > ab : r.test_loss[k] < r.test_loss[best];
        if (!std::isfinite(r.test_loss[best]) && std::isfinite(r.test_loss[k])) better = true;
        if (better) best = k;
    }
    r.example_network = best;
    r.S = std::min(8, test.n);
    Dataset ex = slice(test, 0, r.S);
    r.ex_type.assign(r.S, 0);
    r.ex_delay.assign(r.S, 0);
    for (int s = 0; s < r.S && s < static_cast<int>(ex.type.size()); ++s) r.ex_type[s] = ex.type[s];
    for (int s = 0; s < r.S && s < static_cast<int>(ex.delay.size()); ++s)
        r.ex_delay[s] = ex.delay[s];
    Forward f;
    forward_network(cfg, g, best, ex, f);
    const int T = ex.T, S = r.S, N = g.layout.N, I = r.I, O = r.O;
    r.ex_x.resize(static_cast<std::size_t>(S) * T * I);
    r.ex_y.resize(static_cast<std::size_t>(S) * T * O);
    r.ex_out.resize(r.ex_y.size());
    r.ex_h.resize(static_cast<std::size_t>(S) * T * N);
    for (int s = 0; s < S; ++s)
        for (int t = 0; t < T; ++t) {
            std::size_t st = static_cast<std::size_t>(s) * T + t,
                        tm = static_cast<std::size_t>(t) * S + s;
            for (int i = 0; i < I; ++i) r.ex_x[st * I + i] = f.x[tm * I + i];
            for (int o = 0; o < O; ++o) {
                r.ex_y[st * O + o] = f.y[tm * O + o];
                r.ex_out[st * O + o] = f.out[tm * O + o];
            }
            const float* hs = f.h.data() + (static_cast<std::size_t>(t + 1) * S + s) * N;
            std::copy(hs, hs + N, r.ex_h.begin() + st * N);
        }
    return r;
}

std::vector<float> GroupResult::tensor(int t) const {
    const GroupParams& g = st.params;
    const ParamLayout& L = g.layout;
    const std::size_t P = L.total, n = L.size(t);
    std::vector<float> out(static_cast<std::size_t>(g.K) * n);
    for (std::size_t k = 0; k < static_cast<std::size_t>(g.K); ++k)
        std::copy(g.params.begin() + k * P + L.offset(t),
                  g.params.begin() + k * P + L.offset(t) + n, out.begin() + k * n);
    return out;
}

std::vector<std::int8_t> GroupResult::signs() const {
    const GroupParams& g = st.params;
    const std::size_t K = g.K, N = g.layout.N;
    std::vector<std::int8_t> sign(K * N);
    for (std::size_t k = 0; k < K; ++k)
        for (std::size_t i = 0; i < N; ++i) sign[k * N + i] = g.sign[i] > 0 ? 1 : -1;
    return sign;
}

std::vector<std::uint8_t> GroupResult::mask_bytes() const {
    const std::vector<float>& m = st.params.mask;
    std::vector<std::uint8_t> out(m.size());
    for (std::size_t i = 0; i < m.size(); ++i) out[i] = m[i] != 0.0f;
    return out;
}

void forward_trials(const ForwardParams& p, const float* x, int n, int T, double alpha,
                    float* states, float* outputs, int threads) {
    const int K = p.K, N = p.N, I = p.I, O = p.O;
    if (K < 1 || N < 1 || I < 0 || O < 0 || n < 1 || T < 1)
        throw InputError("forward: empty shapes (K, N, n and T must be >= 1)");
    if (!(alpha > 0 && alpha <= 1)) throw InputError("alpha: must be in (0,1]");
    const std::size_t NN = static_cast<std::size_t>(N) * N, B = n;
    const int nthreads = threads > 0 ? threads : omp_get_max_threads();
    const cpu::SingleThreadedBlas blas_guard;  // restored on every exit
    // Time-major input, shared by every network.
    std::vector<float> xt(static_cast<std::size_t>(T) * B * I);
    for (std::size_t r = 0; r < B; ++r)
        for (int t = 0; t < T; ++t)
            for (int i = 0; i < I; ++i)
                xt[(static_cast<std::size_t>(t) * B + r) * I + i] =
                    x[(r * T + t) * static_cast<std::size_t>(I) + i];
#pragma omp parallel num_threads(std::max(1, std::min(nthreads, K)))
    {
        std::vector<float> h(static_cast<std::size_t>(T + 1) * B * N),
            th(static_cast<std::size_t>(T) * B * N), y(static_cast<std::size_t>(T) * B * O);
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < K; ++k) {
            cpu::rnn_forward(RnnDims{n, N, I, O, T}, p.w_rec + k * NN,
                             p.w_in + static_cast<std::size_t>(k) * N * I, p.b + k * N,
                             p.w_out + static_cast<std::size_t>(k) * O * N, p.b_out + k * O,
                             xt.data(), static_cast<const float*>(nullptr),
                             static_cast<float>(alpha), h.data(), th.data(), y.data());
            // Back to trial-major: (n,T,N) and (n,T,O) of network k.
            float* sk = states + static_cast<std::size_t>(k) * B * T * N;
            float* ok = outputs + static_cast<std::size_t>(k) * B * T * O;
            for (std::size_t r = 0; r < B; ++r)
                for (int t = 0; t < T; ++t) {
                    const float* hs = h.data() + ((static_cast<std::size_t>(t) + 1) * B + r) * N;
                    std::copy(hs, hs + N, sk + (r * T + t) * N);
                    const float* ys = y.data() + (static_cast<std::size_t>(t) * B + r) * O;
                    std::copy(ys, ys + O, ok + (r * T + t) * O);
                }
        }
    }
}

std::unique_ptr<ProgressBar> make_train_bar(const TrainProgress& progress, const GroupConfig& cfg,
                                            bool enabled) {
    const int epochs = cfg.train.epochs, networks = cfg.networks;
    return std::make_unique<ProgressBar>(
        [&progress] {
            long total = progress.updates_total.load();
            return total > 0 ? static_cast<double>(progress.updates_done.load()) / total : 0.0;
        },
        [&progress, epochs, networks] {
            char buf[160];
            std::snprintf(buf, sizeof buf,
                          "epoch %d/%d | %d/%d nets training | loss mean %.3e min %.3e",
                          progress.epoch.load(), epochs, progress.active.load(), networks,
                          progress.mean_loss.load(), progress.min_loss.load());
            return std::string(buf);
        },
        enabled);
}

}  // namespace eirnn
