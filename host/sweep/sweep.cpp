// Sweep files (docs/SWEEP.md): TOML parsing with toml++, checking with source positions, and the
// expansion of the axes into cells. Every cell's GroupConfig is built through its JSON form
// (to_json / group_config_from_json), so the [model], [train] and [task] tables take exactly the
// keys of a results file's `config` attribute.
#include "host/sweep/sweep.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/io/results.hpp"
#include "tasks/task.hpp"

namespace eirnn {

/// The most cells a sweep may have (docs/SWEEP.md).
constexpr std::size_t kMaxCells = 1'000'000;
using nlohmann::json;

namespace {

constexpr const char* kSections[] = {"model", "train", "task"};
constexpr const char* kTopKeys =
    "description, output, networks_per_cell, seed, data_seed, backend, eig_method, threads, "
    "until_learned, max_attempts, outliers, spectra, [model], [train], [task], [axes] or "
    "[[axes]], [slurm]";
constexpr const char* kSlurmKeys =
    "shards, partition, account, qos, constraint, mem, cpus_per_task, time_factor, min_minutes, "
    "extra, setup";

/// Defaults of every group setting, in the JSON form whose keys the sweep file uses.
const json& defaults() {
    static const json d = to_json(GroupConfig{});
    return d;
}

std::string position(const std::string& source, const toml::source_region& r) {
    return source + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

/// Control characters escaped as \xNN: messages quote keys, values and (toml++) the offending
/// character, any of which may hold a line break, and an error is one line.
std::string one_line(std::string_view text) {
    std::string out;
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u != 0x7f) {
            out += c;
            continue;
        }
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", u);
        out += buf;
    }
    return out;
}

[[noreturn]] void fail_at(const std::string& source, const toml::node& n, const std::string& key,
                          const std::string& msg) {
    throw InputError(one_line(position(source, n.source()) + ": " + key + ": " + msg));
}

/// The table and key an axis name sets: "task" is the task kind, any other name a key of exactly
/// one of [model], [train], [task].
std::optional<std::pair<std::string, std::string>> axis_target(const std::string& name) {
    if (name == "task") return std::pair<std::string, std::string>{"task", "kind"};
    if (name == "kind") return std::nullopt;
    for (const char* sec : kSections)
        if (defaults().at(sec).contains(name))
            return std::pair<std::string, std::string>{sec, name};
    return std::nullopt;
}

/// A TOML value converted to the JSON type of the setting it replaces (default `like`).
json convert(const std::string& source, const toml::node& n, const std::string& key,
             const json& like) {
    if (like.is_boolean()) {
        if (!n.is_boolean()) fail_at(source, n, key, "must be true or false");
        return n.as_boolean()->get();
    }
    if (like.is_string()) {
        if (!n.is_string()) fail_at(source, n, key, "must be a string");
        return n.as_string()->get();
    }
    if (like.is_number_integer()) {
        if (!n.is_integer()) fail_at(source, n, key, "must be an integer");
        std::int64_t v = n.as_integer()->get();
        if (v < INT_MIN || v > INT_MAX) fail_at(source, n, key, "out of range");
        return v;
    }
    if (like.is_number_float()) {
        if (n.is_integer()) return static_cast<double>(n.as_integer()->get());
        if (!n.is_floating_point()) fail_at(source, n, key, "must be a number");
        return n.as_floating_point()->get();
    }
    fail_at(source, n, key, "cannot be set in a sweep file");
}

int get_int(const std::string& source, const toml::node& n, const std::string& key, std::int64_t lo,
            std::int64_t hi) {
    if (!n.is_integer()) fail_at(source, n, key, "must be an integer");
    std::int64_t v = n.as_integer()->get();
    if (v < lo || v > hi)
        fail_at(source, n, key,
                "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                    std::to_string(v));
    return static_cast<int>(v);
}

std::uint64_t get_seed(const std::string& source, const toml::node& n, const std::string& key) {
    if (!n.is_integer() || n.as_integer()->get() < 0)
        fail_at(source, n, key, "must be a non-negative integer");
    return static_cast<std::uint64_t>(n.as_integer()->get());
}

std::string get_string(const std::string& source, const toml::node& n, const std::string& key) {
    if (!n.is_string()) fail_at(source, n, key, "must be a string");
    return n.as_string()->get();
}

std::vector<std::string> get_strings(const std::string& source, const toml::node& n,
                                     const std::string& key) {
    if (!n.is_array()) fail_at(source, n, key, "must be a list of strings");
    std::vector<std::string> out;
    for (const toml::node& el : *n.as_array()) {
        if (!el.is_string()) fail_at(source, el, key, "must be a list of strings");
        std::string v = el.as_string()->get();
        if (v.find('\n') != std::string::npos) fail_at(source, el, key, "one line per entry");
        out.push_back(std::move(v));
    }
    return out;
}

/// The [slurm] table: job settings that do not change the results.
SlurmSettings parse_slurm(const std::string& source, const toml::table& t) {
    SlurmSettings st;
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        const std::string full = "slurm." + key;
        const toml::node& node = v;  // clang 14 cannot capture a structured binding
        auto line = [&](std::string& dst) {
            dst = get_string(source, node, full);
            if (dst.find_first_of("\n\r") != std::string::npos ||
                dst.find(' ') != std::string::npos)
                fail_at(source, node, full, "must be one word without spaces");
        };
        if (key == "shards")
            st.shards = get_int(source, v, full, 1, 100'000);
        else if (key == "partition")
            line(st.partition);
        else if (key == "account")
            line(st.account);
        else if (key == "qos")
            line(st.qos);
        else if (key == "constraint")
            line(st.constraint);
        else if (key == "mem")
            line(st.mem);
        else if (key == "cpus_per_task")
            st.cpus_per_task = get_int(source, v, full, 1, 100'000);
        else if (key == "min_minutes")
            st.min_minutes = get_int(source, v, full, 1, 1'000'000);
        else if (key == "time_factor") {
            if (!v.is_number()) fail_at(source, v, full, "must be a number");
            st.time_factor = v.is_integer() ? static_cast<double>(v.as_integer()->get())
                                            : v.as_floating_point()->get();
            if (!(st.time_factor >= 1.0) || st.time_factor > 1000)
                fail_at(source, v, full, "must be in [1, 1000]");
        } else if (key == "extra")
            st.extra = get_strings(source, v, full);
        else if (key == "setup")
            st.setup = get_strings(source, v, full);
        else
            fail_at(source, v, full,
                    std::string("unknown key in [slurm] (known: ") + kSlurmKeys + ")");
    }
    return st;
}

struct Axis {
    std::string name, section, key;
    const toml::array* values = nullptr;
    std::vector<json> converted;
};

/// The setting a validation message is about: "--e-frac: ..." -> e_frac, "task: stim_dur ..." ->
/// stim_dur, "config: bad value 'x' for init" -> init.
std::string key_of_message(const std::string& msg) {
    auto is_name = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    };
    std::size_t b = 0;
    if (msg.rfind("--", 0) == 0)
        b = 2;
    else if (msg.rfind("task: ", 0) == 0)
        b = 6;
    else if (msg.rfind("config: bad value", 0) == 0 && msg.rfind(" for ") != std::string::npos)
        b = msg.rfind(" for ") + 5;
    else
        return {};
    std::size_t e = b;
    while (e < msg.size() && is_name(msg[e])) ++e;
    std::string k = msg.substr(b, e - b);
    std::replace(k.begin(), k.end(), '-', '_');
    return k;
}

}  // namespace

namespace {
json axes_of(const SweepGrid& g) {
    json axes = json::array();
    for (std::size_t a = 0; a < g.axis_names.size(); ++a)
        axes.push_back({g.axis_names[a], g.axis_sizes[a]});
    return axes;
}

/// plan_json() with or without the cells (the hash streams them). A sweep of one grid has the
/// plan it had before sweeps could have several, so that its hash, and its results, stay valid.
json plan_of(const Sweep& s, bool with_cells) {
    json cs = json::array();
    if (with_cells)
        for (const SweepCell& c : s.cells)
            cs.push_back({{"cell", c.axes}, {"config", to_json(c.cfg)}});
    json plan{{"format", "eirnn-sweep"},
              {"version", 1},
              {"networks_per_cell", s.networks_per_cell},
              {"until_learned", s.until_learned},
              {"max_attempts", s.max_attempts},
              {"learned_accuracy", kLearnedAccuracy},
              {"seed", s.seed},
              {"seed_stride", s.seed_stride},
              {"cells", cs}};
    if (s.grids.size() <= 1) {
        plan["axes"] = s.grids.empty() ? json::array() : axes_of(s.grids.front());
    } else {
        plan["version"] = 2;
        json grids = json::array();
        for (const SweepGrid& g : s.grids)
            grids.push_back({{"axes", axes_of(g)}, {"cells", g.cells}});
        plan["grids"] = grids;
    }
    return plan;
}
}  // namespace

json Sweep::plan_json() const {
    return plan_of(*this, true);
}

std::string Sweep::hash() const {
    // FNV-1a, 64 bits, of the canonical JSON of plan_json() (nlohmann sorts object keys), fed one
    // cell at a time: the bytes are those of plan_json().dump(), without holding a million cells'
    // JSON at once.
    std::uint64_t h = 1469598103934665603ull;
    auto feed = [&h](std::string_view text) {
        for (unsigned char c : text) {
            h ^= c;
            h *= 1099511628211ull;
        }
    };
    const std::string frame = plan_of(*this, false).dump();
    const std::string marker = "\"cells\":[]";
    const std::size_t at = frame.find(marker);
    if (at == std::string::npos) throw Error("sweep hash: no cells in the plan");
    const std::size_t open = at + marker.size() - 1;  // just after '['
    feed(std::string_view(frame).substr(0, open));
    for (std::size_t i = 0; i < cells.size(); ++i) {
        if (i) feed(",");
        feed(json{{"cell", cells[i].axes}, {"config", to_json(cells[i].cfg)}}.dump());
    }
    feed(std::string_view(frame).substr(open));
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

void check_sweep_memory(const Sweep& s) {
    double most = 0;
    const SweepCell* worst = nullptr;
    for (const SweepCell& c : s.cells) {
        GroupConfig cfg = c.cfg;
        cfg.networks = std::min(s.networks_per_cell, s.max_networks());
        const double b = train_memory_bytes(cfg, s.threads);
        if (b > most) {
            most = b;
            worst = &c;
        }
    }
    if (!worst) return;
    check_memory(
        most,
        s.source + ": cell " + std::to_string(worst->index) + " (" + cell_label(s, *worst) + ")",
        "lower networks_per_cell, or that cell's units, trials or batch, or raise "
        "EIRNN_MEMORY_LIMIT");
}

Sweep parse_sweep(std::string_view text, const std::string& source) {
    toml::table doc;
    try {
        doc = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        throw InputError(position(source, e.source()) + ": " + one_line(e.description()));
    }

    Sweep s;
    s.source = source;
    json base = defaults();
    std::map<std::string, const toml::node*> fixed;  // "section.key" -> node, for messages
    std::optional<int> max_attempts;
    const toml::node* max_attempts_node = nullptr;
    std::vector<const toml::table*> grid_tables;  // [axes], or each [[axes]] table in turn

    for (auto&& [k, v] : doc) {
        const std::string key(k.str());
        if (key == "description") {
            s.description = get_string(source, v, key);
        } else if (key == "output") {
            std::string o = get_string(source, v, key);
            if (o.empty()) fail_at(source, v, key, "must not be empty");
            s.output = o;
        } else if (key == "networks_per_cell") {
            s.networks_per_cell = get_int(source, v, key, 1, 1'000'000);
        } else if (key == "seed") {
            s.seed = get_seed(source, v, key);
        } else if (key == "data_seed") {
            base["data_seed"] = get_seed(source, v, key);
        } else if (key == "backend") {
            std::string b = get_string(source, v, key);
            if (!parse_backend(b))
                fail_at(source, v, key, "unknown backend '" + b + "' (auto, cpu, cuda)");
            base["backend"] = b;
        } else if (key == "eig_method") {
            std::string m = get_string(source, v, key);
            auto e = parse_eig_method(m);
            if (!e)
                fail_at(source, v, key,
                        "unknown method '" + m + "' (auto, lapack, batched, xgeev)");
            s.eig_method = *e;
        } else if (key == "threads") {
            s.threads = get_int(source, v, key, 0, 4096);
        } else if (key == "until_learned") {
            s.until_learned = get_int(source, v, key, 1, 1'000'000);
        } else if (key == "max_attempts") {
            max_attempts = get_int(source, v, key, 1, 1'000'000);
            max_attempts_node = &v;
        } else if (key == "outliers") {
            base["outliers"] = get_int(source, v, key, 0, 1'000'000);
            fixed["outliers"] = &v;
        } else if (key == "spectra") {
            if (!v.is_boolean()) fail_at(source, v, key, "must be true or false");
            base["spectra"] = v.as_boolean()->get();
        } else if (key == "model" || key == "train" || key == "task") {
            if (!v.is_table()) fail_at(source, v, key, "must be a table ([" + key + "])");
            for (auto&& [k2, v2] : *v.as_table()) {
                const std::string name(k2.str());
                const std::string full = key + "." + name;
                if (!defaults().at(key).contains(name))
                    fail_at(source, v2, full, "unknown key in [" + key + "]");
                base[key][name] = convert(source, v2, full, defaults().at(key).at(name));
                fixed[full] = &v2;
            }
        } else if (key == "slurm") {
            if (!v.is_table()) fail_at(source, v, key, "must be a table ([slurm])");
            s.slurm = parse_slurm(source, *v.as_table());
        } else if (key == "axes") {
            if (v.is_table()) {
                grid_tables.push_back(v.as_table());
            } else if (v.is_array() && !v.as_array()->empty()) {
                for (const toml::node& g : *v.as_array()) {
                    if (!g.is_table())
                        fail_at(source, g, key,
                                "must be a table ([axes]) or a list of tables ([[axes]])");
                    if (g.as_table()->empty())
                        fail_at(source, g, key, "empty grid: give at least one axis");
                    grid_tables.push_back(g.as_table());
                }
            } else {
                fail_at(source, v, key, "must be a table ([axes]) or a list of tables ([[axes]])");
            }
        } else {
            fail_at(source, v, key, std::string("unknown key (known: ") + kTopKeys + ")");
        }
    }
    if (max_attempts && s.until_learned == 0)
        fail_at(source, *max_attempts_node, "max_attempts", "needs until_learned");
    if (s.until_learned > 0) {
        s.max_attempts = max_attempts.value_or(std::max(s.networks_per_cell, 3 * s.until_learned));
        if (s.max_attempts < s.until_learned)
            fail_at(source, *max_attempts_node, "max_attempts",
                    "must be >= until_learned (" + std::to_string(s.until_learned) + ")");
    }
    s.seed_stride = static_cast<std::uint64_t>(s.max_networks());

    // Each grid's axes, in the order they are written (toml++ tables are sorted by key).
    std::vector<std::vector<Axis>> grid_axes;
    for (const toml::table* table : grid_tables) {
        std::vector<Axis>& axes = grid_axes.emplace_back();
        for (auto&& [k, v] : *table) {
            Axis a;
            a.name = std::string(k.str());
            const std::string full = "axes." + a.name;
            auto target = axis_target(a.name);
            if (!target)
                fail_at(
                    source, v, full,
                    "unknown axis (an axis is any key of [model], [train] or [task]; the task kind "
                    "is 'task')");
            a.section = target->first;
            a.key = target->second;
            if (fixed.count(a.section + "." + a.key))
                fail_at(
                    source, v, full,
                    "also set in [" + a.section + "]: give a setting either a value or an axis");
            if (!v.is_array()) fail_at(source, v, full, "must be a list of values, e.g. [1, 2]");
            a.values = v.as_array();
            if (a.values->empty()) fail_at(source, v, full, "empty axis: give at least one value");
            // The cap first: an axis alone beyond it is refused before its values are read.
            if (a.values->size() > kMaxCells)
                fail_at(source, v, full,
                        std::to_string(a.values->size()) + " values: more than the " +
                            std::to_string(kMaxCells) + " cells a sweep may have");
            const json& like = defaults().at(a.section).at(a.key);
            std::unordered_set<std::string> seen;  // canonical dumps: linear time
            a.converted.reserve(a.values->size());
            for (const toml::node& el : *a.values) {
                json value = convert(source, el, full, like);
                if (!seen.insert(value.dump()).second)
                    fail_at(source, el, full,
                            "duplicate value " + value.dump() + " (two cells would be identical)");
                a.converted.push_back(std::move(value));
            }
            axes.push_back(std::move(a));
        }
        std::sort(axes.begin(), axes.end(), [](const Axis& x, const Axis& y) {
            const auto& p = x.values->source().begin;
            const auto& q = y.values->source().begin;
            return p.line != q.line ? p.line < q.line : p.column < q.column;
        });
    }
    if (grid_axes.empty()) grid_axes.emplace_back();  // no axes: one grid of one cell

    std::size_t n_cells = 0;
    for (std::size_t g = 0; g < grid_axes.size(); ++g) {
        SweepGrid grid;
        grid.first_cell = static_cast<int>(n_cells);
        grid.line =
            g < grid_tables.size() ? static_cast<int>(grid_tables[g]->source().begin.line) : 0;
        std::size_t size = 1;
        for (const Axis& a : grid_axes[g]) {
            grid.axis_names.push_back(a.name);
            grid.axis_sizes.push_back(a.converted.size());
            if (std::find(s.axis_names.begin(), s.axis_names.end(), a.name) == s.axis_names.end())
                s.axis_names.push_back(a.name);
            size *= a.converted.size();  // each factor <= kMaxCells, so checked before it can wrap
            if (size > kMaxCells) break;
        }
        n_cells += size;
        if (n_cells > kMaxCells) throw InputError(source + ": axes: more than 1,000,000 cells");
        grid.cells = static_cast<int>(size);
        s.grids.push_back(std::move(grid));
    }
    s.cells.reserve(n_cells);

    // Two cells of different grids with the same configuration (all but the seed) would be the
    // same cell trained twice: refused. Cells of one grid always differ in an axis value. Every
    // cell's settings are the fixed ones but for the axes of its grid, so two cells have the same
    // configuration when they agree on every setting that is an axis of some grid: the identity
    // of a cell is the list of those values (converted, so 2 and 2.0 of a real setting agree).
    // Cells with the same identity have the same configuration, and conversely.
    const bool several = s.grids.size() > 1;
    std::vector<std::pair<std::string, std::string>> targets;  // (section, key) of every axis
    for (const std::vector<Axis>& axes : grid_axes)
        for (const Axis& a : axes)
            if (std::find(targets.begin(), targets.end(), std::pair(a.section, a.key)) ==
                targets.end())
                targets.emplace_back(a.section, a.key);
    auto identity = [&targets](const json& j) {
        json id = json::array();
        for (const auto& [section, key] : targets) id.push_back(j.at(section).at(key));
        return id.dump();
    };
    // FNV-1a of the identity -> cell; a match is confirmed on both cells' full configurations.
    std::unordered_multimap<std::uint64_t, std::size_t> configs;
    auto fnv = [](const std::string& text) {
        std::uint64_t h = 1469598103934665603ull;
        for (unsigned char ch : text) {
            h ^= ch;
            h *= 1099511628211ull;
        }
        return h;
    };
    auto same_config = [](const GroupConfig& a, const GroupConfig& b) {
        json x = to_json(a), y = to_json(b);
        x.erase("seed");
        y.erase("seed");
        return x == y;
    };
    auto grid_name = [&](int g) {
        return "grid " + std::to_string(g + 1) + " (line " + std::to_string(s.grids[g].line) + ")";
    };

    // Expansion: the grids in file order; within one, cell r's axis values are the digits of r in
    // the mixed radix of the axis sizes (last axis fastest). Seeds follow the sweep-wide index.
    for (std::size_t g = 0; g < grid_axes.size(); ++g) {
        const std::vector<Axis>& axes = grid_axes[g];
        std::vector<std::size_t> digit(axes.size(), 0);
        const std::size_t first = static_cast<std::size_t>(s.grids[g].first_cell);
        for (std::size_t r = 0; r < static_cast<std::size_t>(s.grids[g].cells); ++r) {
            const std::size_t i = first + r;
            std::size_t rest = r;
            for (std::size_t a = axes.size(); a-- > 0;) {
                digit[a] = rest % axes[a].converted.size();
                rest /= axes[a].converted.size();
            }
            json j = base;
            SweepCell c;
            c.index = static_cast<int>(i);
            c.grid = static_cast<int>(g);
            c.axes = json::object();
            for (std::size_t a = 0; a < axes.size(); ++a) {
                j[axes[a].section][axes[a].key] = axes[a].converted[digit[a]];
                c.axes[axes[a].name] = axes[a].converted[digit[a]];
            }
            j["networks"] = s.networks_per_cell;
            j["seed"] = s.seed + static_cast<std::uint64_t>(i) * s.seed_stride;
            try {
                c.cfg = group_config_from_json(j);
                c.cfg.threads = s.threads;
                validate(c.cfg);
            } catch (const InputError& e) {
                // Point at the setting the message names: an axis value of this cell, or a fixed
                // value.
                const std::string msg = e.what();
                const std::string k = key_of_message(msg);
                for (std::size_t a = 0; a < axes.size(); ++a)
                    if (!k.empty() && (axes[a].name == k || axes[a].key == k))
                        fail_at(source, *axes[a].values->get(digit[a]), "axes." + axes[a].name,
                                "value " + axes[a].converted[digit[a]].dump() + ": " + msg);
                for (const auto& [name, node] : fixed) {
                    std::string last = name.substr(name.find('.') + 1);
                    if (!k.empty() && (last == k || (k == "task" && name == "task.kind")))
                        fail_at(source, *node, name, msg);
                }
                throw InputError(one_line(source + ": cell " + c.axes.dump() + ": " + msg));
            }
            if (several) {
                const std::uint64_t h = fnv(identity(j));
                auto [lo, hi] = configs.equal_range(h);
                for (auto it = lo; it != hi; ++it) {
                    const SweepCell& other = s.cells[it->second];
                    if (!same_config(c.cfg, other.cfg)) continue;
                    fail_at(source, *grid_tables[g], "axes",
                            "cell " + group_id(c.index) + " " + c.axes.dump() + " of " +
                                grid_name(c.grid) + " has the configuration of cell " +
                                group_id(other.index) + " " + other.axes.dump() + " of " +
                                grid_name(other.grid) + ": the same cell twice");
                }
                configs.emplace(h, i);
            }
            s.cells.push_back(std::move(c));
        }
    }
    return s;
}

Sweep load_sweep(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path.string() + ": cannot read the sweep file");
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_sweep(ss.str(), path.string());
}

std::string cell_label(const Sweep& s, const SweepCell& c) {
    std::string out;
    const std::vector<std::string>& names = static_cast<std::size_t>(c.grid) < s.grids.size()
                                                ? s.grids[c.grid].axis_names
                                                : s.axis_names;
    for (const std::string& a : names) {
        if (!c.axes.contains(a)) continue;
        const json& v = c.axes.at(a);
        if (!out.empty()) out += ' ';
        out += a + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
    }
    return out.empty() ? "(no axes)" : out;
}

CellCost cell_cost(const GroupConfig& cfg) {
    const int n_train = cfg.train.trials - cfg.train.test_trials;
    const long long per_epoch = (n_train + cfg.train.batch - 1) / cfg.train.batch;
    const double N = cfg.model.units, B = cfg.train.batch, T = task_steps(cfg.task);
    return CellCost{per_epoch * cfg.train.epochs, 6.0 * N * N * B * T};
}

double cell_flop(const Sweep& s, const SweepCell& c) {
    return cell_cost(c.cfg).flop() * std::min(s.networks_per_cell, s.max_networks());
}

double cell_flop_max(const Sweep& s, const SweepCell& c) {
    return cell_cost(c.cfg).flop() * s.max_networks();
}

Shard parse_shard(const std::string& text, const std::string& flag) {
    const std::size_t slash = text.find('/');
    auto number = [&](const std::string& t, long long& v) {
        if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos)
            return false;
        v = std::stoll(t);
        return true;
    };
    long long i = 0, n = 0;
    if (slash == std::string::npos || !number(text.substr(0, slash), i) ||
        !number(text.substr(slash + 1), n))
        throw InputError(flag + ": expected I/N (shard I of N, 0 <= I < N), got '" + text + "'");
    if (n < 1 || i >= n)
        throw InputError(flag + ": shard " + std::to_string(i) + " of " + std::to_string(n) +
                         " does not exist (0 <= I < N)");
    return Shard{static_cast<int>(i), static_cast<int>(n)};
}

std::vector<int> assign_shards(const Sweep& s, int count) {
    if (count < 1) throw InputError("shards: must be >= 1");
    std::vector<int> order(s.cells.size());
    std::vector<double> cost(s.cells.size());
    for (std::size_t i = 0; i < s.cells.size(); ++i) {
        order[i] = static_cast<int>(i);
        cost[i] = cell_flop(s, s.cells[i]);
    }
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cost[a] > cost[b]; });
    std::vector<double> load(static_cast<std::size_t>(count), 0.0);
    std::vector<int> shard(s.cells.size(), 0);
    for (int i : order) {
        const auto least = std::min_element(load.begin(), load.end()) - load.begin();
        shard[static_cast<std::size_t>(i)] = static_cast<int>(least);
        load[static_cast<std::size_t>(least)] += cost[static_cast<std::size_t>(i)];
    }
    return shard;
}

}  // namespace eirnn
