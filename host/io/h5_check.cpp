// The structure check of an input HDF5 file in a child process: see h5.hpp (check_structure).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define EIRNN_SANITIZER_CALLBACKS 1
#endif
#endif
#ifndef EIRNN_SANITIZER_CALLBACKS
#define EIRNN_SANITIZER_CALLBACKS 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || EIRNN_SANITIZER_CALLBACKS
#include <sanitizer/common_interface_defs.h>
#endif

#include "host/io/h5.hpp"

namespace eirnn::h5 {
namespace fs = std::filesystem;

namespace {

constexpr hssize_t kMaxAttrElements = hssize_t{1} << 26;
constexpr std::size_t kMaxAttrBytes = std::size_t{256} << 20;
constexpr long kMaxObjects = 10'000'000;

/// Reads one attribute completely, as a reader would (variable-length strings included), and
/// releases what the library allocated. Errors are ignored: the real reader reports them.
herr_t read_attribute(hid_t loc, const char* name, const H5A_info_t*, void*) {
    Id attr(H5Aopen(loc, name, H5P_DEFAULT));
    if (!attr.valid()) return 0;
    Id type(H5Aget_type(attr));
    Id space(H5Aget_space(attr));
    if (!type.valid() || !space.valid()) return 0;
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n < 0 || n > kMaxAttrElements) return 0;
    // Memory types as the readers use them (h5.cpp): a variable-length string read into C strings
    // goes through the library's conversion, which is where it reads the global heap.
    Id mem;
    if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) {
        mem = Id(H5Tcopy(H5T_C_S1));
        if (mem.valid()) {
            H5Tset_size(mem, H5T_VARIABLE);
            H5Tset_cset(mem, H5Tget_cset(type));
        }
    } else if (H5Tget_class(type) == H5T_STRING) {
        mem = Id(H5Tcopy(type));
    } else {
        mem = Id(H5Tget_native_type(type, H5T_DIR_DEFAULT));
    }
    if (!mem.valid()) return 0;
    const std::size_t size = H5Tget_size(mem);
    if (size == 0 || size > kMaxAttrBytes / static_cast<std::size_t>(std::max<hssize_t>(n, 1)))
        return 0;
    std::vector<char> buf(size * static_cast<std::size_t>(std::max<hssize_t>(n, 1)), '\0');
    if (H5Aread(attr, mem, buf.data()) >= 0) H5Dvlen_reclaim(mem, space, H5P_DEFAULT, buf.data());
    return 0;
}

struct Walk {
    std::set<haddr_t> seen;        // objects by address: each once, cycles of hard links too
    std::deque<std::string> todo;  // groups whose links are still to follow
    long objects = 0;
};

/// One object: its attribute messages (looked up by name, iterated, read), and for a dataset its
/// dataspace, type and creation properties.
void check_object(hid_t obj) {
    H5Aexists(obj, "eirnn");
    hsize_t idx = 0;
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, read_attribute, nullptr);
    if (H5Iget_type(obj) == H5I_DATASET) {
        Id space(H5Dget_space(obj));
        Id type(H5Dget_type(obj));
        Id plist(H5Dget_create_plist(obj));
        if (plist.valid()) H5Pget_nfilters(plist);
    }
}

/// Opens an object as the readers may: H5Oopen fails on some damaged headers that H5Gopen2 and
/// H5Dopen2 still open.
Id open_any(hid_t loc, const char* name) {
    Id obj(H5Oopen(loc, name, H5P_DEFAULT));
    if (!obj.valid()) obj = Id(H5Gopen2(loc, name, H5P_DEFAULT));
    if (!obj.valid()) obj = Id(H5Dopen2(loc, name, H5P_DEFAULT));
    return obj;
}

herr_t visit_link(hid_t group, const char* name, const H5L_info_t* info, void* data) {
    auto& w = *static_cast<Walk*>(data);
    if (info->type != H5L_TYPE_HARD || !w.seen.insert(info->u.address).second) return 0;
    if (++w.objects > kMaxObjects) return 1;
    Id obj = open_any(group, name);
    if (!obj.valid()) return 0;
    check_object(obj);
    if (H5Iget_type(obj) == H5I_GROUP) {
        // The group's path, from the name libhdf5 reports for the open object.
        const ssize_t n = H5Iget_name(obj, nullptr, 0);
        if (n > 0) {
            std::string path(static_cast<std::size_t>(n), '\0');
            H5Iget_name(obj, path.data(), static_cast<std::size_t>(n) + 1);
            w.todo.push_back(std::move(path));
        }
    }
    return 0;
}

/// Every object reachable from the root by hard links, breadth first (the file's own structure
/// may be deep or cyclic), whatever fails on the way: each object is opened on its own, as the
/// readers open them.
void walk(hid_t file) {
    Walk w;
    check_object(file);  // the root group's attributes, through the file's id as readers ask
    w.todo.push_back("/");
    while (!w.todo.empty() && w.objects <= kMaxObjects) {
        const std::string path = std::move(w.todo.front());
        w.todo.pop_front();
        Id group = open_any(file, path.c_str());
        if (!group.valid()) continue;
        hsize_t idx = 0;
        H5Literate(group, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, visit_link, &w);
    }
}

/// The child's work: open the file and walk it. Never returns.
[[noreturn]] void walk_and_exit(const fs::path& path) {
    // The parent's handlers (which remove its temporary files) must not run here, nor crash
    // reporters it may have installed (a sanitizer's, a fuzzer's): a crash here is an answer.
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL})
        signal(sig, SIG_DFL);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || EIRNN_SANITIZER_CALLBACKS
    __sanitizer_set_death_callback(nullptr);
#endif
    // A crash report of the library (or of a sanitizer around it) is the parent's to summarise.
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }
    try {
        quiet();
        Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
        if (file.valid()) walk(file);
    } catch (...) {
    }
    _exit(0);
}

int timeout_seconds() {
    const char* s = std::getenv("EIRNN_H5_CHECK_TIMEOUT");
    if (!s || !*s) return 120;
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (*end || v < 1 || v > 86400)
        throw InputError(std::string("EIRNN_H5_CHECK_TIMEOUT: '") + s +
                         "' is not a number of seconds in [1, 86400]");
    return static_cast<int>(v);
}

}  // namespace

void check_structure(const fs::path& path) {
    if (const char* s = std::getenv("EIRNN_H5_CHECK"); s && std::string(s) == "0") return;
    std::error_code ec;
    // Missing files, folders and files that are not HDF5: the reader's own one-line errors.
    if (!fs::is_regular_file(path, ec) || !is_hdf5(path)) return;
    const int timeout = timeout_seconds();
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        throw Error(path.string() + ": cannot check the file: pipe: " + std::strerror(errno));
    const pid_t pid = fork();
    if (pid < 0) {
        const int err = errno;
        close(fds[0]);
        close(fds[1]);
        throw Error(path.string() + ": cannot check the file: fork: " + std::strerror(err));
    }
    if (pid == 0) {
        close(fds[0]);
        walk_and_exit(path);  // the write end closes when the child ends
    }
    close(fds[1]);
    // Wait for the child's end (its end of the pipe closing) for at most `timeout` seconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    bool ended = false;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fds[0], POLLIN, 0};
        const int r = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (r < 0 && errno != EINTR) break;
        if (r > 0) {
            char c;
            if (read(fds[0], &c, 1) <= 0) {  // EOF: the child is gone
                ended = true;
                break;
            }
        }
    }
    close(fds[0]);
    if (!ended) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const std::string name = path.string();
    if (!ended)
        throw InputError(name +
                         ": the HDF5 library did not finish reading the file's structure in " +
                         std::to_string(timeout) +
                         " s (a corrupt HDF5 file; EIRNN_H5_CHECK_TIMEOUT sets the limit)");
    if (WIFSIGNALED(status))
        throw InputError(name +
                         ": corrupt HDF5 file: the HDF5 library crashed reading its structure (" +
                         strsignal(WTERMSIG(status)) + ")");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw InputError(name +
                         ": corrupt HDF5 file: the HDF5 library failed reading its structure (exit "
                         "status " +
                         std::to_string(WEXITSTATUS(status)) + ")");
}

Id open_untrusted(const fs::path& path) {
    check_structure(path);
    return open_read(path);
}

}  // namespace eirnn::h5
