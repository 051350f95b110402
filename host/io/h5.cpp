// HDF5 helpers: see h5.hpp.
#include "host/io/h5.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <system_error>

#include "host/core/error.hpp"
#include "host/core/limits.hpp"

namespace eirnn::h5 {
namespace fs = std::filesystem;

namespace {

void close_id(hid_t id) {
    if (id < 0) return;
    switch (H5Iget_type(id)) {
        case H5I_FILE:
            H5Fclose(id);
            break;
        case H5I_GROUP:
            H5Gclose(id);
            break;
        case H5I_DATASET:
            H5Dclose(id);
            break;
        case H5I_DATASPACE:
            H5Sclose(id);
            break;
        case H5I_DATATYPE:
            H5Tclose(id);
            break;
        case H5I_ATTR:
            H5Aclose(id);
            break;
        case H5I_GENPROP_LST:
            H5Pclose(id);
            break;
        default:
            break;
    }
}

hid_t must(hid_t id, const std::string& what) {
    if (id < 0) throw Error("HDF5: cannot " + what);
    return id;
}

void must_ok(herr_t s, const std::string& what) {
    if (s < 0) throw Error("HDF5: cannot " + what);
}

/// The name of the file `loc` belongs to ("" when HDF5 cannot say).
std::string file_name(hid_t loc) {
    ssize_t n = H5Fget_name(loc, nullptr, 0);
    if (n <= 0) return {};
    std::string name(static_cast<std::size_t>(n) + 1, '\0');
    H5Fget_name(loc, name.data(), name.size());
    name.resize(static_cast<std::size_t>(n));
    return name;
}

/// A failed write into the file of `loc`: names the output (not its temporary) and says when the
/// disk is full.
[[noreturn]] void write_failed(hid_t loc, int err, const std::string& what) {
    const std::string out = output_name(loc);
    const std::string full = disk_full_reason(file_name(loc), err);
    if (!full.empty())
        throw Error("cannot write " + out + ": the disk is full (" + full + ") while writing " +
                    what);
    throw Error("cannot write " + out + ": HDF5 failed to write " + what);
}

hid_t must_write(hid_t id, hid_t loc, const std::string& what) {
    if (id < 0) write_failed(loc, errno, what);
    return id;
}

void must_write_ok(herr_t s, hid_t loc, const std::string& what) {
    if (s < 0) write_failed(loc, errno, what);
}

/// "<file>: " for messages about what a reader found in a file.
std::string in_file(hid_t loc) {
    std::string f = file_name(loc);
    return f.empty() ? std::string() : f + ": ";
}

/// Bytes of a dataset or attribute about to be read, checked for overflow and against memory.
void check_read_size(hid_t loc, const std::string& what, const std::vector<hsize_t>& dims,
                     std::size_t elem) {
    std::vector<std::uint64_t> d(dims.begin(), dims.end());
    checked_bytes(d, elem, in_file(loc) + what);
}

Id complex_type() {
    Id t(must(H5Tcreate(H5T_COMPOUND, sizeof(double) * 2), "create complex type"));
    must_ok(H5Tinsert(t, "r", 0, H5T_NATIVE_DOUBLE), "build complex type");
    must_ok(H5Tinsert(t, "i", sizeof(double), H5T_NATIVE_DOUBLE), "build complex type");
    return t;
}

void write_raw(hid_t loc, const std::string& name, hid_t mem_type, const void* data,
               const std::vector<hsize_t>& dims) {
    remove(loc, name);
    Id space(must(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                  "create dataspace for " + name));
    errno = 0;
    Id dset(must_write(
        H5Dcreate2(loc, name.c_str(), mem_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), loc,
        "dataset " + name));
    const bool empty = std::find(dims.begin(), dims.end(), hsize_t{0}) != dims.end();
    errno = 0;
    if (!empty)
        must_write_ok(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), loc,
                      "dataset " + name);
}

/// Elements of dataset `path` of shape `dims`, before anything is allocated for them: InputError
/// when the count overflows, or when the file does not hold the data its header claims (a corrupt
/// or hostile header): without filters every byte of the shape is stored (eirnn, h5py and Keras
/// write every dataset they create), with compression at most 1024 times the stored bytes
/// (deflate's limit is about 1032).
hsize_t checked_count(hid_t dset, const std::string& path, const std::vector<hsize_t>& dims) {
    hsize_t n = 1;
    for (hsize_t d : dims) {
        if (d != 0 && n > std::numeric_limits<hsize_t>::max() / d)
            throw InputError("dataset '" + path + "' has a shape too large to address");
        n *= d;
    }
    if (n == 0) return 0;
    Id type(must(H5Dget_type(dset), "get type of " + path));
    const std::size_t elem = H5Tget_size(type);
    Id dcpl(must(H5Dget_create_plist(dset), "get creation properties of " + path));
    const int filters = H5Pget_nfilters(dcpl);
    const hsize_t stored = H5Dget_storage_size(dset);
    const hsize_t limit = filters > 0 ? stored * 1024 : stored;
    if (elem == 0 || n > limit / elem)
        throw InputError("dataset '" + path + "' stores " + std::to_string(stored) +
                         " bytes, too few for its shape of " + std::to_string(n) + " elements of " +
                         std::to_string(elem) + " bytes (corrupt file?)");
    return n;
}

template <class T>
Array<T> read_as(hid_t loc, const std::string& path, hid_t mem_type) {
    if (!exists(loc, path)) throw InputError("no dataset '" + path + "'");
    Id dset(H5Dopen2(loc, path.c_str(), H5P_DEFAULT));
    if (!dset.valid()) throw InputError("'" + path + "' is not a dataset");
    Id type(must(H5Dget_type(dset), "get type of " + path));
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        throw InputError("dataset '" + path + "' is not numeric");
    Array<T> a;
    a.dims = shape(loc, path);
    check_read_size(loc, "dataset " + path, a.dims, sizeof(T));
    const hsize_t n = checked_count(dset, path, a.dims);
    a.data.resize(n);
    if (n > 0 && H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data.data()) < 0)
        throw InputError(in_file(loc) + "cannot read dataset " + path +
                         " (the file is damaged or truncated)");
    return a;
}

}  // namespace

Id& Id::operator=(Id&& o) noexcept {
    if (this != &o) {
        close_id(id_);
        id_ = o.id_;
        o.id_ = H5I_INVALID_HID;
    }
    return *this;
}

Id::~Id() {
    close_id(id_);
}

void quiet() {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

bool is_hdf5(const fs::path& path) {
    quiet();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return false;
    return H5Fis_hdf5(path.c_str()) > 0;
}

static Id open_file(const fs::path& path, unsigned flags) {
    quiet();
    std::error_code ec;
    if (!fs::exists(path, ec)) throw InputError(path.string() + ": no such file");
    if (!fs::is_regular_file(path, ec)) throw InputError(path.string() + ": not a regular file");
    if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path.string() + ": not an HDF5 file");
    Id f(H5Fopen(path.c_str(), flags, H5P_DEFAULT));
    if (!f.valid()) throw InputError(path.string() + ": cannot open HDF5 file");
    return f;
}

Id open_read(const fs::path& path) {
    return open_file(path, H5F_ACC_RDONLY);
}
Id open_rw(const fs::path& path) {
    return open_file(path, H5F_ACC_RDWR);
}

Id create(const fs::path& path) {
    quiet();
    Id f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    if (!f.valid()) throw InputError(path.string() + ": cannot create file");
    return f;
}

bool exists(hid_t loc, const std::string& path) {
    // Check each prefix: H5Lexists fails on a missing intermediate group.
    std::size_t pos = 0;
    while (true) {
        std::size_t next = path.find('/', pos);
        std::string prefix = path.substr(0, next);
        if (!prefix.empty() && prefix != "/" && H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0)
            return false;
        if (next == std::string::npos) return true;
        pos = next + 1;
    }
}

Id open_group(hid_t loc, const std::string& path) {
    if (!exists(loc, path)) throw InputError("no group '" + path + "'");
    Id g(H5Gopen2(loc, path.c_str(), H5P_DEFAULT));
    if (!g.valid()) throw InputError("'" + path + "' is not a group");
    return g;
}

Id require_group(hid_t loc, const std::string& path) {
    if (exists(loc, path)) return open_group(loc, path);
    Id lcpl(must(H5Pcreate(H5P_LINK_CREATE), "create property list"));
    H5Pset_create_intermediate_group(lcpl, 1);
    return Id(must(H5Gcreate2(loc, path.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT),
                   "create group " + path));
}

void remove(hid_t loc, const std::string& path) {
    if (exists(loc, path)) must_ok(H5Ldelete(loc, path.c_str(), H5P_DEFAULT), "delete " + path);
}

std::vector<std::string> children(hid_t group) {
    std::vector<std::string> names;
    auto cb = [](hid_t, const char* name, const H5L_info_t*, void* op) -> herr_t {
        static_cast<std::vector<std::string>*>(op)->emplace_back(name);
        return 0;
    };
    hsize_t idx = 0;
    must_ok(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, cb, &names), "list group");
    std::sort(names.begin(), names.end());
    return names;
}

void write(hid_t loc, const std::string& name, const float* data,
           const std::vector<hsize_t>& dims) {
    write_raw(loc, name, H5T_NATIVE_FLOAT, data, dims);
}
void write(hid_t loc, const std::string& name, const double* data,
           const std::vector<hsize_t>& dims) {
    write_raw(loc, name, H5T_NATIVE_DOUBLE, data, dims);
}
void write(hid_t loc, const std::string& name, const std::int8_t* data,
           const std::vector<hsize_t>& dims) {
    write_raw(loc, name, H5T_NATIVE_INT8, data, dims);
}
void write(hid_t loc, const std::string& name, const std::uint8_t* data,
           const std::vector<hsize_t>& dims) {
    write_raw(loc, name, H5T_NATIVE_UINT8, data, dims);
}
void write(hid_t loc, const std::string& name, const std::int32_t* data,
           const std::vector<hsize_t>& dims) {
    write_raw(loc, name, H5T_NATIVE_INT32, data, dims);
}
void write(hid_t loc, const std::string& name, const std::uint64_t* data,
           const std::vector<hsize_t>& dims) {
    write_raw(loc, name, H5T_NATIVE_UINT64, data, dims);
}
void write(hid_t loc, const std::string& name, const std::complex<double>* data,
           const std::vector<hsize_t>& dims) {
    Id t = complex_type();
    write_raw(loc, name, t, data, dims);
}

std::vector<hsize_t> shape(hid_t loc, const std::string& path) {
    if (!exists(loc, path)) throw InputError("no dataset '" + path + "'");
    Id dset(H5Dopen2(loc, path.c_str(), H5P_DEFAULT));
    if (!dset.valid()) throw InputError("'" + path + "' is not a dataset");
    Id space(must(H5Dget_space(dset), "get dataspace of " + path));
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0) throw InputError(in_file(loc) + "cannot read the shape of " + path);
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    return dims;
}

Array<float> read_float(hid_t loc, const std::string& path) {
    return read_as<float>(loc, path, H5T_NATIVE_FLOAT);
}
Array<double> read_double(hid_t loc, const std::string& path) {
    return read_as<double>(loc, path, H5T_NATIVE_DOUBLE);
}
Array<std::int64_t> read_int(hid_t loc, const std::string& path) {
    return read_as<std::int64_t>(loc, path, H5T_NATIVE_INT64);
}

Array<std::complex<double>> read_complex(hid_t loc, const std::string& path) {
    if (!exists(loc, path)) throw InputError("no dataset '" + path + "'");
    Id dset(H5Dopen2(loc, path.c_str(), H5P_DEFAULT));
    if (!dset.valid()) throw InputError("'" + path + "' is not a dataset");
    Array<std::complex<double>> a;
    a.dims = shape(loc, path);
    check_read_size(loc, "dataset " + path, a.dims, sizeof(std::complex<double>));
    const hsize_t n = checked_count(dset, path, a.dims);
    a.data.resize(n);
    Id t = complex_type();
    if (n > 0 && H5Dread(dset, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data.data()) < 0)
        throw InputError(in_file(loc) + "cannot read dataset " + path +
                         " (the file is damaged or truncated)");
    return a;
}

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Id type(must(H5Tcopy(H5T_C_S1), "copy string type"));
    H5Tset_size(type, std::max<std::size_t>(value.size(), 1));
    H5Tset_cset(type, H5T_CSET_UTF8);
    Id space(must(H5Screate(H5S_SCALAR), "create scalar space"));
    errno = 0;
    Id attr(must_write(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), obj,
                       "attribute " + name));
    std::string padded = value.empty() ? std::string(1, '\0') : value;
    must_write_ok(H5Awrite(attr, type, padded.data()), obj, "attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, double value) {
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Id space(must(H5Screate(H5S_SCALAR), "create scalar space"));
    errno = 0;
    Id attr(must_write(
        H5Acreate2(obj, name.c_str(), H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT), obj,
        "attribute " + name));
    must_write_ok(H5Awrite(attr, H5T_NATIVE_DOUBLE, &value), obj, "attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, std::int64_t value) {
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Id space(must(H5Screate(H5S_SCALAR), "create scalar space"));
    errno = 0;
    Id attr(
        must_write(H5Acreate2(obj, name.c_str(), H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT),
                   obj, "attribute " + name));
    must_write_ok(H5Awrite(attr, H5T_NATIVE_INT64, &value), obj, "attribute " + name);
}

bool has_attr(hid_t obj, const std::string& name) {
    return H5Aexists(obj, name.c_str()) > 0;
}

std::string read_attr_string(hid_t obj, const std::string& name) {
    if (!has_attr(obj, name)) throw InputError("missing attribute '" + name + "'");
    Id attr(must(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name));
    Id type(must(H5Aget_type(attr), "get attribute type"));
    if (H5Tget_class(type) != H5T_STRING)
        throw InputError("attribute '" + name + "' is not a string");
    if (H5Tis_variable_str(type) > 0) {
        Id mem(must(H5Tcopy(H5T_C_S1), "copy string type"));
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        char* s = nullptr;
        if (H5Aread(attr, mem, &s) < 0)
            throw InputError(in_file(obj) + "cannot read attribute " + name);
        std::string out = s ? s : "";
        Id space(must(H5Aget_space(attr), "get attribute space"));
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, &s);
        return out;
    }
    std::size_t n = H5Tget_size(type);
    check_read_size(obj, "attribute " + name, {hsize_t{n}}, 1);
    std::string out(n, '\0');
    if (H5Aread(attr, type, out.data()) < 0)
        throw InputError(in_file(obj) + "cannot read attribute " + name);
    out.resize(std::strlen(out.c_str()));
    return out;
}

double read_attr_double(hid_t obj, const std::string& name) {
    if (!has_attr(obj, name)) throw InputError("missing attribute '" + name + "'");
    Id attr(must(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name));
    double v = 0;
    if (H5Aread(attr, H5T_NATIVE_DOUBLE, &v) < 0)
        throw InputError(in_file(obj) + "cannot read attribute " + name + " as a number");
    return v;
}

std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name) {
    if (!has_attr(obj, name)) throw InputError("missing attribute '" + name + "'");
    Id attr(must(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name));
    Id type(must(H5Aget_type(attr), "get attribute type"));
    if (H5Tget_class(type) != H5T_STRING) throw InputError("attribute '" + name + "' is not text");
    Id space(must(H5Aget_space(attr), "get attribute space"));
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n < 0) throw InputError(in_file(obj) + "cannot size attribute " + name);
    std::vector<std::string> out;
    if (H5Tis_variable_str(type) > 0) {
        Id mem(must(H5Tcopy(H5T_C_S1), "copy string type"));
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        check_read_size(obj, "attribute " + name, {static_cast<hsize_t>(n)}, sizeof(char*));
        std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
        if (H5Aread(attr, mem, ptrs.data()) < 0)
            throw InputError(in_file(obj) + "cannot read attribute " + name);
        for (char* p : ptrs) out.emplace_back(p ? p : "");
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
        return out;
    }
    std::size_t size = H5Tget_size(type);
    check_read_size(obj, "attribute " + name, {static_cast<hsize_t>(n), hsize_t{size}}, 1);
    std::vector<char> buf(size * static_cast<std::size_t>(n) + 1, '\0');
    if (H5Aread(attr, type, buf.data()) < 0)
        throw InputError(in_file(obj) + "cannot read attribute " + name);
    for (hssize_t i = 0; i < n; ++i) {
        const char* p = buf.data() + static_cast<std::size_t>(i) * size;
        out.emplace_back(p, strnlen(p, size));
    }
    return out;
}

std::string output_name(hid_t loc) {
    std::string f = file_name(loc);
    const std::size_t t = f.rfind(".tmp.");
    if (t != std::string::npos && t + 5 < f.size() &&
        f.find_first_not_of("0123456789", t + 5) == std::string::npos)
        f.resize(t);
    return f;
}

namespace {

// Files to unlink when SIGINT / SIGTERM / SIGHUP ends the process: AtomicFile temporaries and
// OutputLock files. A fixed table of fixed buffers, so that the handler only reads memory and
// calls unlink (async-signal-safe). state: 0 free, 2 being filled, 1 live.
constexpr int kCleanupSlots = 64;
constexpr std::size_t kCleanupPath = 4096;
struct CleanupSlot {
    std::atomic<int> state{0};
    char path[kCleanupPath];
};
CleanupSlot g_cleanup[kCleanupSlots];
std::atomic<bool> g_handlers_installed{false};

extern "C" void cleanup_and_reraise(int sig) {
    for (CleanupSlot& c : g_cleanup)
        if (c.state.load() == 1) ::unlink(c.path);
    // SA_RESETHAND restored the default action; the signal is blocked until we return, then it
    // ends the process as it would have without us (exit status, core, parent's view).
    ::raise(sig);
}

void install_cleanup_handlers() {
    if (g_handlers_installed.exchange(true)) return;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction old {};
        if (::sigaction(sig, nullptr, &old) != 0) continue;
        // Another handler (or SIG_IGN, e.g. under nohup) stays: it was set for a reason.
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
        struct sigaction sa {};
        sa.sa_handler = cleanup_and_reraise;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        ::sigaction(sig, &sa, nullptr);
    }
}

int register_cleanup(const std::string& path) {
    install_cleanup_handlers();
    if (path.size() >= kCleanupPath) return -1;
    for (int i = 0; i < kCleanupSlots; ++i) {
        int expected = 0;
        if (g_cleanup[i].state.compare_exchange_strong(expected, 2)) {
            std::memcpy(g_cleanup[i].path, path.c_str(), path.size() + 1);
            g_cleanup[i].state.store(1);
            return i;
        }
    }
    return -1;
}

void unregister_cleanup(int slot) {
    if (slot >= 0) g_cleanup[slot].state.store(0);
}

bool process_gone(long pid) {
    return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

}  // namespace

int remove_stale_temporaries(const fs::path& target) {
    std::error_code ec;
    const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    const std::string prefix = target.filename().string() + ".tmp.";
    std::vector<fs::path> stale;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string f = e.path().filename().string();
        if (f.size() <= prefix.size() || f.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string pid = f.substr(prefix.size());
        if (pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        if (process_gone(std::stol(pid))) stale.push_back(e.path());
    }
    int removed = 0;
    for (const fs::path& p : stale)
        if (fs::remove(p, ec)) {
            ++removed;
            std::fprintf(stderr, "eirnn: note: removed %s, left by a process that is gone\n",
                         p.c_str());
        }
    return removed;
}

std::string disk_full_reason(const fs::path& path, int err) {
    if (err == ENOSPC) return "no space left on device";
    if (err == EDQUOT) return "disk quota exceeded";
    if (err == EFBIG) return "file too large for the file system or the file size limit";
    if (path.empty()) return {};
    const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    struct statvfs v {};
    if (::statvfs(dir.c_str(), &v) == 0 &&
        static_cast<double>(v.f_bavail) * static_cast<double>(v.f_frsize) < 64.0 * 1024)
        return "no space left on device";
    return {};
}

void check_free_space(const fs::path& output, double bytes) {
    const fs::path dir = output.parent_path().empty() ? fs::path(".") : output.parent_path();
    struct statvfs v {};
    if (::statvfs(dir.c_str(), &v) != 0) return;
    const double free = static_cast<double>(v.f_bavail) * static_cast<double>(v.f_frsize);
    if (free < bytes)
        throw Error("cannot write " + output.string() + ": the disk is full (no space left on " +
                    "device): it needs about " + bytes_text(bytes) + ", " + bytes_text(free) +
                    " are free in " + dir.string());
}

void check_writable(const fs::path& target, bool overwrite, const std::string& flag) {
    std::error_code ec;
    if (target.empty()) throw InputError(flag + ": empty path");
    const fs::file_status st = fs::symlink_status(target, ec);
    if (fs::exists(st)) {
        if (fs::is_symlink(st))
            throw InputError(flag + ": " + target.string() +
                             " is a symbolic link (give the file it points to)");
        if (fs::is_directory(st)) throw InputError(flag + ": " + target.string() + " is a folder");
        if (!fs::is_regular_file(st))
            throw InputError(flag + ": " + target.string() +
                             " is not a regular file (a device, FIFO or socket)");
        if (!overwrite) throw InputError(flag + ": " + target.string() + " exists (use --force)");
    }
    fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    if (!fs::is_directory(dir, ec))
        throw InputError(flag + ": folder " + dir.string() + " does not exist");
    if (access(dir.c_str(), W_OK) != 0)
        throw InputError(flag + ": folder " + dir.string() + " is not writable");
}

fs::path in_place_target(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_symlink(path, ec)) return path;
    fs::path real = fs::canonical(path, ec);
    return ec ? path : real;
}

namespace {
struct HeldLock {
    int fd = -1;
    int count = 0;
    int slot = -1;
    std::string path;
};
std::map<std::string, HeldLock>& held_locks() {
    static std::map<std::string, HeldLock> m;
    return m;
}
}  // namespace

OutputLock::OutputLock(const fs::path& given, const std::string& flag) {
    std::error_code ec;
    // A link is locked as the file it names, as AtomicFile updates that file.
    const fs::path target = in_place_target(given);
    fs::path lock = target;
    lock += ".lock";
    key_ = fs::absolute(lock, ec).lexically_normal().string();
    if (auto it = held_locks().find(key_); it != held_locks().end()) {
        ++it->second.count;
        return;
    }
    // The holder removes the lock file when it is done: a file we opened just before that is no
    // longer the lock, so the lock is taken only when the path still names the locked file.
    for (int attempt = 0; attempt < 16; ++attempt) {
        int fd = ::open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            throw InputError(flag + ": cannot create the lock file " + lock.string() + ": " +
                             std::strerror(errno));
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd);
            throw InputError(flag + ": " + target.string() +
                             " is being written by another eirnn process (lock " + lock.string() +
                             ")");
        }
        struct stat a {
        }, b{};
        if (::fstat(fd, &a) == 0 && ::stat(lock.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            held_locks()[key_] = HeldLock{fd, 1, register_cleanup(lock.string()), lock.string()};
            return;
        }
        ::close(fd);
    }
    throw Error(flag + ": cannot lock " + lock.string() + " (it keeps being replaced)");
}

OutputLock::~OutputLock() {
    auto it = held_locks().find(key_);
    if (it == held_locks().end() || --it->second.count > 0) return;
    unregister_cleanup(it->second.slot);
    ::unlink(it->second.path.c_str());  // while still locked: see the constructor
    ::close(it->second.fd);
    held_locks().erase(it);
}

AtomicFile::AtomicFile(fs::path target, bool overwrite, bool copy_existing)
    : target_(std::move(target)), overwrite_(overwrite || copy_existing) {
    std::error_code ec;
    if (copy_existing) target_ = in_place_target(target_);
    check_writable(target_, overwrite_, "output");
    remove_stale_temporaries(target_);
    temp_ = target_;
    temp_ += ".tmp." + std::to_string(getpid());
    slot_ = register_cleanup(temp_.string());
    if (copy_existing && fs::exists(target_, ec)) {
        fs::copy_file(target_, temp_, fs::copy_options::overwrite_existing, ec);
        if (ec) {
            const std::string full = disk_full_reason(temp_, ec.value());
            fs::remove(temp_, ec);
            unregister_cleanup(slot_);
            throw Error("cannot write " + target_.string() + ": " +
                        (full.empty() ? "cannot copy it" : "the disk is full (" + full + ")"));
        }
        file_ = open_rw(temp_);
    } else {
        file_ = create(temp_);
    }
}

AtomicFile::~AtomicFile() {
    if (!committed_) {
        file_ = Id();
        std::error_code ec;
        fs::remove(temp_, ec);
    }
    unregister_cleanup(slot_);
}

void AtomicFile::commit() {
    errno = 0;
    if (H5Fflush(file_, H5F_SCOPE_GLOBAL) < 0) {
        const std::string full = disk_full_reason(temp_, errno);
        throw Error("cannot write " + target_.string() + ": " +
                    (full.empty() ? std::string("HDF5 cannot flush it")
                                  : "the disk is full (" + full + ")"));
    }
    file_ = Id();
    int fd = ::open(temp_.c_str(), O_RDONLY);
    if (fd >= 0) {
        const int rc = ::fsync(fd);
        const int err = errno;
        ::close(fd);
        if (rc != 0) {
            const std::string full = disk_full_reason(temp_, err);
            throw Error("cannot write " + target_.string() + ": " +
                        (full.empty() ? std::string("fsync: ") + std::strerror(err)
                                      : "the disk is full (" + full + ")"));
        }
    }
    if (!overwrite_) {
        // Never replace a file that appeared while we worked (another process's output).
        if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_NOREPLACE) !=
            0) {
            const int err = errno;
            if (err == EEXIST)
                throw InputError("output: " + target_.string() +
                                 " was created by another process meanwhile (use --force)");
            if (err != EINVAL && err != ENOSYS)
                throw Error("cannot rename " + temp_.string() + " to " + target_.string() + ": " +
                            std::strerror(err));
        } else {
            committed_ = true;
        }
    }
    if (!committed_) {
        std::error_code ec;
        fs::rename(temp_, target_, ec);
        if (ec)
            throw Error("cannot rename " + temp_.string() + " to " + target_.string() + ": " +
                        ec.message());
        committed_ = true;
    }
    unregister_cleanup(slot_);
    slot_ = -1;
    fs::path dir = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

std::string shape_text(const std::vector<hsize_t>& dims) {
    return eirnn::shape_text(std::vector<std::uint64_t>(dims.begin(), dims.end()));
}

}  // namespace eirnn::h5
