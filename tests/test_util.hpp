// Helpers shared by the test programs: random vectors, relative errors, matching two spectra, a
// temporary folder, running the eirnn binary, and the settings of the learning tests.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "host/core/config.hpp"

namespace eirnn::testutil {

/// n draws of N(0, scale^2) from seed.
inline std::vector<float> random_vector(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

/// max |a - b| / max(max |b|, 1e-30) over n values (infinite when a has a non-finite value).
inline double rel_err(const float* a, const float* b, std::size_t n) {
    double d = 0, m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
        m = std::max(m, std::abs(static_cast<double>(b[i])));
    }
    return d / std::max(m, 1e-30);
}

/// One pair of a matching between two spectra: a[i] with b[j], |a[i] - b[j]| = d.
struct MatchedPair {
    double d;
    std::size_t i, j;
};

/// Pairs the eigenvalues of a and b closest first (every one used once). Spectra sorted by modulus
/// can order near-equal moduli differently, so tests compare them through a matching.
inline std::vector<MatchedPair> match_spectra(const std::vector<std::complex<double>>& a,
                                              const std::vector<std::complex<double>>& b) {
    const std::size_t n = std::min(a.size(), b.size());
    std::vector<MatchedPair> pairs;
    pairs.reserve(a.size() * b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t j = 0; j < b.size(); ++j) pairs.push_back({std::abs(a[i] - b[j]), i, j});
    std::sort(pairs.begin(), pairs.end(),
              [](const MatchedPair& x, const MatchedPair& y) { return x.d < y.d; });
    std::vector<char> ua(a.size(), 0), ub(b.size(), 0);
    std::vector<MatchedPair> matched;
    for (const MatchedPair& p : pairs) {
        if (ua[p.i] || ub[p.j]) continue;
        ua[p.i] = ub[p.j] = 1;
        matched.push_back(p);
        if (matched.size() == n) break;
    }
    return matched;
}

/// The largest distance of the closest-first matching (infinite for different sizes or a
/// non-finite eigenvalue in a).
inline double matched_error(const std::vector<std::complex<double>>& a,
                            const std::vector<std::complex<double>>& b) {
    if (a.size() != b.size()) return INFINITY;
    for (const auto& z : a)
        if (!std::isfinite(z.real()) || !std::isfinite(z.imag())) return INFINITY;
    double worst = 0;
    for (const MatchedPair& p : match_spectra(a, b)) worst = std::max(worst, p.d);
    return worst;
}

/// A fresh folder under the system's temporary folder, removed with everything in it at the end.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& stem)
        : path(std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

/// What one run of a program printed, and its exit status (-1 when a signal ended it).
struct Outcome {
    int status = -1;
    std::string out, err;
};

/// The bytes of file p ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// The number of lines of s (its newline characters).
inline int lines(const std::string& s) {
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

#ifdef EIRNN_BINARY
/// Runs `env ENV timeout LIMIT eirnn ARGS` (ARGS and ENV as shell text) with stdin from
/// /dev/null, capturing stdout and stderr through files of this process's temporary folder.
inline Outcome run_eirnn(const std::string& args, const std::string& env = "",
                         int limit_seconds = 600) {
    static TempDir io("eirnn_cli_io");
    const std::string o = (io.path / "stdout").string(), e = (io.path / "stderr").string();
    const std::string cmd = "env " + env + " timeout " + std::to_string(limit_seconds) + " " +
                            std::string(EIRNN_BINARY) + " " + args + " >" + o + " 2>" + e +
                            " </dev/null";
    const int rc = std::system(cmd.c_str());
    Outcome r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
}
#endif

/// The learning tests' settings (CPU: tests/test_train.cpp, GPU: tests/test_cuda.cpp): AND with the
/// study's timing, 2,000 trials, 10 epochs, unconstrained orthogonal N = 50 networks with gain 1.3,
/// batch 8, lr 5e-4, seeds 1..networks.
inline GroupConfig and_learning_config(int networks) {
    GroupConfig c;
    c.model.units = 50;
    c.model.dale = DaleMode::None;
    c.model.init = Init::Orthogonal;
    c.model.gain = 1.3;
    c.task.kind = TaskKind::And;
    c.train.trials = 2000;
    c.train.test_trials = 100;
    c.train.epochs = 10;
    c.train.batch = 8;
    c.train.lr = 5e-4;
    c.networks = networks;
    c.seed = 1;
    c.threads = 0;
    c.spectra = false;
    return c;
}

}  // namespace eirnn::testutil
