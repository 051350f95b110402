// Thin RAII layer over the HDF5 C API: owning ids, typed dataset/attribute read and write, and an
// atomic output file (written under a temporary name, renamed on commit, removed otherwise).
// HDF5's own error printing is switched off: failures become eirnn::Error / InputError with one
// line.
#pragma once
#include <hdf5.h>

#include <complex>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace eirnn::h5 {

/// Owning HDF5 id of any kind (file, group, dataset, dataspace, attribute, type); closed with
/// H5Oclose / H5Sclose / ... according to its type.
class Id {
public:
    Id() = default;
    explicit Id(hid_t id) : id_(id) {}
    Id(const Id&) = delete;
    Id& operator=(const Id&) = delete;
    Id(Id&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
    Id& operator=(Id&& o) noexcept;
    ~Id();
    hid_t get() const { return id_; }
    operator hid_t() const { return id_; }
    bool valid() const { return id_ >= 0; }

private:
    hid_t id_ = H5I_INVALID_HID;
};

/// Silences HDF5's error stack printing (call once; idempotent).
void quiet();

/// True when `path` exists and is an HDF5 file.
bool is_hdf5(const std::filesystem::path& path);
/// Opens an existing file read-only; InputError naming the path when missing or not HDF5.
Id open_read(const std::filesystem::path& path);
/// Opens an existing file read-write; InputError naming the path when missing or not HDF5.
Id open_rw(const std::filesystem::path& path);
/// Creates (truncates) a file.
Id create(const std::filesystem::path& path);

bool exists(hid_t loc, const std::string& path);  // link exists (intermediate groups too)
Id open_group(hid_t loc, const std::string& path);
/// Creates a group (and missing parents) or opens it when it exists.
Id require_group(hid_t loc, const std::string& path);
void remove(hid_t loc, const std::string& path);  // unlink if present
std::vector<std::string> children(hid_t group);   // names of the links in a group, sorted

/// Writes a dataset of the given shape (replacing one of the same name). Row-major data.
void write(hid_t loc, const std::string& name, const float* data, const std::vector<hsize_t>& dims);
void write(hid_t loc, const std::string& name, const double* data,
           const std::vector<hsize_t>& dims);
void write(hid_t loc, const std::string& name, const std::int8_t* data,
           const std::vector<hsize_t>& dims);
void write(hid_t loc, const std::string& name, const std::uint8_t* data,
           const std::vector<hsize_t>& dims);
void write(hid_t loc, const std::string& name, const std::int32_t* data,
           const std::vector<hsize_t>& dims);
void write(hid_t loc, const std::string& name, const std::uint64_t* data,
           const std::vector<hsize_t>& dims);
/// Complex128 as the compound {r, i} h5py and numpy read as complex128.
void write(hid_t loc, const std::string& name, const std::complex<double>* data,
           const std::vector<hsize_t>& dims);

/// A dataset read fully into memory and converted to T, with its shape.
template <class T>
struct Array {
    std::vector<hsize_t> dims;
    std::vector<T> data;
};
Array<float> read_float(hid_t loc, const std::string& path);
Array<double> read_double(hid_t loc, const std::string& path);
Array<std::int64_t> read_int(hid_t loc, const std::string& path);
Array<std::complex<double>> read_complex(hid_t loc, const std::string& path);
std::vector<hsize_t> shape(hid_t loc, const std::string& path);

void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, double value);
void write_attr(hid_t obj, const std::string& name, std::int64_t value);
bool has_attr(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name);
double read_attr_double(hid_t obj, const std::string& name);
/// A string or string-array attribute (fixed or variable length), one entry per element.
std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name);

/// An output file written under a temporary name beside `target` and renamed over it by commit().
/// Destroyed uncommitted (an error, Ctrl-C unwinding), it removes the temporary: nothing
/// half-written is ever left under `target`.
class AtomicFile {
public:
    /// Fails with InputError when target exists and !overwrite, or its folder is not writable.
    /// copy_existing: start from a copy of the existing target (for in-place updates).
    AtomicFile(std::filesystem::path target, bool overwrite, bool copy_existing = false);
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile();
    hid_t file() const { return file_.get(); }
    const std::filesystem::path& temp_path() const { return temp_; }
    void commit();  // flush, close, fsync, rename

private:
    std::filesystem::path target_;
    std::filesystem::path temp_;
    Id file_;
    bool committed_ = false;
};

/// Checks that a file can be created at `target` (folder exists and is writable, and target does
/// not exist unless overwrite), without creating anything. Throws InputError naming `flag`.
void check_writable(const std::filesystem::path& target, bool overwrite, const std::string& flag);

}  // namespace eirnn::h5
