// train(): keywords parsed by `eirnn train`'s own options (TrainOptions), the group trained by
// the engine on a worker thread while the calling thread, without the GIL, waits for it, watches
// for Ctrl-C (KeyboardInterrupt cancels the training within one update) and feeds the progress
// callback; then the spectra, computed by the same functions the CLI uses. TrainedGroup owns the
// engine's result; its arrays are numpy views of its buffers; save() writes the CLI's file.
#include <nanobind/stl/string.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "host/cli/options.hpp"
#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/io/h5.hpp"
#include "host/io/results.hpp"
#include "host/train/progress.hpp"
#include "python/src/common.hpp"

namespace eirnn::py {

namespace {

/// The parsed keywords of train() / Config.
struct TrainSettings {
    GroupConfig cfg;
    EigMethod method = EigMethod::Auto;
    bool out_given = false, force = false, quiet = false;
    std::string out;
};

TrainSettings parse_train(nb::handle kwargs) {
    CLI::App app{"train"};
    app.set_help_flag();
    cli::TrainOptions o;
    o.add(&app);
    cli::strict_numbers(app);
    parse_keywords(app, "train", kwargs);
    TrainSettings s;
    s.cfg = o.resolve();
    s.method = cli::parse_eig_method_option(o.eig_method);
    if (o.dynamics)
        throw InputError(
            "--dynamics: not available from Python; run `eirnn dynamics FILE` on the saved "
            "results file");
    s.out_given = app.count("--out") > 0;
    s.out = o.out;
    s.force = o.force;
    s.quiet = o.quiet;
    return s;
}

struct TrainedGroup {
    GroupResult r;
    GroupSpectra spectra;
    std::vector<float> w_rec, w_in, b, w_out, b_out;
    std::vector<std::int8_t> sign;
    std::vector<std::uint8_t> mask;

    void save(const std::string& path, bool overwrite) const {
        nb::gil_scoped_release release;
        write_results_file(path, overwrite, r, r.cfg.threads, nullptr,
                           r.cfg.spectra ? &spectra : nullptr);
    }
};

nb::dict metrics_dict(const MetricsTable& t, std::size_t K, nb::handle owner) {
    nb::dict d;
    for (std::size_t c = 0; c < t.names.size(); ++c)
        d[t.names[c].c_str()] = view(t.columns[c].data(), {K}, owner);
    return d;
}

nb::dict arrays(nb::pointer_and_handle<TrainedGroup> self) {
    const TrainedGroup& t = *self.p;
    const nb::handle h = self.h;
    const GroupResult& r = t.r;
    const std::size_t K = r.cfg.networks, N = r.cfg.model.units, I = r.I, O = r.O,
                      E = r.cfg.train.epochs, S = r.S, T = r.T;
    nb::dict d;
    d["W_rec_initial"] = view(r.w_rec_initial.data(), {K, N, N}, h);
    d["W_rec"] = view(t.w_rec.data(), {K, N, N}, h);
    d["W_in_initial"] = view(r.w_in_initial.data(), {K, N, I}, h);
    d["W_in"] = view(t.w_in.data(), {K, N, I}, h);
    d["b"] = view(t.b.data(), {K, N}, h);
    d["W_out_initial"] = view(r.w_out_initial.data(), {K, O, N}, h);
    d["W_out"] = view(t.w_out.data(), {K, O, N}, h);
    d["b_out"] = view(t.b_out.data(), {K, O}, h);
    if (!t.mask.empty()) d["mask"] = view(t.mask.data(), {K, N, N}, h);
    d["sign"] = view(t.sign.data(), {K, N}, h);
    d["seed"] = view(r.st.params.seeds.data(), {K}, h);
    d["loss"] = view(r.st.loss.data(), {K, E}, h);
    d["test_loss"] = view(r.test_loss.data(), {K}, h);
    d["accuracy"] = view(r.accuracy.data(), {K}, h);
    d["diverged"] = view(r.st.diverged.data(), {K}, h);
    d["epochs_run"] = view(r.st.epochs_run.data(), {K}, h);
    d["updates"] = view(r.st.updates.data(), {K}, h);
    nb::dict ex;
    ex["x"] = view(r.ex_x.data(), {S, T, I}, h);
    ex["y"] = view(r.ex_y.data(), {S, T, O}, h);
    ex["output"] = view(r.ex_out.data(), {S, T, O}, h);
    ex["h"] = view(r.ex_h.data(), {S, T, N}, h);
    ex["type"] = view(r.ex_type.data(), {S}, h);
    ex["delay"] = view(r.ex_delay.data(), {S}, h);
    d["examples"] = ex;
    if (r.cfg.spectra) {
        const GroupSpectra& s = t.spectra;
        d["eig_initial"] = view(s.eig_initial.data(), {K, N}, h);
        d["eig_projected"] = view(s.eig_projected.data(), {K, N}, h);
        d["eig"] = view(s.eig.data(), {K, N}, h);
        d["sv_initial"] = view(s.sv_initial.data(), {K, N}, h);
        d["sv_projected"] = view(s.sv_projected.data(), {K, N}, h);
        d["sv"] = view(s.sv.data(), {K, N}, h);
        d["metrics_initial"] = metrics_dict(s.metrics_initial, K, h);
        d["metrics_projected"] = metrics_dict(s.metrics_projected, K, h);
        d["metrics"] = metrics_dict(s.metrics, K, h);
    }
    return d;
}

nb::dict attrs(const TrainedGroup& t) {
    nb::dict d;
    d["config"] = to_json(t.r.cfg).dump();
    d["eirnn_version"] = EIRNN_VERSION;
    d["backend"] = t.r.backend;
    d["n_units_e"] = excitatory_units(t.r.cfg.model);
    d["example_network"] = t.r.example_network;
    d["train_seconds"] = t.r.train_seconds;
    if (t.r.cfg.spectra) {
        d["eig_method"] = t.spectra.eig_method;
        d["eig_fallbacks"] = t.spectra.eig_fallbacks;
    }
    return d;
}

/// Trains on a worker thread; this thread waits without the GIL and, every 50 ms, checks for
/// signals (Ctrl-C: cancel, join, raise) and calls `callback(updates_done, loss per network)`.
GroupResult train_watched(const GroupConfig& cfg, Backend& backend, TrainProgress& progress,
                          nb::handle callback) {
    GroupResult r;
    std::exception_ptr failure;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread worker([&] {
        try {
            r = train_group(cfg, backend, &progress);
        } catch (...) {
            failure = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mu);
        done = true;
        cv.notify_all();
    });
    auto stop = [&] {
        progress.cancel = true;
        nb::gil_scoped_release release;
        worker.join();
    };
    long reported = -1;
    for (;;) {
        bool finished;
        {
            nb::gil_scoped_release release;
            std::unique_lock<std::mutex> lock(mu);
            finished = cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; });
        }
        if (PyErr_CheckSignals() != 0) {
            stop();
            throw nb::python_error();
        }
        const long now = progress.updates_done.load();
        if (callback.is_valid() && !callback.is_none() && (now != reported || finished)) {
            reported = now;
            std::vector<float> loss;
            {
                std::lock_guard<std::mutex> lock(progress.mu);
                loss = progress.epoch_loss;
            }
            if (loss.empty()) loss.assign(cfg.networks, NAN);
            try {
                callback(now, take(std::move(loss), {static_cast<std::size_t>(cfg.networks)}));
            } catch (...) {
                if (!finished)
                    stop();
                else {
                    nb::gil_scoped_release release;
                    worker.join();
                }
                throw;
            }
        }
        if (finished) break;
    }
    {
        nb::gil_scoped_release release;
        worker.join();
    }
    if (failure) std::rethrow_exception(failure);
    return r;
}

TrainedGroup* train(nb::handle kwargs, nb::handle callback, bool bar) {
    TrainSettings s = parse_train(kwargs);
    const GroupConfig& cfg = s.cfg;
    if (s.out_given) h5::check_writable(s.out, s.force, "--out");
    check_train_memory(cfg);
    std::unique_ptr<Backend> backend;
    std::unique_ptr<EigSolver> solver;
    {
        nb::gil_scoped_release release;
        backend = make_backend(cfg.backend, cfg.threads);
        // Made before training so that a method the backend cannot run stops here.
        if (cfg.spectra) solver = make_eig_solver(cfg.backend, s.method, cfg.threads);
    }
    TrainProgress progress;
    progress.active = cfg.networks;
    progress.mean_loss = NAN;
    progress.min_loss = NAN;
    auto t = std::make_unique<TrainedGroup>();
    {
        auto line = make_train_bar(progress, cfg, bar && !s.quiet);
        t->r = train_watched(cfg, *backend, progress, callback);
    }
    {
        nb::gil_scoped_release release;
        GroupResult& r = t->r;
        if (cfg.spectra) t->spectra = group_spectra(r, cfg.threads, solver.get());
        t->w_rec = r.w_rec_final();
        t->w_in = r.tensor(1);
        t->b = r.tensor(2);
        t->w_out = r.tensor(3);
        t->b_out = r.tensor(4);
        t->sign = r.signs();
        t->mask = r.mask_bytes();
    }
    return t.release();
}

/// The full config (the file's `config` attribute) of a set of keywords, as JSON text.
std::string config_json(nb::handle kwargs) {
    return to_json(parse_train(kwargs).cfg).dump();
}

/// The options of `eirnn train`: (keyword, default text, help) for the docs and Config.
nb::list train_options() {
    CLI::App app{"train"};
    app.set_help_flag();
    cli::TrainOptions o;
    o.add(&app);
    nb::list out;
    for (const CLI::Option* opt : app.get_options()) {
        std::string name = opt->get_single_name();
        if (name.empty() || name.size() < 2) continue;
        std::replace(name.begin(), name.end(), '-', '_');
        out.append(nb::make_tuple(name, opt->get_default_str(), opt->get_description(),
                                  opt->get_expected_max() == 0));
    }
    return out;
}

}  // namespace

void bind_train(nb::module_& m) {
    nb::class_<TrainedGroup>(m, "TrainedGroup",
                             "A trained group as the engine holds it (see eirnn.Result).")
        .def("arrays", &arrays, "The group's datasets as numpy arrays sharing its buffers.")
        .def("attrs", &attrs, "The group's attributes.")
        .def("save", &TrainedGroup::save, nb::arg("path"), nb::arg("overwrite") = false,
             "Writes the results file `eirnn train` writes (atomically).");
    m.def("train", &train, nb::arg("settings"), nb::arg("callback").none() = nb::none(),
          nb::arg("bar") = false, nb::rv_policy::take_ownership,
          "Trains one group; settings: keywords of `eirnn train` (see eirnn.train).");
    m.def("config_json", &config_json, nb::arg("settings"),
          "The config of a set of train keywords, validated as the CLI validates it (JSON).");
    m.def("train_options", &train_options,
          "(keyword, default, help, is_flag) of every `eirnn train` option.");
}

}  // namespace eirnn::py
