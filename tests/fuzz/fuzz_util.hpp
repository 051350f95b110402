// Shared by the libFuzzer harnesses of tests/fuzz: the fuzz input as a file (the readers take file
// names, as the CLI gives them) and the outcome rules. A reader's own errors, eirnn::InputError and
// eirnn::Error, are ordinary results of bad input and must be one line; any other exception, a
// crash, a sanitizer report, a hang or an allocation above libFuzzer's limit is a finding.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "host/core/error.hpp"
#include "host/io/h5.hpp"

namespace eirnn::fuzz {

/// A file in a private temporary folder (on /dev/shm when it exists), rewritten with each input.
class InputFile {
public:
    explicit InputFile(const char* name) {
        namespace fs = std::filesystem;
        std::error_code ec;
        const char* base = fs::is_directory("/dev/shm", ec) ? "/dev/shm" : "/tmp";
        std::string tmpl = std::string(base) + "/eirnn-fuzz-XXXXXX";
        if (!mkdtemp(tmpl.data())) {
            std::perror("mkdtemp");
            std::abort();
        }
        dir_ = tmpl;
        path_ = dir_ + "/" + name;
    }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;
    ~InputFile() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    const std::string& path() const { return path_; }
    void write(const std::uint8_t* data, std::size_t size) const {
        int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) {
            std::perror("open");
            std::abort();
        }
        while (size > 0) {
            ssize_t n = ::write(fd, data, size);
            if (n <= 0) {
                std::perror("write");
                std::abort();
            }
            data += n;
            size -= static_cast<std::size_t>(n);
        }
        ::close(fd);
    }

private:
    std::string dir_, path_;
};

/// The input file, removed with the folder at exit.
inline InputFile& input_file(const char* name) {
    static InputFile f(name);
    return f;
}

/// A reader's error message must be one line (main() prints it as the whole diagnostic).
inline void check_one_line(const char* what) {
    if (std::strchr(what, '\n')) {
        std::fprintf(stderr, "error message of more than one line:\n%s\n", what);
        std::abort();
    }
}

/// Runs a reader: InputError and Error are ordinary outcomes (checked to be one line); anything
/// else propagates and libFuzzer reports it.
template <class F>
void run(F&& read) {
    h5::quiet();
    try {
        read();
    } catch (const InputError& e) {
        check_one_line(e.what());
    } catch (const Error& e) {
        check_one_line(e.what());
    }
}

}  // namespace eirnn::fuzz
