// sweep() and the presets of reproduce(): a sweep parsed by the engine (TOML text or file), run by
// run_sweep (resumable, the same results file as `eirnn sweep`) with the GIL released, or planned
// (dry run: cells, shapes and FLOPs from the engine's cost model, nothing written).
#include <nanobind/stl/string.h>

#include <nlohmann/json.hpp>

#include "eirnn_presets.hpp"
#include "host/cli/options.hpp"
#include "host/core/error.hpp"
#include "host/io/results.hpp"
#include "host/sweep/sweep.hpp"
#include "python/src/common.hpp"

namespace eirnn::py {

namespace {

Sweep load(const std::string& text, const std::string& source, const std::string& path,
           const std::string& out) {
    Sweep s = path.empty() ? parse_sweep(text, source) : load_sweep(path);
    if (!out.empty()) s.output = out;
    return s;
}

BackendKind backend_of(const Sweep& s) {
    return s.cells.empty() ? BackendKind::Auto : s.cells.front().cfg.backend;
}

nb::dict plan(const Sweep& s) {
    nb::dict d;
    d["source"] = s.source;
    d["hash"] = s.hash();
    d["output"] = s.output.string();
    d["networks_per_cell"] = std::min(s.networks_per_cell, s.max_networks());
    d["until_learned"] = s.until_learned;
    nb::list cells;
    double total = 0;
    for (const SweepCell& c : s.cells) {
        const CellCost cost = cell_cost(c.cfg);
        nb::dict e;
        e["group"] = group_id(c.index);
        e["label"] = cell_label(s, c);
        e["cell"] = c.axes.dump();
        e["grid"] = c.grid;
        e["N"] = c.cfg.model.units;
        e["T"] = task_steps(c.cfg.task);
        e["B"] = c.cfg.train.batch;
        e["updates"] = cost.updates;
        e["flop"] = cell_flop(s, c);
        e["flop_max"] = cell_flop_max(s, c);
        total += cell_flop(s, c);
        cells.append(e);
    }
    d["cells"] = cells;
    d["flop"] = total;
    return d;
}

nb::dict sweep(const std::string& text, const std::string& source, const std::string& path,
               const std::string& out, bool resume, bool dry_run, bool force, bool progress) {
    Sweep s = load(text, source, path, out);
    if (dry_run) return plan(s);
    SweepOutcome o;
    {
        nb::gil_scoped_release release;
        auto backend = make_backend(backend_of(s), s.threads);
        const bool spectra = !s.cells.empty() && s.cells.front().cfg.spectra;
        auto solver = spectra ? make_eig_solver(backend_of(s), s.eig_method, s.threads) : nullptr;
        SweepRunOptions ro;
        ro.eig_solver = solver.get();
        ro.restart = !resume;
        ro.force = force;
        ro.progress = progress;
        o = run_sweep(s, *backend, ro);
    }
    nb::dict d;
    d["output"] = s.output.string();
    d["already_complete"] = o.already_complete;
    d["cells"] = o.cells;
    d["resumed"] = o.resumed;
    d["networks"] = o.networks;
    d["learned"] = o.learned;
    d["seconds"] = o.seconds;
    return d;
}

std::string preset(const std::string& name) {
    return cli::preset_text(name);
}

}  // namespace

void bind_sweep(nb::module_& m) {
    m.def("sweep", &sweep, nb::arg("text"), nb::arg("source"), nb::arg("path"), nb::arg("out"),
          nb::arg("resume"), nb::arg("dry_run"), nb::arg("force"), nb::arg("progress"),
          "Runs (or plans) a sweep given as TOML text or a file path.");
    m.def("preset", &preset, nb::arg("name"),
          "The TOML of a reproduce preset (quick, standard, paper).");
    m.def(
        "source_dir", [] { return std::string(EIRNN_SOURCE_DIR); },
        "The source tree the module was built from (where tools/report is).");
}

}  // namespace eirnn::py
