// Writing trained groups into results files (docs/FORMAT.md).
#include "host/io/results.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "host/io/h5.hpp"

namespace eirnn {

void write_root_attrs(hid_t file) {
    h5::write_attr(file, "format", std::string("eirnn-results"));
    h5::write_attr(file, "format_version", std::int64_t{1});
    h5::write_attr(file, "eirnn_version", std::string(EIRNN_VERSION));
}

GroupSpectra group_spectra(const GroupResult& r, int threads, EigSolver* solver) {
    const std::vector<float> w_final = r.w_rec_final();
    const std::vector<std::int8_t> sign = r.signs();
    const GroupParams& g = r.st.params;
    GroupMatrices gm;
    gm.K = g.K;
    gm.N = g.layout.N;
    gm.w_initial = r.w_rec_initial.data();
    gm.w_final = w_final.data();
    gm.sign = sign.data();
    gm.mask = g.mask.empty() ? nullptr : g.mask.data();
    gm.dale = r.cfg.model.dale;
    gm.axis = r.cfg.model.dale_axis;
    gm.project_init = r.cfg.model.project_init;
    return compute_group_spectra(gm, r.cfg.outliers, threads, solver);
}

void write_group(hid_t file, const std::string& id, const GroupResult& r,
                 const nlohmann::json* cell, int threads, EigSolver* solver,
                 const GroupSpectra* spectra) {
    const std::string path = "groups/" + id;
    h5::remove(file, path);
    h5::Id grp = h5::require_group(file, path);
    const GroupParams& g = r.st.params;
    const ParamLayout& L = g.layout;
    const hsize_t K = g.K, N = L.N, I = L.I, O = L.O, E = r.cfg.train.epochs;

    h5::write_attr(grp, "config", to_json(r.cfg).dump());
    h5::write_attr(grp, "eirnn_version", std::string(EIRNN_VERSION));
    h5::write_attr(grp, "backend", r.backend);
    if (cell) h5::write_attr(grp, "cell", cell->dump());
    h5::write_attr(grp, "n_units_e", std::int64_t{excitatory_units(r.cfg.model)});
    h5::write_attr(grp, "example_network", std::int64_t{r.example_network});
    h5::write_attr(grp, "train_seconds", r.train_seconds);

    std::vector<float> w_final = r.w_rec_final();
    h5::write(grp, "W_rec_initial", r.w_rec_initial.data(), {K, N, N});
    h5::write(grp, "W_rec", w_final.data(), {K, N, N});
    h5::write(grp, "W_in_initial", r.w_in_initial.data(), {K, N, I});
    h5::write(grp, "W_in", r.tensor(1).data(), {K, N, I});
    h5::write(grp, "b", r.tensor(2).data(), {K, N});
    h5::write(grp, "W_out_initial", r.w_out_initial.data(), {K, O, N});
    h5::write(grp, "W_out", r.tensor(3).data(), {K, O, N});
    h5::write(grp, "b_out", r.tensor(4).data(), {K, O});
    if (!g.mask.empty()) h5::write(grp, "mask", r.mask_bytes().data(), {K, N, N});
    std::vector<std::int8_t> sign = r.signs();
    h5::write(grp, "sign", sign.data(), {K, N});
    h5::write(grp, "seed", g.seeds.data(), {K});
    h5::write(grp, "loss", r.st.loss.data(), {K, E});
    h5::write(grp, "test_loss", r.test_loss.data(), {K});
    h5::write(grp, "accuracy", r.accuracy.data(), {K});
    h5::write(grp, "diverged", r.st.diverged.data(), {K});
    h5::write(grp, "epochs_run", r.st.epochs_run.data(), {K});
    h5::write(grp, "updates", r.st.updates.data(), {K});

    h5::Id ex = h5::require_group(grp, "examples");
    const hsize_t S = r.S, T = r.T;
    h5::write(ex, "x", r.ex_x.data(), {S, T, I});
    h5::write(ex, "y", r.ex_y.data(), {S, T, O});
    h5::write(ex, "output", r.ex_out.data(), {S, T, O});
    h5::write(ex, "h", r.ex_h.data(), {S, T, N});
    h5::write(ex, "type", r.ex_type.data(), {S});
    h5::write(ex, "delay", r.ex_delay.data(), {S});

    if (r.cfg.spectra) {
        if (spectra)
            write_group_spectra(grp, *spectra, r.cfg.outliers);
        else
            write_group_spectra(grp, group_spectra(r, threads, solver), r.cfg.outliers);
    }
}

void write_results_file(const std::filesystem::path& path, bool overwrite, const GroupResult& r,
                        int threads, EigSolver* solver, const GroupSpectra* spectra) {
    h5::AtomicFile out(path, overwrite);
    write_root_attrs(out.file());
    write_group(out.file(), group_id(0), r, nullptr, threads, solver, spectra);
    out.commit();
}

}  // namespace eirnn
