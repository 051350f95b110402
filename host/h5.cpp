// HDF5 helpers: see h5.hpp.
#include "host/h5.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>

#include "host/error.hpp"

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
    Id dset(
        must(H5Dcreate2(loc, name.c_str(), mem_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             "create dataset " + name));
    hsize_t n = 1;
    for (auto d : dims) n *= d;
    if (n > 0)
        must_ok(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write " + name);
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
    const hsize_t n = checked_count(dset, path, a.dims);
    a.data.resize(n);
    if (n > 0)
        must_ok(H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data.data()),
                "read " + path);
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
    if (rank < 0) throw Error("HDF5: cannot read the shape of " + path);
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
    const hsize_t n = checked_count(dset, path, a.dims);
    a.data.resize(n);
    Id t = complex_type();
    if (n > 0)
        must_ok(H5Dread(dset, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data.data()), "read " + path);
    return a;
}

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Id type(must(H5Tcopy(H5T_C_S1), "copy string type"));
    H5Tset_size(type, std::max<std::size_t>(value.size(), 1));
    H5Tset_cset(type, H5T_CSET_UTF8);
    Id space(must(H5Screate(H5S_SCALAR), "create scalar space"));
    Id attr(must(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                 "create attribute " + name));
    std::string padded = value.empty() ? std::string(1, '\0') : value;
    must_ok(H5Awrite(attr, type, padded.data()), "write attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, double value) {
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Id space(must(H5Screate(H5S_SCALAR), "create scalar space"));
    Id attr(must(H5Acreate2(obj, name.c_str(), H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT),
                 "create attribute " + name));
    must_ok(H5Awrite(attr, H5T_NATIVE_DOUBLE, &value), "write attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, std::int64_t value) {
    if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
    Id space(must(H5Screate(H5S_SCALAR), "create scalar space"));
    Id attr(must(H5Acreate2(obj, name.c_str(), H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT),
                 "create attribute " + name));
    must_ok(H5Awrite(attr, H5T_NATIVE_INT64, &value), "write attribute " + name);
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
        must_ok(H5Aread(attr, mem, &s), "read attribute " + name);
        std::string out = s ? s : "";
        Id space(must(H5Aget_space(attr), "get attribute space"));
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, &s);
        return out;
    }
    std::size_t n = H5Tget_size(type);
    std::string out(n, '\0');
    must_ok(H5Aread(attr, type, out.data()), "read attribute " + name);
    out.resize(std::strlen(out.c_str()));
    return out;
}

double read_attr_double(hid_t obj, const std::string& name) {
    if (!has_attr(obj, name)) throw InputError("missing attribute '" + name + "'");
    Id attr(must(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name));
    double v = 0;
    must_ok(H5Aread(attr, H5T_NATIVE_DOUBLE, &v), "read attribute " + name);
    return v;
}

std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name) {
    if (!has_attr(obj, name)) throw InputError("missing attribute '" + name + "'");
    Id attr(must(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name));
    Id type(must(H5Aget_type(attr), "get attribute type"));
    if (H5Tget_class(type) != H5T_STRING) throw InputError("attribute '" + name + "' is not text");
    Id space(must(H5Aget_space(attr), "get attribute space"));
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n < 0) throw Error("HDF5: cannot size attribute " + name);
    std::vector<std::string> out;
    if (H5Tis_variable_str(type) > 0) {
        Id mem(must(H5Tcopy(H5T_C_S1), "copy string type"));
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
        must_ok(H5Aread(attr, mem, ptrs.data()), "read attribute " + name);
        for (char* p : ptrs) out.emplace_back(p ? p : "");
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
        return out;
    }
    std::size_t size = H5Tget_size(type);
    std::vector<char> buf(size * static_cast<std::size_t>(n) + 1, '\0');
    must_ok(H5Aread(attr, type, buf.data()), "read attribute " + name);
    for (hssize_t i = 0; i < n; ++i) {
        const char* p = buf.data() + static_cast<std::size_t>(i) * size;
        out.emplace_back(p, strnlen(p, size));
    }
    return out;
}

void check_writable(const fs::path& target, bool overwrite, const std::string& flag) {
    std::error_code ec;
    if (target.empty()) throw InputError(flag + ": empty path");
    if (fs::exists(target, ec)) {
        if (!overwrite) throw InputError(flag + ": " + target.string() + " exists (use --force)");
        if (fs::is_directory(target, ec))
            throw InputError(flag + ": " + target.string() + " is a folder");
    }
    fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    if (!fs::is_directory(dir, ec))
        throw InputError(flag + ": folder " + dir.string() + " does not exist");
    if (access(dir.c_str(), W_OK) != 0)
        throw InputError(flag + ": folder " + dir.string() + " is not writable");
}

AtomicFile::AtomicFile(fs::path target, bool overwrite, bool copy_existing)
    : target_(std::move(target)) {
    check_writable(target_, overwrite || copy_existing, "output");
    temp_ = target_;
    temp_ += ".tmp." + std::to_string(getpid());
    std::error_code ec;
    if (copy_existing && fs::exists(target_, ec)) {
        fs::copy_file(target_, temp_, fs::copy_options::overwrite_existing, ec);
        if (ec) throw Error("cannot copy " + target_.string() + ": " + ec.message());
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
}

void AtomicFile::commit() {
    if (H5Fflush(file_, H5F_SCOPE_GLOBAL) < 0) throw Error("HDF5: cannot flush " + temp_.string());
    file_ = Id();
    int fd = ::open(temp_.c_str(), O_RDONLY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
    std::error_code ec;
    fs::rename(temp_, target_, ec);
    if (ec)
        throw Error("cannot rename " + temp_.string() + " to " + target_.string() + ": " +
                    ec.message());
    committed_ = true;
    fs::path dir = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace eirnn::h5
