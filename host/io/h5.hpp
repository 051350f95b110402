// Thin RAII layer over the HDF5 C API: owning ids, typed dataset/attribute read and write, and an
// atomic output file (written under a temporary name, renamed on commit, removed otherwise).
// HDF5's own error printing is switched off: failures become eirnn::Error / InputError with one
// line.
#pragma once
#include <hdf5.h>

#include <complex>
#include <cstdint>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include "host/core/error.hpp"

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
/// Walks the structure of an input file that eirnn did not write (every object reachable by hard
/// links, every attribute read, every dataset's header) in a child process, so that a file that
/// makes the HDF5 library itself crash or loop (libhdf5 1.10 does on some corrupt attribute and
/// global-heap messages, and no public call checks them first) is an InputError naming the file
/// (exit 2), not a crash of eirnn. The child gets EIRNN_H5_CHECK_TIMEOUT seconds (default 120);
/// EIRNN_H5_CHECK=0 skips the check. Missing and non-HDF5 files pass (the readers say what they
/// are). Call it while no other thread is inside the HDF5 library.
void check_structure(const std::filesystem::path& path);
/// check_structure, then open_read.
Id open_untrusted(const std::filesystem::path& path);
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

/// Runs `read` (a reader of the input file `path`) so that whatever goes wrong while reading it is
/// an InputError naming the file (exit 2): a damaged file makes HDF5 or the JSON parser fail deep
/// inside, with a message that does not say which input was at fault. Out of memory stays itself.
template <class Read>
auto reading(const std::filesystem::path& path, Read&& read) -> decltype(read()) {
    const std::string name = path.string();
    try {
        return read();
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        const std::string what = e.what();
        if (what.rfind(name, 0) == 0) throw InputError(what);
        throw InputError(name + ": " + what);
    }
}

/// The output file a handle writes to: its file name with an AtomicFile's ".tmp.<pid>" removed.
std::string output_name(hid_t loc);

/// Dimensions as "KxNxN" ("scalar" for none), for error messages.
std::string shape_text(const std::vector<hsize_t>& dims);

/// An output file written under a temporary name ("<target>.tmp.<pid>") beside `target` and
/// renamed over it by commit(). Destroyed uncommitted (an error, unwinding) it removes the
/// temporary, and so does SIGINT / SIGTERM (a handler unlinks every live temporary, then the signal
/// takes its default action): nothing half-written is left under `target`. Temporaries of `target`
/// left by processes that are gone (SIGKILL, power loss) are removed when the next one starts.
/// A write that fails for want of space names the output and says the disk is full.
class AtomicFile {
public:
    /// Fails with InputError when target exists and !overwrite, or cannot be an output
    /// (check_writable). copy_existing: start from a copy of the existing target (in-place
    /// updates; a symbolic link is resolved and the file it names updated). Without overwrite,
    /// commit() never replaces a file that appeared meanwhile.
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
    bool overwrite_ = false;
    bool committed_ = false;
    int slot_ = -1;  // in the signal handler's table of temporaries
};

/// Checks that a file can be created at `target` (folder exists and is writable, and target does
/// not exist unless overwrite), without creating anything. An existing target must be a regular
/// file: folders, devices, FIFOs, sockets and symbolic links are refused (a link is not followed:
/// the rename would replace the link, not the file it names). Throws InputError naming `flag`.
void check_writable(const std::filesystem::path& target, bool overwrite, const std::string& flag);

/// The file a symbolic link names (canonical path); any other path unchanged. For inputs updated
/// in place: the file is updated, the link kept.
std::filesystem::path in_place_target(const std::filesystem::path& path);

/// Exclusive lock of an output path, held from before the work starts until the output is
/// committed, so that two processes never write the same file: "<target>.lock" beside it, locked
/// with flock (released by the kernel when the process ends, kill -9 included) and removed on
/// release. A second process fails at once with InputError naming the file. Locking a path this
/// process already holds is allowed (counted).
class OutputLock {
public:
    OutputLock(const std::filesystem::path& target, const std::string& flag);
    OutputLock(const OutputLock&) = delete;
    OutputLock& operator=(const OutputLock&) = delete;
    ~OutputLock();

private:
    std::string key_;
};

/// Removes "<target>.tmp.<pid>" files whose process is gone (this host); returns how many.
int remove_stale_temporaries(const std::filesystem::path& target);

/// "no space left on device" when the last error or the folder of `path` says the disk is full,
/// else "".
std::string disk_full_reason(const std::filesystem::path& path, int err);
/// Throws Error naming `output` and saying the disk is full when `bytes` more do not fit in its
/// folder.
void check_free_space(const std::filesystem::path& output, double bytes);

}  // namespace eirnn::h5
