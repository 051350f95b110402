// trials(): the engine's trial generator with `eirnn data`'s options (DataOptions), trial-major
// numpy arrays taken over without a copy. forward(): K networks run on the same trials by the
// engine's CPU forward pass (forward_trials), the GIL released.
#include <nanobind/stl/string.h>

#include <nlohmann/json.hpp>

#include "host/cli/options.hpp"
#include "host/core/error.hpp"
#include "host/train/trainer.hpp"
#include "python/src/common.hpp"

namespace eirnn::py {

namespace {

nb::tuple trials(nb::handle kwargs) {
    CLI::App app{"trials"};
    app.set_help_flag();
    cli::DataOptions o;
    o.add(&app);
    cli::strict_numbers(app);
    parse_keywords(app, "trials", kwargs);
    const TaskParams& task = o.resolve();
    const std::uint64_t seed = o.g.cfg.data_seed;
    Dataset d;
    {
        nb::gil_scoped_release release;
        d = make_dataset(task, o.trials, seed);
    }
    const std::size_t n = d.n, T = d.T, I = d.I, O = d.O;
    nb::dict info;
    info["task"] = std::string(task_name(task.kind));
    info["data_seed"] = seed;
    info["T"] = d.T;
    info["I"] = d.I;
    info["O"] = d.O;
    const nlohmann::json all = to_json(o.g.cfg);
    const nlohmann::json config = {{"task", all.at("task")}, {"data_seed", seed}};
    info["config"] = config.dump();
    info["type"] = take(std::move(d.type), {n});
    info["delay"] = take(std::move(d.delay), {n});
    return nb::make_tuple(take(std::move(d.x), {n, T, I}), take(std::move(d.y), {n, T, O}),
                          take(std::move(d.mask), {n, T, O}), info);
}

template <int D>
using F32 = nb::ndarray<const float, nb::ndim<D>, nb::c_contig, nb::device::cpu>;

nb::tuple forward(F32<3> w_rec, F32<3> w_in, F32<2> b, F32<3> w_out, F32<2> b_out, F32<3> x,
                  double alpha, int threads) {
    ForwardParams p;
    p.K = static_cast<int>(w_rec.shape(0));
    p.N = static_cast<int>(w_rec.shape(1));
    p.I = static_cast<int>(w_in.shape(2));
    p.O = static_cast<int>(w_out.shape(1));
    const std::size_t K = p.K, N = p.N, I = p.I, O = p.O;
    auto shape_error = [](const std::string& what) { throw InputError(what); };
    if (w_rec.shape(2) != N) shape_error("W_rec: (K,N,N) expected");
    if (w_in.shape(0) != K || w_in.shape(1) != N) shape_error("W_in: (K,N,I) expected");
    if (b.shape(0) != K || b.shape(1) != N) shape_error("b: (K,N) expected");
    if (w_out.shape(0) != K || w_out.shape(2) != N) shape_error("W_out: (K,O,N) expected");
    if (b_out.shape(0) != K || b_out.shape(1) != O) shape_error("b_out: (K,O) expected");
    if (x.shape(2) != I)
        shape_error("x: (n,T,I) expected with I = " + std::to_string(I) + " inputs, got " +
                    std::to_string(x.shape(2)));
    if (threads < 0) throw InputError("--threads: must be >= 0 (0 = all cores)");
    p.w_rec = w_rec.data();
    p.w_in = w_in.data();
    p.b = b.data();
    p.w_out = w_out.data();
    p.b_out = b_out.data();
    const std::size_t n = x.shape(0), T = x.shape(1);
    std::vector<float> states(K * n * T * N), outputs(K * n * T * O);
    {
        nb::gil_scoped_release release;
        forward_trials(p, x.data(), static_cast<int>(n), static_cast<int>(T), alpha, states.data(),
                       outputs.data(), threads);
    }
    return nb::make_tuple(take(std::move(states), {K, n, T, N}),
                          take(std::move(outputs), {K, n, T, O}));
}

}  // namespace

void bind_data(nb::module_& m) {
    m.def("trials", &trials, nb::arg("settings"),
          "(x, y, mask, info) of `eirnn data` keywords (task, trials, data_seed, timing).");
    m.def("forward", &forward, nb::arg("w_rec").noconvert(), nb::arg("w_in").noconvert(),
          nb::arg("b").noconvert(), nb::arg("w_out").noconvert(), nb::arg("b_out").noconvert(),
          nb::arg("x").noconvert(), nb::arg("alpha") = 1.0, nb::arg("threads") = 0,
          "(states (K,n,T,N), outputs (K,n,T,O)) of K networks on trials x (n,T,I), float32.");
}

}  // namespace eirnn::py
