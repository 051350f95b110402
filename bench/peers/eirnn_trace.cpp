// eirnn_trace: the engine's side of bench/peers/agree. For the group described by the `eirnn train`
// flags and the trials of an `eirnn data` file it
//   0. checks that the data file holds exactly the trials the engine draws for its task and seed;
//   1. writes the untrained group as a results file (--init-out; docs/FORMAT.md), the file the
//      PyTorch / JAX peers start from;
//   2. reloads those weights (W_rec_initial is the trained parameter: W, or V in reparam mode) and
//   runs
//      every update of the training run with the engine's own functions (epoch_order, gather_batch,
//      network_loss_grad, sum_squares, keras_adam_lr, adam_update, apply_constraints), recording
//      per update and network the batch, the loss and the raw gradients before clipping (--out);
//   3. trains the same weights with the backend (--backend) and reports how far its final weights
//   are
//      from the traced ones, so the trace is known to be the engine's training.
// Shapes in --out: batch_index (U,K,B), loss (U,K), grad/<tensor> (U,K,...), final/<tensor>
// (K,...).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/cli/options.hpp"
#include "host/core/backend.hpp"
#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "host/io/results.hpp"
#include "host/train/batching.hpp"
#include "host/train/network_grad.hpp"
#include "kernels/cpu/blas.hpp"
#include "kernels/cpu/optimizer.hpp"

namespace {

using namespace eirnn;

constexpr const char* kTensorNames[ParamLayout::kTensors] = {"W_rec", "W_in", "b", "W_out",
                                                             "b_out"};

/// The trials of an `eirnn data` file, with the task and data seed they were drawn with.
struct DataFile {
    Dataset all;
    TaskParams task;
    std::uint64_t data_seed = 0;
};

DataFile read_data_file(const std::string& path) {
    h5::Id f = h5::open_read(path);
    if (!h5::has_attr(f, "format") || h5::read_attr_string(f, "format") != "eirnn-data")
        throw InputError("--data: " + path + " is not an eirnn data file (eirnn data --out ...)");
    GroupConfig c =
        group_config_from_json(nlohmann::json::parse(h5::read_attr_string(f, "config")));
    DataFile d;
    d.task = c.task;
    d.data_seed = c.data_seed;
    auto x = h5::read_float(f, "x");
    auto y = h5::read_float(f, "y");
    auto m = h5::read_float(f, "mask");
    if (x.dims.size() != 3 || y.dims.size() != 3 || m.dims != y.dims || x.dims[0] != y.dims[0] ||
        x.dims[1] != y.dims[1])
        throw InputError("--data: x, y, mask must be (n,T,I), (n,T,O), (n,T,O)");
    d.all.n = static_cast<int>(x.dims[0]);
    d.all.T = static_cast<int>(x.dims[1]);
    d.all.I = static_cast<int>(x.dims[2]);
    d.all.O = static_cast<int>(y.dims[2]);
    d.all.x = std::move(x.data);
    d.all.y = std::move(y.data);
    d.all.mask = std::move(m.data);
    Dataset drawn = make_dataset(d.task, d.all.n, d.data_seed);
    if (drawn.T != d.all.T || drawn.x != d.all.x || drawn.y != d.all.y || drawn.mask != d.all.mask)
        throw InputError("--data: " + path +
                         " does not hold the trials eirnn draws for its config");
    d.all = std::move(drawn);
    return d;
}

/// The untrained group as the results file that `eirnn train` would have started from.
void write_initial(const std::string& path, const GroupConfig& cfg, const GroupParams& g,
                   const Dataset& test, int T) {
    GroupResult r;
    r.cfg = cfg;
    r.cfg.spectra = false;
    r.backend = "cpu";
    r.I = g.layout.I;
    r.O = g.layout.O;
    r.T = T;
    r.st.params = g;
    r.st.reset(g.K, cfg.train.epochs);
    r.capture_initial();
    Evaluation ev = evaluate(cfg, g, test, cfg.threads);
    r.test_loss = ev.loss;
    r.accuracy = ev.accuracy;
    write_results_file(path, true, r, cfg.threads);
}

/// The group as the peers read it back from the results file: W_rec_initial is the trained
/// parameter.
GroupParams read_initial(const std::string& path, const GroupParams& like) {
    GroupParams g = like;
    h5::Id f = h5::open_read(path);
    h5::Id grp = h5::open_group(f, "groups/" + group_id(0));
    const ParamLayout& L = g.layout;
    const char* names[ParamLayout::kTensors] = {"W_rec_initial", "W_in_initial", "b", "W_out",
                                                "b_out"};
    for (int t = 0; t < ParamLayout::kTensors; ++t) {
        auto a = h5::read_float(grp, names[t]);
        if (a.data.size() != static_cast<std::size_t>(g.K) * L.size(t))
            throw Error(path + ": " + names[t] + " has the wrong size");
        for (int k = 0; k < g.K; ++k)
            std::copy(a.data.begin() + k * L.size(t), a.data.begin() + (k + 1) * L.size(t),
                      g.params.begin() + k * L.total + L.offset(t));
    }
    return g;
}

/// Per update u and network k: batch, loss and raw gradients, then the update itself.
struct Trace {
    int U = 0, K = 0, B = 0;
    std::vector<std::int32_t> batch_index;           // (U,K,B)
    std::vector<double> loss, loss_total;            // (U,K)
    std::vector<float> grad[ParamLayout::kTensors];  // (U,K,size(t))
};

Trace run_trace(const GroupConfig& cfg, const Dataset& train, GroupParams& g) {
    const ParamLayout& L = g.layout;
    const TrainConfig& tc = cfg.train;
    const ModelConfig& mc = cfg.model;
    const int K = g.K, B = tc.batch, T = train.T, nb = batches_per_epoch(train.n, B);
    const std::size_t P = L.total, NN = static_cast<std::size_t>(L.N) * L.N;
    Trace tr;
    tr.U = tc.epochs * nb;
    tr.K = K;
    tr.B = B;
    tr.batch_index.resize(static_cast<std::size_t>(tr.U) * K * B);
    tr.loss.resize(static_cast<std::size_t>(tr.U) * K);
    tr.loss_total.resize(tr.loss.size());
    for (int t = 0; t < ParamLayout::kTensors; ++t) tr.grad[t].resize(tr.loss.size() * L.size(t));

    const int blas_before = cpu::blas_threads();
    cpu::set_blas_threads(1);
    std::vector<float> m(g.params.size(), 0.0f), v(g.params.size(), 0.0f);
    std::vector<float> x(static_cast<std::size_t>(T) * B * L.I),
        y(static_cast<std::size_t>(T) * B * L.O);
    std::vector<float> ymask(y.size()), grad(P);
    NetworkWorkspace<float> ws;
    ws.resize(L, B, T, tc.l2_rate > 0);
    for (int k = 0; k < K; ++k) {
        float* p = g.params.data() + k * P;
        const float* mask = g.mask.empty() ? nullptr : g.mask.data() + k * NN;
        for (int e = 0; e < tc.epochs; ++e) {
            const std::vector<int> order = epoch_order(g.seeds[k], e, train.n);
            for (int j = 0; j < nb; ++j) {
                const long u = static_cast<long>(e) * nb + j;
                const std::size_t uk = static_cast<std::size_t>(u) * K + k;
                const int* idx = order.data() + static_cast<std::size_t>(j) * B;
                std::copy(idx, idx + B, tr.batch_index.begin() + uk * B);
                gather_batch(train, idx, B, x.data(), y.data(), ymask.data());
                LossParts lp = network_loss_grad(
                    mc, tc, L, B, T, p, g.sign.data(), mask, x.data(), y.data(), ymask.data(),
                    static_cast<const float*>(nullptr), ws, grad.data());
                tr.loss[uk] = lp.data;
                tr.loss_total[uk] = lp.total;
                double sq[ParamLayout::kTensors], total = 0;
                for (int t = 0; t < ParamLayout::kTensors; ++t) {
                    const float* gt = grad.data() + L.offset(t);
                    std::copy(gt, gt + L.size(t), tr.grad[t].begin() + uk * L.size(t));
                    sq[t] = cpu::sum_squares(gt, L.size(t));
                    total += sq[t];
                }
                if (!std::isfinite(lp.total) || !std::isfinite(total))
                    throw Error("network " + std::to_string(k) + " diverged at update " +
                                std::to_string(u));
                apply_update(mc, tc, L, p, m.data() + k * P, v.data() + k * P, grad.data(), sq, u,
                             1.0f, g.sign.data(), mask);
            }
        }
    }
    cpu::set_blas_threads(blas_before);
    return tr;
}

/// Largest ‖a_t − b_t‖ / ‖b_t‖ over the tensors of every network.
double max_relative_difference(const GroupParams& a, const GroupParams& b) {
    const ParamLayout& L = a.layout;
    double worst = 0;
    for (int k = 0; k < a.K; ++k)
        for (int t = 0; t < ParamLayout::kTensors; ++t) {
            double d2 = 0, n2 = 0;
            for (std::size_t i = 0; i < L.size(t); ++i) {
                const std::size_t o = k * L.total + L.offset(t) + i;
                const double d = static_cast<double>(a.params[o]) - b.params[o];
                d2 += d * d;
                n2 += static_cast<double>(b.params[o]) * b.params[o];
            }
            worst = std::max(worst, n2 > 0 ? std::sqrt(d2 / n2) : std::sqrt(d2));
        }
    return worst;
}

void write_trace(const std::string& path, const GroupConfig& cfg, const Trace& tr,
                 const GroupParams& g, double backend_diff, const std::string& backend) {
    const ParamLayout& L = g.layout;
    const hsize_t U = tr.U, K = tr.K, N = L.N, I = L.I, O = L.O;
    const std::vector<hsize_t> shapes[ParamLayout::kTensors] = {{N, N}, {N, I}, {N}, {O, N}, {O}};
    h5::AtomicFile out(path, true);
    h5::write_attr(out.file(), "format", std::string("eirnn-trace"));
    h5::write_attr(out.file(), "config", to_json(cfg).dump());
    h5::write_attr(out.file(), "backend", backend);
    h5::write_attr(out.file(), "backend_max_rel_diff", backend_diff);
    h5::write(out.file(), "batch_index", tr.batch_index.data(), {U, K, static_cast<hsize_t>(tr.B)});
    h5::write(out.file(), "loss", tr.loss.data(), {U, K});
    h5::write(out.file(), "loss_total", tr.loss_total.data(), {U, K});
    h5::Id grad = h5::require_group(out.file(), "grad");
    h5::Id fin = h5::require_group(out.file(), "final");
    for (int t = 0; t < ParamLayout::kTensors; ++t) {
        std::vector<hsize_t> dims{U, K};
        dims.insert(dims.end(), shapes[t].begin(), shapes[t].end());
        h5::write(grad, kTensorNames[t], tr.grad[t].data(), dims);
        std::vector<float> f(K * L.size(t));
        for (std::size_t k = 0; k < K; ++k)
            std::copy(g.params.begin() + k * L.total + L.offset(t),
                      g.params.begin() + k * L.total + L.offset(t) + L.size(t),
                      f.begin() + k * L.size(t));
        dims.erase(dims.begin());
        h5::write(fin, kTensorNames[t], f.data(), dims);
    }
    out.commit();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "eirnn_trace: per-update losses and raw gradients of the engine's training of one "
        "group, for bench/peers/agree. --trials and --data-seed come from --data."};
    eirnn::cli::GroupOptions opts;
    std::string data, init_out = "init.h5", out = "trace.h5";
    opts.add_model(&app);
    opts.add_training(&app);
    app.add_option("--data", data,
                   "trials (eirnn data --out ...); training uses all but --test-trials")
        ->required();
    app.add_option("--init-out", init_out, "results file of the untrained group")
        ->capture_default_str();
    app.add_option("--out,-o", out, "trace file")->capture_default_str();
    try {
        app.parse(argc, argv);
        if (app.count("--trials") || app.count("--data-seed"))
            throw InputError("--trials and --data-seed are those of the --data file");
        DataFile df = read_data_file(data);
        opts.cfg.train.trials = df.all.n;
        opts.cfg.data_seed = df.data_seed;
        opts.cfg.task = df.task;
        opts.task = std::string(task_name(df.task.kind));
        GroupConfig cfg = opts.resolve();
        cfg.train.early_stop = 0;
        if (cfg.model.sigma_rec > 0)
            throw InputError("--sigma-rec: the peers have no recurrent noise");
        const int n_train = cfg.train.trials - cfg.train.test_trials;
        if (n_train % cfg.train.batch != 0)
            throw InputError("--batch: must divide the training trials (" +
                             std::to_string(n_train) + ")");
        Dataset train = slice(df.all, 0, n_train);
        Dataset test = slice(df.all, n_train, cfg.train.test_trials);

        GroupParams fresh = init_group(cfg, df.all.I, df.all.O);
        write_initial(init_out, cfg, fresh, test, df.all.T);
        GroupParams start = read_initial(init_out, fresh);

        GroupParams traced = start;
        Trace tr = run_trace(cfg, train, traced);

        auto backend = make_backend(cfg.backend, cfg.threads);
        TrainState st;
        st.params = start;
        st.reset(cfg.networks, cfg.train.epochs);
        backend->train(cfg, train, st, nullptr);
        const double diff = max_relative_difference(st.params, traced);
        write_trace(out, cfg, tr, traced, diff, backend->name());
        std::printf(
            "%d networks x %d updates traced -> %s (initial weights %s); %s backend's final "
            "weights differ by %.3g (max relative, per tensor)\n",
            tr.K, tr.U, out.c_str(), init_out.c_str(), backend->name().c_str(), diff);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const InputError& e) {
        std::fprintf(stderr, "eirnn_trace: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "eirnn_trace: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
