// Running a sweep (docs/SWEEP.md): each cell trains in rounds (until_learned), is written
// atomically as `<output>.parts/gNNNN.h5`, and when every cell is done the parts are merged
// (merge_sweep: H5Ocopy, no re-encoding) into the results file, itself written atomically; then the
// parts folder goes. A shard (docs/CLUSTER.md) trains its own cells only and leaves the parts. Lock
// files (flock) keep two processes from running the same output, or the same shard, at once.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "host/io/results.hpp"
#include "host/sweep/sweep.hpp"
#include "host/sweep/sweep_parts.hpp"
#include "host/train/progress.hpp"

namespace eirnn {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep_parts;

namespace {

/// Temporaries left by a killed process: "<name>.tmp.<pid>" (or "<name>.tmp.<host>.<pid>") in
/// `dir`, of the given names only (all names when `names` is empty).
void remove_stale_temps(const fs::path& dir, const std::vector<std::string>& names) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return;
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string f = e.path().filename().string();
        const std::size_t t = f.find(".tmp.");
        if (t == std::string::npos) continue;
        if (!names.empty() && std::find(names.begin(), names.end(), f.substr(0, t)) == names.end())
            continue;
        const std::string pid = f.substr(f.rfind('.') + 1);
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        stale.push_back(e.path());
    }
    for (const fs::path& p : stale) fs::remove(p, ec);
}

/// The running marker of a cell, removed when the cell is done or its training fails.
class RunningMarker {
public:
    RunningMarker(const fs::path& parts, int index, const Shard& shard)
        : path_(running_marker(parts, index)) {
        json m{{"host", host_name()},
               {"pid", static_cast<long long>(getpid())},
               {"shard", shard.index},
               {"shards", shard.count}};
        write_text_atomic(path_, m.dump() + "\n");
    }
    RunningMarker(const RunningMarker&) = delete;
    RunningMarker& operator=(const RunningMarker&) = delete;
    ~RunningMarker() {
        std::error_code ec;
        fs::remove(path_, ec);
    }

private:
    fs::path path_;
};

int count_learned(const GroupResult& r) {
    int n = 0;
    for (int k = 0; k < r.cfg.networks; ++k)
        n += !r.st.diverged[k] && std::isfinite(r.accuracy[k]) && r.accuracy[k] >= kLearnedAccuracy;
    return n;
}

/// True when network a of x is a better example than network b of y (train_group's rule: higher
/// accuracy, else lower test loss; a finite loss beats a non-finite one).
bool better_example(const GroupResult& x, int a, const GroupResult& y, int b) {
    float aa = x.accuracy[a], ab = y.accuracy[b];
    bool better =
        std::isfinite(aa) && std::isfinite(ab) ? aa > ab : x.test_loss[a] < y.test_loss[b];
    if (!std::isfinite(y.test_loss[b]) && std::isfinite(x.test_loss[a])) better = true;
    return better;
}

template <class T>
void append(std::vector<T>& a, const std::vector<T>& b) {
    a.insert(a.end(), b.begin(), b.end());
}

/// Appends round r (seeds following acc's) to acc: one group whose networks are all rounds'.
void append_round(GroupResult& acc, GroupResult&& r) {
    if (acc.cfg.networks == 0) {
        acc = std::move(r);
        return;
    }
    const int offset = acc.cfg.networks;
    const bool take_example = better_example(r, r.example_network, acc, acc.example_network);
    acc.cfg.networks += r.cfg.networks;
    append(acc.w_rec_initial, r.w_rec_initial);
    append(acc.w_in_initial, r.w_in_initial);
    append(acc.w_out_initial, r.w_out_initial);
    GroupParams& g = acc.st.params;
    g.K += r.st.params.K;
    append(g.params, r.st.params.params);
    append(g.mask, r.st.params.mask);
    append(g.seeds, r.st.params.seeds);
    append(acc.st.loss, r.st.loss);
    append(acc.st.diverged, r.st.diverged);
    append(acc.st.stopped, r.st.stopped);
    append(acc.st.epochs_run, r.st.epochs_run);
    append(acc.st.updates, r.st.updates);
    append(acc.st.lr_scale, r.st.lr_scale);
    append(acc.test_loss, r.test_loss);
    append(acc.accuracy, r.accuracy);
    acc.train_seconds += r.train_seconds;
    if (take_example) {
        acc.example_network = offset + r.example_network;
        acc.S = r.S;
        acc.ex_x = std::move(r.ex_x);
        acc.ex_y = std::move(r.ex_y);
        acc.ex_out = std::move(r.ex_out);
        acc.ex_h = std::move(r.ex_h);
        acc.ex_type = std::move(r.ex_type);
        acc.ex_delay = std::move(r.ex_delay);
    }
}

/// Sweep-wide progress: cost (FLOPs) of the finished rounds plus the running round's share.
struct SweepProgress {
    TrainProgress round;
    std::atomic<double> done{0}, total{0}, round_flop_per_update{0};
    std::atomic<int> cells_done{0}, nets_done{0}, learned{0}, cell_index{0};
    int cells_total = 0, nets_planned = 0;

    double fraction() const {
        double t = total.load();
        if (t <= 0) return 0;
        return (done.load() +
                round_flop_per_update.load() * static_cast<double>(round.updates_done.load())) /
               t;
    }
};

/// Trains one cell: rounds of networks_per_cell networks (fewer for the last one when max_attempts
/// caps it) until until_learned networks have learned, or one round without until_learned. With
/// until_learned, the rounds so far are saved after each round that does not end the cell
/// (`rounds`), and a cell found with saved rounds continues after them.
GroupResult train_cell(const Sweep& s, const SweepCell& cell, Backend& backend, SweepProgress& p,
                       const fs::path& rounds, const std::string& hash, int& continued) {
    GroupResult acc;
    acc.cfg.networks = 0;
    const CellCost cost = cell_cost(cell.cfg);
    int trained = 0, learned = 0;
    if (s.until_learned > 0) {
        if (std::optional<GroupResult> saved = load_rounds(rounds, hash, cell)) {
            acc = std::move(*saved);
            trained = continued = acc.cfg.networks;
            learned = count_learned(acc);
            p.nets_done += trained;
            p.learned += learned;
            // The first round's planned cost, in the total since the start, is done.
            p.done = p.done.load() + cost.flop() * std::min(s.networks_per_cell, s.max_attempts);
            if (learned >= s.until_learned || trained >= s.max_attempts) return acc;
        }
    }
    for (;;) {
        GroupConfig cfg = cell.cfg;
        cfg.networks = s.until_learned > 0 ? std::min(s.networks_per_cell, s.max_attempts - trained)
                                           : s.networks_per_cell;
        cfg.seed = cell.cfg.seed + static_cast<std::uint64_t>(trained);
        const double planned = cost.flop() * cfg.networks;
        if (trained > 0) p.total = p.total.load() + planned;
        p.round.updates_done = 0;
        p.round.updates_total = 0;
        p.round_flop_per_update = cost.flop_per_update;
        GroupResult r = train_group(cfg, backend, &p.round);
        p.round_flop_per_update = 0;
        const double actual =
            cost.flop_per_update * static_cast<double>(p.round.updates_done.load());
        p.done = p.done.load() + actual;
        p.total = p.total.load() - planned + actual;
        p.round.updates_done = 0;
        trained += cfg.networks;
        learned += count_learned(r);
        p.nets_done += cfg.networks;
        p.learned += count_learned(r);
        append_round(acc, std::move(r));
        if (s.until_learned == 0 || learned >= s.until_learned || trained >= s.max_attempts) break;
        save_rounds(rounds, hash, cell, acc);
    }
    return acc;
}

void write_part(const fs::path& path, const std::string& id, const Sweep& s,
                const std::string& hash, const GroupResult& r, const SweepCell& cell, int threads,
                EigSolver* solver) {
    h5::AtomicFile out(path, true);
    write_root_attrs(out.file());
    h5::write_attr(out.file(), "sweep_hash", hash);
    h5::write_attr(out.file(), "sweep", sweep_attr(s).dump());
    write_group(out.file(), id, r, &cell.axes, threads, solver);
    out.commit();
}

}  // namespace

fs::path parts_dir(const fs::path& output) {
    fs::path p = output;
    p += ".parts";
    return p;
}

Calibration calibrate(const Sweep& s, Backend& backend) {
    if (s.cells.empty()) throw InputError(s.source + ": the sweep has no cells");
    const SweepCell* big = &s.cells.front();
    for (const SweepCell& c : s.cells)
        if (cell_cost(c.cfg).flop() > cell_cost(big->cfg).flop()) big = &c;
    GroupConfig cfg = big->cfg;
    cfg.model.units = std::min(cfg.model.units, 128);
    cfg.outliers = std::min(cfg.outliers, cfg.model.units - 1);
    cfg.networks = std::min(s.networks_per_cell, 4);
    cfg.train.epochs = 1;
    cfg.train.trials = cfg.train.test_trials + 2 * cfg.train.batch;
    cfg.train.early_stop = 0;
    cfg.spectra = false;
    if (cell_cost(cfg).flop() * cfg.networks > 4e9) {
        cfg.networks = std::min(cfg.networks, 2);
        cfg.train.trials = cfg.train.test_trials + cfg.train.batch;
    }
    GroupResult r = train_group(cfg, backend, nullptr);
    long long updates = 0;
    for (int k = 0; k < cfg.networks; ++k) updates += r.st.updates[k];
    Calibration c;
    c.flops = cell_cost(cfg).flop_per_update * static_cast<double>(updates) /
              std::max(r.train_seconds, 1e-9);
    c.units = cfg.model.units;
    c.networks = cfg.networks;
    c.steps = task_steps(cfg.task);
    c.batch = cfg.train.batch;
    return c;
}

SweepOutcome run_sweep(const Sweep& s, Backend& backend, const SweepRunOptions& opt) {
    check_sweep_memory(s);
    h5::quiet();
    const auto t0 = std::chrono::steady_clock::now();
    const std::string hash = s.hash();
    const fs::path parts = parts_dir(s.output);
    SweepOutcome outcome;
    outcome.cells = static_cast<int>(s.cells.size());
    std::error_code ec;

    if (fs::exists(s.output, ec)) {
        if (stored_hash(s.output) == hash) {
            fs::remove_all(parts, ec);
            outcome.already_complete = true;
            return outcome;
        }
        if (!opt.force)
            throw InputError(
                "output: " + s.output.string() +
                " exists and is not the result of this sweep (use --force to replace it)");
    }
    const Shard shard = opt.shard;
    const bool sharded = shard.count > 1;
    if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
        throw InputError("--shard: shard " + std::to_string(shard.index) + " of " +
                         std::to_string(shard.count) + " does not exist");
    // The cells this process trains (all of them without a shard), in index order.
    const std::vector<int> shard_of = assign_shards(s, shard.count);
    std::vector<const SweepCell*> mine;
    std::vector<std::string> mine_names;
    for (const SweepCell& c : s.cells)
        if (shard_of[c.index] == shard.index) {
            mine.push_back(&c);
            mine_names.push_back(group_id(c.index) + ".h5");
            mine_names.push_back(group_id(c.index) + ".running");
            mine_names.push_back(group_id(c.index) + ".rounds");
        }

    if (!s.output.parent_path().empty()) fs::create_directories(s.output.parent_path(), ec);
    h5::check_writable(s.output, true, "output");
    fs::create_directories(parts, ec);
    if (ec) throw InputError("output: cannot create " + parts.string() + ": " + ec.message());
    const std::string shard_tag =
        "shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count);
    LockFile lock(parts / (sharded ? "lock." + shard_tag : std::string("lock")),
                  "output: another eirnn process is running " +
                      (sharded ? "shard " + std::to_string(shard.index) + "/" +
                                     std::to_string(shard.count) + " of "
                               : std::string()) +
                      "the sweep of " + s.output.string());

    const fs::path manifest = parts / kManifest;
    std::string stored;
    if (fs::exists(manifest, ec)) {
        try {
            stored = json::parse(read_text(manifest)).value("hash", std::string());
        } catch (const json::exception&) {
        }
        if (!opt.restart && stored != hash) {
            int finished = 0;
            for (const auto& e : fs::directory_iterator(parts, ec))
                finished += e.path().extension() == ".h5";
            throw InputError(
                "output: " + parts.string() + " holds " + std::to_string(finished) +
                " finished groups of a different sweep configuration (the file changed "
                "since it started); rerun with --restart to discard them");
        }
    }
    if (opt.restart) {
        // A shard discards only its own cells: the other shards may be running.
        std::vector<fs::path> gone;
        for (const auto& e : fs::directory_iterator(parts, ec)) {
            const std::string f = e.path().filename().string();
            if (f.rfind("lock", 0) == 0) continue;
            if (!sharded || std::find(mine_names.begin(), mine_names.end(), f) != mine_names.end())
                gone.push_back(e.path());
        }
        for (const fs::path& g : gone) fs::remove_all(g, ec);
    }
    if (sharded) {
        remove_stale_temps(parts, mine_names);
    } else {
        remove_stale_temps(parts, {});
        remove_stale_temps(s.output.parent_path().empty() ? fs::path(".") : s.output.parent_path(),
                           {s.output.filename().string()});
    }
    if (stored != hash || opt.restart) {
        json m = s.plan_json();
        m["hash"] = hash;
        write_text_atomic(manifest, m.dump(1) + "\n");
    }
    if (sharded)
        write_text_atomic(parts / (shard_tag + ".json"),
                          json{{"shard", shard.index},
                               {"shards", shard.count},
                               {"host", host_name()},
                               {"pid", static_cast<long long>(getpid())},
                               {"cells", mine.size()}}
                                  .dump() +
                              "\n");

    // Cells already complete, and the cost of the others (the progress bar's denominator).
    std::vector<bool> done(s.cells.size(), false);
    SweepProgress p;
    p.cells_total = static_cast<int>(mine.size());
    for (const SweepCell* cp : mine) {
        const SweepCell& c = *cp;
        const fs::path part = parts / (group_id(c.index) + ".h5");
        done[c.index] = part_complete(part, group_id(c.index), hash);
        if (!done[c.index]) {
            fs::remove(part, ec);
            const int first_round = std::min(s.networks_per_cell, s.max_networks());
            p.total = p.total.load() + cell_cost(c.cfg).flop() * first_round;
            p.nets_planned += first_round;
        }
    }

    {
        ProgressBar bar([&] { return p.fraction(); },
                        [&] {
                            char buf[160];
                            std::snprintf(
                                buf, sizeof buf, "group %d/%d | %d/%d nets trained, %d learned",
                                p.cell_index.load() + 1, p.cells_total, p.nets_done.load(),
                                std::max(p.nets_planned, p.nets_done.load()), p.learned.load());
                            return std::string(buf);
                        },
                        opt.progress);
        for (const SweepCell* cp : mine) {
            const SweepCell& c = *cp;
            const std::string id = group_id(c.index);
            const fs::path part = parts / (id + ".h5");
            CellReport rep;
            rep.cell = &c;
            if (done[c.index]) {
                h5::Id f = h5::open_read(part);
                h5::Id g = h5::open_group(f, "groups/" + id);
                auto acc = h5::read_float(g, "accuracy");
                auto div = h5::read_int(g, "diverged");
                rep.resumed = true;
                rep.trained = static_cast<int>(acc.data.size());
                for (std::size_t k = 0; k < acc.data.size(); ++k)
                    rep.learned += !div.data[k] && std::isfinite(acc.data[k]) &&
                                   acc.data[k] >= kLearnedAccuracy;
                rep.seconds = h5::read_attr_double(g, "train_seconds");
                ++outcome.resumed;
            } else {
                const auto c0 = std::chrono::steady_clock::now();
                RunningMarker marker(parts, c.index, shard);
                const fs::path rounds = rounds_file(parts, c.index);
                GroupResult r = train_cell(s, c, backend, p, rounds, hash, rep.continued);
                write_part(part, id, s, hash, r, c, s.threads, opt.eig_solver);
                fs::remove(rounds, ec);
                rep.trained = r.cfg.networks;
                rep.learned = count_learned(r);
                rep.seconds =
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
            }
            outcome.networks += rep.trained;
            outcome.learned += rep.learned;
            ++p.cells_done;
            p.cell_index = p.cell_index.load() + 1;
            if (opt.on_cell) opt.on_cell(rep);
        }
    }

    outcome.cells = static_cast<int>(mine.size());
    if (!sharded) {
        MergeOptions mo;
        mo.sweep = &s;
        mo.force = true;  // checked above
        merge_sweep({parts}, s.output, mo);
        fs::remove_all(parts, ec);
        outcome.merged = true;
    }
    outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return outcome;
}

}  // namespace eirnn
