// The parts folder of a sweep (host/sweep/sweep_parts.hpp): locks, markers, atomic small files, and
// the two readers of a folder that other processes may be writing: the merge (`eirnn merge`, `eirnn
// sweep --merge`, the end of an unsharded run) and the status (`eirnn sweep --status`).
#include "host/sweep/sweep_parts.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <type_traits>

#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "host/io/results.hpp"

namespace eirnn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace sweep_parts {

LockFile::LockFile(const fs::path& path, const std::string& busy) {
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot create " + path.string());
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd_);
        fd_ = -1;
        throw InputError(busy);
    }
}

LockFile::~LockFile() {
    if (fd_ >= 0) ::close(fd_);
}

std::string host_name() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
    return buf;
}

void write_text_atomic(const fs::path& path, const std::string& text) {
    // Shards on several nodes may write the same file: the temporary is unique per host and pid.
    fs::path tmp = path;
    tmp += ".tmp." + host_name() + "." + std::to_string(getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out) throw Error("cannot write " + tmp.string());
    }
    int fd = ::open(tmp.c_str(), O_RDONLY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
    fs::rename(tmp, path);
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string stored_hash(const fs::path& path) {
    try {
        if (!h5::is_hdf5(path)) return {};
        h5::Id f = h5::open_read(path);
        return h5::has_attr(f, "sweep_hash") ? h5::read_attr_string(f, "sweep_hash")
                                             : std::string();
    } catch (const std::exception&) {
        return {};
    }
}

bool part_complete(const fs::path& path, const std::string& id, const std::string& hash) {
    try {
        if (!h5::is_hdf5(path)) return false;
        h5::Id f = h5::open_read(path);
        return h5::has_attr(f, "sweep_hash") && h5::read_attr_string(f, "sweep_hash") == hash &&
               h5::exists(f, "groups/" + id);
    } catch (const std::exception&) {
        return false;
    }
}

json sweep_attr(const Sweep& s) {
    json j = s.plan_json();
    j.erase("cells");
    j["source"] = s.source;
    j["description"] = s.description;
    j["cells"] = s.cells.size();
    return j;
}

std::string cell_name(const json& plan, int index) {
    std::string name = group_id(index);
    try {
        const json& cell = plan.at("cells").at(static_cast<std::size_t>(index)).at("cell");
        // The axes of the cell's grid: the plan's own, or those of the grid holding the index.
        const json* axes = plan.contains("axes") ? &plan.at("axes") : nullptr;
        if (!axes) {
            long long end = 0;
            for (const json& g : plan.at("grids")) {
                end += g.at("cells").get<long long>();
                if (index < end) {
                    axes = &g.at("axes");
                    break;
                }
            }
        }
        if (!axes) return name;
        std::string label;
        for (const json& axis : *axes) {
            const std::string a = axis.at(0).get<std::string>();
            const json& v = cell.at(a);
            label += (label.empty() ? "" : " ") + a + "=" +
                     (v.is_string() ? v.get<std::string>() : v.dump());
        }
        if (!label.empty()) name += " (" + label + ")";
    } catch (const json::exception&) {
    }
    return name;
}

fs::path running_marker(const fs::path& parts, int index) {
    return parts / (group_id(index) + ".running");
}

bool marker_stale(const json& marker) {
    try {
        if (marker.at("host").get<std::string>() != host_name()) return false;
        const auto pid = marker.at("pid").get<long long>();
        if (pid <= 0 || pid > INT_MAX) return true;
        return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    } catch (const json::exception&) {
        return true;
    }
}

fs::path rounds_file(const fs::path& parts, int index) {
    return parts / (group_id(index) + ".rounds");
}

namespace {

constexpr char kRoundsMagic[] = "eirnn-rounds 1\n";

std::uint64_t fnv1a(const char* p, std::size_t n) {
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(p[i]);
        h *= 1099511628211ull;
    }
    return h;
}

/// Values and vectors of trivially copyable types, in this machine's byte order (the file is read
/// back only by the sweep that wrote it, on the same kind of machine).
struct Writer {
    template <class T>
    void put(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    template <class T>
    void put(const std::vector<T>& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        put(static_cast<std::uint64_t>(v.size()));
        bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    }
    void put(const std::string& v) {
        put(static_cast<std::uint64_t>(v.size()));
        bytes += v;
    }
    std::string bytes;
};

struct Damaged {};

class Reader {
public:
    Reader(const std::string& b, std::size_t pos, std::size_t end) : b_(b), pos_(pos), end_(end) {}
    template <class T>
    void get(T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        take(&v, sizeof v);
    }
    template <class T>
    void get(std::vector<T>& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        std::uint64_t n = 0;
        get(n);
        if (n > (end_ - pos_) / sizeof(T)) throw Damaged{};
        v.resize(n);
        take(v.data(), n * sizeof(T));
    }
    void get(std::string& v) {
        std::uint64_t n = 0;
        get(n);
        if (n > end_ - pos_) throw Damaged{};
        v.assign(b_, pos_, n);
        pos_ += n;
    }
    bool at_end() const { return pos_ == end_; }

private:
    void take(void* dst, std::size_t n) {
        if (n > end_ - pos_) throw Damaged{};
        if (n > 0) std::memcpy(dst, b_.data() + pos_, n);
        pos_ += n;
    }
    const std::string& b_;
    std::size_t pos_, end_;
};

/// Every field of a group that the rounds of a cell build up (append_round in sweep_run.cpp); the
/// configuration is the cell's.
template <class IO, class G>
void fields(IO&& io, G& r) {
    io(r.backend);
    io(r.I);
    io(r.O);
    io(r.T);
    io(r.w_rec_initial);
    io(r.w_in_initial);
    io(r.w_out_initial);
    io(r.st.params.K);
    io(r.st.params.params);
    io(r.st.params.sign);
    io(r.st.params.mask);
    io(r.st.params.seeds);
    io(r.st.loss);
    io(r.st.diverged);
    io(r.st.stopped);
    io(r.st.epochs_run);
    io(r.st.updates);
    io(r.st.lr_scale);
    io(r.test_loss);
    io(r.accuracy);
    io(r.example_network);
    io(r.S);
    io(r.ex_x);
    io(r.ex_y);
    io(r.ex_out);
    io(r.ex_h);
    io(r.ex_type);
    io(r.ex_delay);
    io(r.train_seconds);
}

}  // namespace

void save_rounds(const fs::path& path, const std::string& hash, const SweepCell& cell,
                 const GroupResult& acc) {
    Writer w;
    w.put(hash);
    w.put(cell.index);
    fields([&w](const auto& v) { w.put(v); }, acc);
    w.put(fnv1a(w.bytes.data(), w.bytes.size()));
    write_text_atomic(path, kRoundsMagic + w.bytes);
}

std::optional<GroupResult> load_rounds(const fs::path& path, const std::string& hash,
                                       const SweepCell& cell) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return std::nullopt;
    const std::string b = read_text(path);
    const std::size_t head = sizeof kRoundsMagic - 1, tail = sizeof(std::uint64_t);
    GroupResult r;
    bool ok = b.size() > head + tail && b.compare(0, head, kRoundsMagic) == 0;
    if (ok) {
        const std::size_t end = b.size() - tail;
        std::uint64_t check = 0;
        std::memcpy(&check, b.data() + end, tail);
        ok = check == fnv1a(b.data() + head, end - head);
        try {
            Reader rd(b, head, end);
            std::string h;
            int index = -1;
            rd.get(h);
            rd.get(index);
            fields([&rd](auto& v) { rd.get(v); }, r);
            const std::size_t K = r.st.params.seeds.size();
            const ParamLayout L = ParamLayout::make(cell.cfg.model.units, r.I, r.O);
            ok = ok && rd.at_end() && h == hash && index == cell.index && K > 0 &&
                 r.st.params.K == static_cast<int>(K) && r.st.params.params.size() == K * L.total &&
                 r.accuracy.size() == K && r.st.diverged.size() == K;
            r.cfg = cell.cfg;
            r.cfg.networks = static_cast<int>(K);
            r.st.params.layout = L;
        } catch (const Damaged&) {
            ok = false;
        }
    }
    if (!ok) {
        std::fprintf(stderr, "eirnn: %s: damaged or of another sweep; the cell starts over\n",
                     path.c_str());
        fs::remove(path, ec);
        return std::nullopt;
    }
    return r;
}

}  // namespace sweep_parts

using namespace sweep_parts;

namespace {

/// "g0042" -> 42; -1 for any other name.
int cell_index_of(const std::string& id) {
    if (id.size() < 2 || id[0] != 'g' || id.size() > 10 ||
        id.find_first_not_of("0123456789", 1) != std::string::npos)
        return -1;
    const int i = std::stoi(id.substr(1));
    return group_id(i) == id ? i : -1;
}

/// The plan of a parts folder (its sweep.json) when it belongs to the sweep `hash`, else null.
json manifest_plan(const fs::path& dir, const std::string& hash) {
    std::error_code ec;
    const fs::path m = dir / kManifest;
    if (!fs::is_regular_file(m, ec)) return nullptr;
    try {
        json j = json::parse(read_text(m));
        if (j.value("hash", std::string()) == hash) return j;
    } catch (const json::exception&) {
    }
    return nullptr;
}

}  // namespace

MergeOutcome merge_sweep(const std::vector<fs::path>& inputs, const fs::path& output,
                         const MergeOptions& opt) {
    h5::quiet();
    std::error_code ec;
    if (inputs.empty()) throw InputError("merge: give part files or parts folders");
    std::vector<fs::path> files, folders;
    for (const fs::path& in : inputs) {
        if (fs::is_directory(in, ec)) {
            std::vector<fs::path> found;
            for (const auto& e : fs::directory_iterator(in, ec))
                if (e.is_regular_file(ec) && e.path().extension() == ".h5")
                    found.push_back(e.path());
            if (found.empty()) throw InputError(in.string() + ": no part files (*.h5) in it");
            std::sort(found.begin(), found.end());
            files.insert(files.end(), found.begin(), found.end());
            folders.push_back(in);
        } else if (fs::exists(in, ec)) {
            files.push_back(in);
            folders.push_back(in.parent_path().empty() ? fs::path(".") : in.parent_path());
        } else {
            throw InputError(in.string() + ": no such file or folder");
        }
    }
    for (const fs::path& f : files)
        if (fs::exists(output, ec) && fs::equivalent(f, output, ec))
            throw InputError("merge: the output " + output.string() + " is also an input");

    std::string hash = opt.sweep ? opt.sweep->hash() : std::string();
    std::string hash_from = opt.sweep ? opt.sweep->source : std::string();
    std::string attr = opt.sweep ? sweep_attr(*opt.sweep).dump() : std::string();
    std::map<int, fs::path> where;  // cell index -> the part holding it
    for (const fs::path& f : files) {
        if (!h5::is_hdf5(f)) throw InputError(f.string() + ": not an HDF5 file");
        h5::Id file = opt.untrusted ? h5::open_untrusted(f) : h5::open_read(f);
        if (!h5::has_attr(file, "sweep_hash") || !h5::exists(file, "groups"))
            throw InputError(f.string() + ": not a part of a sweep (no sweep_hash or groups)");
        const std::string h = h5::read_attr_string(file, "sweep_hash");
        if (hash.empty()) {
            hash = h;
            hash_from = f.string();
        } else if (h != hash) {
            throw InputError(f.string() + ": part of a different sweep configuration (hash " + h +
                             ", " + hash_from + " has " + hash + ")");
        }
        if (attr.empty()) {
            if (!h5::has_attr(file, "sweep"))
                throw InputError(f.string() +
                                 ": the part has no `sweep` attribute (written by an "
                                 "older eirnn); merge with eirnn sweep CONFIG --merge");
            attr = h5::read_attr_string(file, "sweep");
        }
        h5::Id groups = h5::open_group(file, "groups");
        for (const std::string& id : h5::children(groups)) {
            const int i = cell_index_of(id);
            if (i < 0) throw InputError(f.string() + ": group " + id + " is not a sweep cell");
            auto [it, fresh] = where.emplace(i, f);
            if (!fresh)
                throw InputError("duplicate cell " + id + ": in " + it->second.string() + " and " +
                                 f.string());
        }
    }

    json plan = opt.sweep ? opt.sweep->plan_json() : json(nullptr);
    for (std::size_t k = 0; plan.is_null() && k < folders.size(); ++k)
        plan = manifest_plan(folders[k], hash);
    long long total = 0;
    try {
        total = json::parse(attr).at("cells").get<long long>();
    } catch (const json::exception&) {
        throw InputError(hash_from + ": unreadable `sweep` attribute");
    }
    if (!where.empty() && where.rbegin()->first >= total)
        throw InputError(where.rbegin()->second.string() + ": cell " +
                         group_id(where.rbegin()->first) + " is beyond the sweep's " +
                         std::to_string(total) + " cells");
    if (static_cast<long long>(where.size()) < total) {
        std::string names;
        int listed = 0;
        const long long missing = total - static_cast<long long>(where.size());
        for (int i = 0; i < total && listed < 8; ++i)
            if (!where.count(i)) names += (listed++ ? ", " : "") + cell_name(plan, i);
        if (missing > listed) names += ", and " + std::to_string(missing - listed) + " more";
        throw InputError("merge: missing " + std::to_string(missing) + " of " +
                         std::to_string(total) + " cells: " + names);
    }

    if (fs::exists(output, ec) && stored_hash(output) != hash && !opt.force)
        throw InputError("output: " + output.string() +
                         " exists and is not the result of this sweep (use --force to replace it)");
    if (!output.parent_path().empty()) fs::create_directories(output.parent_path(), ec);
    // HDF5's object copy does not survive a full disk (it crashes inside the library): the space
    // is checked first, the parts' sizes plus a margin for the file's own metadata.
    double need = 1 << 20;
    for (const auto& [i, f] : where) need += static_cast<double>(fs::file_size(f, ec));
    h5::check_free_space(output, need * 1.05);
    h5::AtomicFile out(output, true);
    write_root_attrs(out.file());
    h5::write_attr(out.file(), "sweep_hash", hash);
    h5::write_attr(out.file(), "sweep", attr);
    {
        h5::Id groups = h5::require_group(out.file(), "groups");
        for (const auto& [i, f] : where) {
            const std::string id = group_id(i);
            h5::Id part = h5::open_read(f);
            if (H5Ocopy(part, ("groups/" + id).c_str(), groups, id.c_str(), H5P_DEFAULT,
                        H5P_DEFAULT) < 0)
                throw Error("HDF5: cannot copy group " + id + " from " + f.string());
        }
    }
    out.commit();
    MergeOutcome mo;
    mo.groups = static_cast<int>(where.size());
    mo.parts = static_cast<int>(files.size());
    mo.hash = hash;
    return mo;
}

SweepOutcome merge_sweep_parts(const Sweep& s, bool force) {
    h5::quiet();
    std::error_code ec;
    SweepOutcome outcome;
    outcome.cells = static_cast<int>(s.cells.size());
    const fs::path parts = parts_dir(s.output);
    if (fs::exists(s.output, ec) && stored_hash(s.output) == s.hash()) {
        fs::remove_all(parts, ec);
        outcome.already_complete = true;
        return outcome;
    }
    if (!fs::is_directory(parts, ec))
        throw InputError("--merge: no parts folder " + parts.string() +
                         " (run the sweep or its shards first)");
    LockFile lock(
        parts / "lock",
        "output: another eirnn process is running or merging the sweep of " + s.output.string());
    MergeOptions mo;
    mo.sweep = &s;
    mo.force = force;
    merge_sweep({parts}, s.output, mo);
    fs::remove_all(parts, ec);
    outcome.merged = true;
    return outcome;
}

SweepStatus sweep_status(const Sweep& s, int shards) {
    h5::quiet();
    std::error_code ec;
    const std::string hash = s.hash();
    const fs::path parts = parts_dir(s.output);
    SweepStatus st;
    st.complete = fs::exists(s.output, ec) && stored_hash(s.output) == hash;
    if (shards <= 0 && !st.complete && fs::is_directory(parts, ec)) {
        // The count of the shards that ran: their records are "shard-I-of-N.json".
        for (const auto& e : fs::directory_iterator(parts, ec)) {
            const std::string f = e.path().filename().string();
            const std::size_t of = f.find("-of-");
            if (f.rfind("shard-", 0) != 0 || of == std::string::npos ||
                e.path().extension() != ".json")
                continue;
            try {
                shards = std::max(shards, std::stoi(f.substr(of + 4)));
            } catch (const std::exception&) {
            }
        }
    }
    st.shard_count = std::max(shards, 1);
    const std::vector<int> shard = assign_shards(s, st.shard_count);
    st.shards.assign(static_cast<std::size_t>(st.shard_count), ShardStatus{});
    h5::Id results;
    if (st.complete) results = h5::open_read(s.output);
    double flop_done = 0, seconds = 0;
    for (const SweepCell& c : s.cells) {
        ShardStatus& sh = st.shards[static_cast<std::size_t>(shard[c.index])];
        ++sh.cells;
        const std::string id = group_id(c.index);
        const fs::path part = parts / (id + ".h5");
        h5::Id file;
        if (!st.complete && part_complete(part, id, hash)) file = h5::open_read(part);
        if (st.complete || file.valid()) {
            h5::Id g = h5::open_group(st.complete ? results.get() : file.get(), "groups/" + id);
            auto acc = h5::read_float(g, "accuracy");
            auto div = h5::read_int(g, "diverged");
            ++sh.done;
            sh.networks += static_cast<int>(acc.data.size());
            for (std::size_t k = 0; k < acc.data.size(); ++k)
                sh.learned +=
                    !div.data[k] && std::isfinite(acc.data[k]) && acc.data[k] >= kLearnedAccuracy;
            flop_done += cell_cost(c.cfg).flop() * static_cast<double>(acc.data.size());
            seconds += h5::read_attr_double(g, "train_seconds");
            continue;
        }
        sh.flop_left += cell_flop(s, c);
        const fs::path marker = running_marker(parts, c.index);
        bool running = false;
        if (fs::exists(marker, ec)) {
            try {
                json m = json::parse(read_text(marker));
                if (!marker_stale(m)) {
                    running = true;
                    st.running_cells.push_back(id + " (" + m.value("host", std::string("?")) +
                                               " pid " + std::to_string(m.value("pid", 0LL)) + ")");
                }
            } catch (const json::exception&) {
            }
        }
        ++(running ? sh.running : sh.missing);
    }
    for (const ShardStatus& sh : st.shards) {
        st.total.cells += sh.cells;
        st.total.done += sh.done;
        st.total.running += sh.running;
        st.total.missing += sh.missing;
        st.total.networks += sh.networks;
        st.total.learned += sh.learned;
        st.total.flop_left += sh.flop_left;
    }
    st.rate = seconds > 0 ? flop_done / seconds : 0;
    return st;
}

}  // namespace eirnn
