// `eirnn spectrum`: eigenvalues, singular values and docs/MODEL.md §6 metrics of results files
// (refreshed in place, atomically), Keras SimpleRNN models (--keras) and HDF5 datasets (--h5
// FILE:DATASET); a table on stdout (table, csv or json) and optionally an HDF5 file with every
// spectrum, singular-value set and metrics table (--save). Eigenvalues from the solver of --backend
// / --eig-method (host/analysis/eig_solver.hpp). Every input is read and checked, and the solver
// made, before anything is computed or written, so bad input writes nothing.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/analysis/eig_solver.hpp"
#include "host/analysis/spectra.hpp"
#include "host/cli/commands.hpp"
#include "host/cli/options.hpp"
#include "host/cli/table.hpp"
#include "host/core/config.hpp"
#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/io/h5.hpp"
#include "host/io/keras.hpp"
#include "host/io/spectra_io.hpp"

namespace eirnn::cli {
namespace {
namespace fs = std::filesystem;

struct SpectrumArgs {
    std::vector<std::string> results, keras, h5;
    int outliers = 6;
    CLI::Option* outliers_opt = nullptr;
    std::string format = "table";
    std::string save;
    int threads = 0;
    std::string backend = "auto", eig_method = "auto";
    bool force = false;
};

/// K matrices analysed together: one stage of a results group, a Keras layer or an --h5 stack.
struct Set {
    std::string file;         // source file
    std::string matrix;       // group/stage, layer path or dataset
    std::string stage;        // initial | projected | trained for results groups, else ""
    bool indexed = false;     // label rows with [k]
    bool show_matrix = true;  // label rows with the matrix (a Keras file with one layer: no)
    int K = 0, N = 0, outliers = 6;
    std::vector<double> w;          // (K,N,N) for imported matrices (freed after analysis)
    std::vector<std::int8_t> sign;  // (K,N); rows of 0 where signs are unknown; empty: none known
    std::vector<cplx> eig;          // (K,N)
    std::vector<double> sv;         // (K,N) singular values, descending
    MetricsTable metrics;
    std::string eig_method;  // the solver that computed eig
};

/// One results-file group, read fully before anything is written.
struct LoadedGroup {
    std::string id;
    GroupConfig cfg;
    int K = 0, N = 0;
    std::vector<float> w_initial, w_final, mask;  // (K,N,N); mask empty when absent
    std::vector<std::int8_t> sign;                // (K,N)
};

struct LoadedResults {
    std::string path;
    std::vector<LoadedGroup> groups;
};

LoadedGroup load_group(hid_t file, const std::string& path, const std::string& id) {
    const std::string where = path + ": groups/" + id;
    LoadedGroup g;
    g.id = id;
    try {
        h5::Id grp = h5::open_group(file, "groups/" + id);
        std::string text = h5::read_attr_string(grp, "config");
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception& e) {
            throw InputError(std::string("attribute 'config' is not JSON: ") + e.what());
        }
        g.cfg = group_config_from_json(j);
        h5::Array<float> w0 = h5::read_float(grp, "W_rec_initial");
        h5::Array<float> w1 = h5::read_float(grp, "W_rec");
        if (w0.dims.size() != 3 || w0.dims[1] != w0.dims[2] || w0.dims[1] == 0 || w0.dims[0] == 0)
            throw InputError("W_rec_initial has shape " + h5::shape_text(w0.dims) +
                             ", expected (K,N,N)");
        if (w1.dims != w0.dims)
            throw InputError("W_rec has shape " + h5::shape_text(w1.dims) + ", W_rec_initial " +
                             h5::shape_text(w0.dims));
        g.K = static_cast<int>(w0.dims[0]);
        g.N = static_cast<int>(w0.dims[1]);
        h5::Array<std::int64_t> s = h5::read_int(grp, "sign");
        if (s.dims != std::vector<hsize_t>{w0.dims[0], w0.dims[1]})
            throw InputError("sign has shape " + h5::shape_text(s.dims) + ", expected (K,N)");
        for (std::int64_t v : s.data) {
            if (v != 1 && v != -1) throw InputError("sign holds a value other than +1 / -1");
            g.sign.push_back(static_cast<std::int8_t>(v));
        }
        if (h5::exists(grp, "mask")) {
            h5::Array<float> m = h5::read_float(grp, "mask");
            if (m.dims != w0.dims)
                throw InputError("mask has shape " + h5::shape_text(m.dims) + ", expected (K,N,N)");
            g.mask = std::move(m.data);
        }
        g.w_initial = std::move(w0.data);
        g.w_final = std::move(w1.data);
    } catch (const InputError& e) {
        throw InputError(where + ": " + e.what());
    }
    return g;
}

LoadedResults load_results_unchecked(const std::string& path) {
    LoadedResults r;
    r.path = path;
    h5::Id f = h5::open_untrusted(path);
    bool ours = false;
    try {
        ours = h5::has_attr(f, "format") && h5::read_attr_string(f, "format") == "eirnn-results";
    } catch (const InputError&) {
        ours = false;
    }
    if (!ours)
        throw InputError(path +
                         ": not an eirnn results file (Keras models: --keras FILE; "
                         "other matrices: --h5 FILE:DATASET)");
    if (!h5::exists(f, "groups")) throw InputError(path + ": no /groups in the results file");
    h5::Id groups = h5::open_group(f, "groups");
    for (const std::string& id : h5::children(groups)) r.groups.push_back(load_group(f, path, id));
    if (r.groups.empty()) throw InputError(path + ": the results file holds no groups");
    h5::check_writable(h5::in_place_target(path), true, path);
    return r;
}

LoadedResults load_results(const std::string& path) {
    return h5::reading(path, [&] { return load_results_unchecked(path); });
}

/// Analyses imported sets, batching matrices of equal N over all threads.
void analyse_imported(std::vector<Set>& sets, int threads, EigSolver& solver) {
    std::map<int, std::vector<Set*>> by_n;
    for (Set& s : sets) by_n[s.N].push_back(&s);
    for (auto& [N, group] : by_n) {
        const std::size_t nn = std::size_t(N) * N;
        int K = 0;
        for (Set* s : group) K += s->K;
        std::vector<double> w(std::size_t(K) * nn);
        std::size_t at = 0;
        for (Set* s : group) {
            std::copy(s->w.begin(), s->w.end(), w.begin() + at * nn);
            at += s->K;
        }
        std::vector<cplx> eig(std::size_t(K) * N);
        std::vector<double> sv(std::size_t(K) * N);
        std::vector<std::int8_t> sign;
        MetricsTable t = analyse_matrices(w.data(), K, N, sets.front().outliers, eig.data(),
                                          threads, solver, &sign, sv.data());
        at = 0;
        for (Set* s : group) {
            s->eig.assign(eig.begin() + at * N, eig.begin() + (at + s->K) * N);
            s->sv.assign(sv.begin() + at * N, sv.begin() + (at + s->K) * N);
            s->eig_method = solver.name();
            s->metrics.names = t.names;
            for (const auto& col : t.columns)
                s->metrics.columns.emplace_back(col.begin() + at, col.begin() + at + s->K);
            // Sign rows of the set; none when no matrix of the set is a Dale matrix.
            s->sign.assign(sign.begin() + at * N, sign.begin() + (at + s->K) * N);
            if (std::all_of(s->sign.begin(), s->sign.end(), [](std::int8_t v) { return v == 0; }))
                s->sign.clear();
            at += s->K;
            s->w = {};
        }
    }
}

/// Recomputes and writes the spectra of every group of a results file (into its temporary copy),
/// then reads them back as three sets per group.
void refresh_results(const LoadedResults& r, const SpectrumArgs& a, EigSolver& solver,
                     h5::AtomicFile& out, std::vector<Set>& sets) {
    h5::write_attr(out.file(), "eirnn_version", std::string(EIRNN_VERSION));
    for (const LoadedGroup& g : r.groups) {
        h5::Id grp = h5::open_group(out.file(), "groups/" + g.id);
        GroupMatrices gm;
        gm.K = g.K;
        gm.N = g.N;
        gm.w_initial = g.w_initial.data();
        gm.w_final = g.w_final.data();
        gm.sign = g.sign.data();
        gm.mask = g.mask.empty() ? nullptr : g.mask.data();
        gm.dale = g.cfg.model.dale;
        gm.axis = g.cfg.model.dale_axis;
        gm.project_init = g.cfg.model.project_init;
        const int outliers = a.outliers_opt->count() > 0 ? a.outliers : g.cfg.outliers;
        if (outliers >= g.cfg.model.units)
            throw InputError("--outliers: " + std::to_string(outliers) +
                             " must be smaller than N (" + std::to_string(g.cfg.model.units) +
                             ") of " + r.path);
        write_group_spectra(grp, gm, outliers, a.threads, &solver);
        const char* stages[3][4] = {
            {"initial", "eig_initial", "sv_initial", "metrics_initial"},
            {"projected", "eig_projected", "sv_projected", "metrics_projected"},
            {"trained", "eig", "sv", "metrics"}};
        for (const auto& st : stages) {
            Set s;
            s.file = r.path;
            s.matrix = "groups/" + g.id;
            s.stage = st[0];
            s.indexed = true;
            s.K = g.K;
            s.N = g.N;
            s.outliers = outliers;
            s.sign = g.sign;
            s.eig = h5::read_complex(grp, st[1]).data;
            s.sv = h5::read_double(grp, st[2]).data;
            s.metrics = read_metrics(grp, st[3]);
            s.eig_method = solver.name();
            sets.push_back(std::move(s));
        }
    }
}

void write_saved(const SpectrumArgs& a, const std::vector<Set>& sets) {
    h5::AtomicFile out(a.save, a.force);
    h5::write_attr(out.file(), "format", std::string("eirnn-spectra"));
    h5::write_attr(out.file(), "format_version", std::int64_t{1});
    h5::write_attr(out.file(), "eirnn_version", std::string(EIRNN_VERSION));
    for (std::size_t i = 0; i < sets.size(); ++i) {
        const Set& s = sets[i];
        char id[32];
        std::snprintf(id, sizeof id, "sets/s%04zu", i);
        h5::Id g = h5::require_group(out.file(), id);
        h5::write_attr(g, "source", s.file);
        h5::write_attr(g, "matrix", s.matrix);
        h5::write_attr(g, "stage", s.stage);
        h5::write_attr(g, "eig_method", s.eig_method);
        const hsize_t K = s.K, N = s.N;
        h5::write(g, "eig", s.eig.data(), {K, N});
        h5::write(g, "sv", s.sv.data(), {K, N});
        if (!s.sign.empty()) h5::write(g, "sign", s.sign.data(), {K, N});
        write_metrics(g, "metrics", s.metrics, s.outliers);
    }
    out.commit();
}

// ---- output ----

struct Row {
    const Set* set;
    int k;
};

std::string row_label(const Row& r) {
    const Set& s = *r.set;
    std::string label = s.file;
    if (!s.stage.empty())
        label += " " + s.matrix.substr(s.matrix.rfind('/') + 1) + "/" + s.stage;
    else if (s.show_matrix)
        label += ":" + s.matrix;
    if (s.indexed) label += "[" + std::to_string(r.k) + "]";
    return label;
}

double value(const Row& r, const std::string& name) {
    const MetricsTable& t = r.set->metrics;
    for (std::size_t c = 0; c < t.names.size(); ++c)
        if (t.names[c] == name) return t.columns[c][r.k];
    return std::nan("");
}

void print_table(const std::vector<Row>& rows) {
    struct Col {
        std::string title, metric;
        const char* f;
    };
    std::set<int> ks;
    for (const Row& r : rows) ks.insert(r.set->outliers);
    std::string outer =
        ks.size() == 1 ? "r_outer(k=" + std::to_string(*ks.begin()) + ")" : "r_outer";
    std::vector<Col> cols = {{"rho", "rho", "%.4f"},
                             {outer, "r_outer", "%.4f"},
                             {"r_inner", "r_inner", "%.4f"},
                             {"ring_ratio", "ring_ratio", "%.4f"},
                             {"lambda_dom", "", ""},
                             {"freq_arg", "freq_arg", "%.2f"},
                             {"freq_study", "freq_study", "%.2f"},
                             {"henrici", "henrici", "%.4f"},
                             {"lam_sym_max", "lam_sym_max", "%.4f"},
                             {"n_outside", "n_outside_unit", "%.0f"},
                             {"n_re_gt1", "n_re_gt1", "%.0f"},
                             {"sv_spread", "sv_spread", "%.4g"},
                             {"nse", "nse", "%.4f"}};
    bool stats = false;
    for (const Row& r : rows) stats |= !std::isnan(value(r, "w_ee_zero"));
    if (stats)
        for (const char* pop : {"ee", "ei", "ie", "ii"})
            for (const char* st : {"mean", "std", "zero"})
                cols.push_back({std::string("w_") + pop + "_" + st,
                                std::string("w_") + pop + "_" + st,
                                std::string(st) == "zero" ? "%.3f" : "%.4f"});

    std::vector<std::vector<std::string>> cells;
    std::vector<std::string> head = {"matrix", "N"};
    for (const Col& c : cols) head.push_back(c.title);
    cells.push_back(head);
    for (const Row& r : rows) {
        std::vector<std::string> line = {row_label(r), std::to_string(r.set->N)};
        for (const Col& c : cols) {
            if (c.metric.empty()) {
                double re = value(r, "dom_re"), im = value(r, "dom_im");
                line.push_back(std::isnan(re)
                                   ? "nan"
                                   : format_number("%.4f", re) + format_number("%+.4f", im) + "i");
            } else {
                line.push_back(format_number(c.f, value(r, c.metric)));
            }
        }
        cells.push_back(std::move(line));
    }
    print_columns(cells);
}

void print_csv(const std::vector<Row>& rows) {
    std::string head = "source,matrix,stage,k,N,outliers";
    for (const std::string& n : metric_names()) {
        head += ',';
        head += n;
    }
    std::printf("%s\n", head.c_str());
    for (const Row& r : rows) {
        const Set& s = *r.set;
        std::string line = csv_field(s.file) + "," + csv_field(s.matrix) + "," + s.stage + "," +
                           std::to_string(r.k) + "," + std::to_string(s.N) + "," +
                           std::to_string(s.outliers);
        for (const std::string& n : metric_names()) {
            line += ',';
            line += format_number("%.17g", value(r, n));
        }
        std::printf("%s\n", line.c_str());
    }
}

void print_json(const std::vector<Row>& rows) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
        const Set& s = *r.set;
        nlohmann::json m = nlohmann::json::object();
        for (const std::string& n : metric_names()) {
            double v = value(r, n);
            m[n] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
        }
        out.push_back({{"source", s.file},
                       {"matrix", s.matrix},
                       {"stage", s.stage},
                       {"k", r.k},
                       {"N", s.N},
                       {"outliers", s.outliers},
                       {"metrics", m}});
    }
    std::printf("%s\n", out.dump(2).c_str());
}

bool same_file(const std::string& a, const std::string& b) {
    std::error_code ec;
    return fs::equivalent(a, b, ec) && !ec;
}

void run(SpectrumArgs& a) {
    if (a.results.empty() && a.keras.empty() && a.h5.empty())
        throw InputError(
            "spectrum: no input (give results files, --keras FILE... or "
            "--h5 FILE:DATASET)");
    if (a.outliers < 0) throw InputError("--outliers: must be >= 0");
    a.threads = resolve_threads(a.threads);
    const BackendKind backend = parse_backend_option(a.backend);
    const EigMethod method = parse_eig_method_option(a.eig_method);

    // 1. Read and check every input.
    std::vector<LoadedResults> results;
    for (const std::string& p : a.results) {
        bool dup = false;
        for (const LoadedResults& r : results) dup |= same_file(r.path, p);
        if (!dup) results.push_back(load_results(p));
    }
    std::vector<Set> imported;
    for (const std::string& p : a.keras) {
        KerasModel m = read_keras(p);
        for (KerasRnn& l : m.layers) {
            Set s;
            s.file = p;
            s.matrix = l.layer;
            s.show_matrix = m.layers.size() > 1;
            s.K = 1;
            s.N = l.N;
            s.outliers = a.outliers;
            s.w = std::move(l.w_rec);
            imported.push_back(std::move(s));
        }
    }
    for (const std::string& spec : a.h5) {
        MatrixStack m = read_h5_matrices(spec);
        Set s;
        s.file = m.file;
        s.matrix = m.dataset;
        s.indexed = m.stacked;
        s.K = m.K;
        s.N = m.N;
        s.outliers = a.outliers;
        s.w = std::move(m.w);
        imported.push_back(std::move(s));
    }
    if (a.outliers_opt->count() > 0)
        for (const Set& s : imported)
            if (a.outliers >= s.N)
                throw InputError("--outliers: " + std::to_string(a.outliers) +
                                 " must be smaller than N (" + std::to_string(s.N) + ") of " +
                                 s.file + ":" + s.matrix);
    // Every output locked before any work: another eirnn writing one of them stops us here.
    std::vector<std::unique_ptr<h5::OutputLock>> locks;
    for (const LoadedResults& r : results)
        locks.push_back(std::make_unique<h5::OutputLock>(r.path, r.path));
    if (!a.save.empty()) {
        h5::check_writable(a.save, a.force, "--save");
        locks.push_back(std::make_unique<h5::OutputLock>(a.save, "--save"));
        for (const std::string& p : a.results)
            if (same_file(p, a.save)) throw InputError("--save: " + a.save + " is also an input");
        for (const std::string& p : a.keras)
            if (same_file(p, a.save)) throw InputError("--save: " + a.save + " is also an input");
    }

    // 2. Compute (results files into temporary copies), 3. write, 4. print. The solver is made
    // first: a backend or method that cannot run stops here, with nothing written.
    std::unique_ptr<EigSolver> solver = make_eig_solver(backend, method, a.threads);
    std::vector<Set> sets;
    std::vector<std::unique_ptr<h5::AtomicFile>> updated;
    for (const LoadedResults& r : results) {
        updated.push_back(std::make_unique<h5::AtomicFile>(r.path, true, true));
        refresh_results(r, a, *solver, *updated.back(), sets);
    }
    analyse_imported(imported, a.threads, *solver);
    for (Set& s : imported) sets.push_back(std::move(s));
    if (!a.save.empty()) write_saved(a, sets);
    for (auto& f : updated) f->commit();

    std::vector<Row> rows;
    for (const Set& s : sets)
        for (int k = 0; k < s.K; ++k) rows.push_back({&s, k});
    if (a.format == "csv")
        print_csv(rows);
    else if (a.format == "json")
        print_json(rows);
    else
        print_table(rows);
}

}  // namespace

void add_spectrum_command(CLI::App& app) {
    auto args = std::make_shared<SpectrumArgs>();
    CLI::App* sub = app.add_subcommand(
        "spectrum",
        "Eigenvalues (double precision: LAPACK dgeev, the batched GPU eigensolver or its CPU twin, "
        "or cuSOLVER Xgeev; --backend, --eig-method) and spectral metrics of recurrent matrices: "
        "rho, r_outer (k outliers excluded), r_inner, ring_ratio, the dominant eigenvalue and its "
        "frequency, Henrici departure from normality, lam_sym_max, counts outside the unit circle, "
        "singular-value spread and normalised SVD entropy, and per-population (E->E, E->I, I->E, "
        "I->I) weight statistics.\n"
        "Results files are updated in place (eig_initial, eig_projected, eig, the singular values "
        "sv_initial, sv_projected, sv, their metrics and the attributes eig_method, "
        "eig_fallbacks; docs/FORMAT.md). Keras and --h5 matrices carry "
        "no unit signs: when every column of a matrix is single-signed (a Dale network) the signs "
        "are inferred from the columns, otherwise the weight-statistics columns are NaN. The "
        "metrics' definitions: docs/MODEL.md.");
    sub->add_option("results", args->results,
                    "eirnn results files: spectra and metrics of every group are recomputed and "
                    "written back atomically");
    sub->add_option("--keras", args->keras,
                    "Keras 2.x/3.x model files (HDF5) with SimpleRNN layers; W_rec = "
                    "recurrent_kernel transposed");
    sub->add_option(
        "--h5", args->h5,
        "FILE:DATASET of shape [N,N] or [K,N,N] (float or double), row i = weights onto "
        "unit i; repeatable");
    args->outliers_opt =
        sub->add_option(
               "--outliers", args->outliers,
               "k of r_outer (the (k+1)-th largest |lambda|); results-file groups use their "
               "own configured k unless this is given")
            ->capture_default_str();
    sub->add_option("--format", args->format, "output on stdout")
        ->check(CLI::IsMember({"table", "csv", "json"}))
        ->capture_default_str();
    sub->add_option(
        "--save", args->save,
        "also write an HDF5 file: /sets/sNNNN/{eig (K,N) complex128, sv (K,N) float64, "
        "metrics/<name> (K), sign (K,N) when known} with attributes source, matrix, stage, "
        "eig_method");
    sub->add_flag("--force", args->force, "overwrite an existing --save file");
    sub->add_option("--threads", args->threads, "CPU threads (0 = all cores)")
        ->capture_default_str();
    sub->add_option("--backend", args->backend,
                    "auto (cuda when a device is usable, else cpu) | cpu | cuda: where the "
                    "eigenvalues are computed (the metrics always run on the CPU)")
        ->capture_default_str();
    sub->add_option("--eig-method", args->eig_method, eig_method_help())->capture_default_str();
    sub->callback([args] { run(*args); });
}

}  // namespace eirnn::cli
