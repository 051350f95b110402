// Size, memory and thread guards (see limits.hpp).
#include "host/core/limits.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "host/core/error.hpp"
#include "tasks/task.hpp"

namespace eirnn {

std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
    std::uint64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
    return r;
}

std::string shape_text(const std::vector<std::uint64_t>& dims) {
    if (dims.empty()) return "scalar";
    std::string s;
    for (std::size_t i = 0; i < dims.size(); ++i) {
        if (i) s += 'x';
        s += std::to_string(dims[i]);
    }
    return s;
}

std::string bytes_text(double bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024 && u < 6) {
        bytes /= 1024;
        ++u;
    }
    char buf[48];
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

std::uint64_t memory_limit() {
    if (const char* env = std::getenv("EIRNN_MEMORY_LIMIT"); env && *env) {
        const std::string v = env;
        std::size_t digits = v.find_first_not_of("0123456789");
        std::uint64_t scale = 1;
        if (digits != std::string::npos && digits + 1 == v.size()) {
            switch (v.back()) {
                case 'K':
                    scale = 1ull << 10;
                    break;
                case 'M':
                    scale = 1ull << 20;
                    break;
                case 'G':
                    scale = 1ull << 30;
                    break;
                case 'T':
                    scale = 1ull << 40;
                    break;
                default:
                    scale = 0;
            }
        } else if (digits != std::string::npos) {
            scale = 0;
        }
        errno = 0;
        const unsigned long long n = digits == 0 ? 0 : std::strtoull(v.c_str(), nullptr, 10);
        auto bytes = checked_mul(n, scale);
        if (digits == 0 || scale == 0 || errno == ERANGE || !bytes || *bytes == 0)
            throw InputError(
                "EIRNN_MEMORY_LIMIT: expected a positive number of bytes with an "
                "optional K, M, G or T suffix, got '" +
                v + "'");
        return *bytes;
    }
    std::ifstream in("/proc/meminfo");
    std::string key;
    unsigned long long kib = 0;
    std::string unit;
    while (in >> key >> kib >> unit)
        if (key == "MemAvailable:") return kib * 1024ull;
    return 0;
}

std::uint64_t checked_bytes(const std::vector<std::uint64_t>& dims, std::uint64_t elem_size,
                            const std::string& what) {
    std::optional<std::uint64_t> n = elem_size;
    for (std::uint64_t d : dims)
        if (n) n = checked_mul(*n, d);
    if (!n)
        throw InputError(what + ": shape " + shape_text(dims) +
                         " is too large (its size overflows 64 bits)");
    const std::uint64_t limit = memory_limit();
    if (limit > 0 && *n > limit)
        throw InputError(what + ": shape " + shape_text(dims) + " needs " +
                         bytes_text(static_cast<double>(*n)) + ", more than the " +
                         bytes_text(static_cast<double>(limit)) + " of memory available");
    return *n;
}

void check_memory(double bytes, const std::string& what, const std::string& hint) {
    const std::uint64_t limit = memory_limit();
    if (limit == 0 || !(bytes > static_cast<double>(limit))) return;
    throw InputError(what + " needs about " + bytes_text(bytes) + " of memory, more than the " +
                     bytes_text(static_cast<double>(limit)) + " available (" + hint + ")");
}

double train_memory_bytes(const GroupConfig& cfg, int threads) {
    // Doubles throughout: the estimate of an absurd request must not wrap.
    const double K = cfg.networks, N = cfg.model.units, B = cfg.train.batch;
    const double n = cfg.train.trials, n_test = cfg.train.test_trials;
    const double T = task_steps(cfg.task), I = task_inputs(cfg.task), O = task_outputs(cfg.task);
    const double P = N * N + N * I + N + O * N + O;
    const double f = sizeof(float);
    const double tw =
        std::max(1.0, std::min<double>(threads > 0 ? threads : hardware_threads(), K));
    double bytes = 2 * (n * T * (I + 2 * O) * f + 8 * n);        // the trial set and its two slices
    bytes += K * P * f * 3;                                      // parameters, Adam moments
    bytes += K * N * N * f * (cfg.model.p_connect < 1 ? 4 : 3);  // mask, W_rec initial and final
    bytes += K * P * f;                                          // tensors copied for writing
    bytes += tw * (B * T * (I + 2 * O + 4 * N) * f + P * f);     // per-thread workspaces
    bytes += tw * n_test * T * (2 * N + 3 * O) * f;              // evaluation on held-out trials
    if (cfg.spectra) bytes += K * N * 16 * 3 + tw * N * N * 8 * 6;  // eigenvalues, LAPACK work
    return bytes;
}

double data_memory_bytes(const TaskParams& task, long long trials) {
    const double T = task_steps(task), I = task_inputs(task), O = task_outputs(task);
    return static_cast<double>(trials) * (T * (I + 2 * O) * sizeof(float) + 8);
}

void check_train_memory(const GroupConfig& cfg, const std::string& what) {
    check_memory(train_memory_bytes(cfg, cfg.threads),
                 what + " (" + std::to_string(cfg.networks) + " networks of " +
                     std::to_string(cfg.model.units) + " units, " +
                     std::to_string(cfg.train.trials) + " trials)",
                 "lower --networks, --units, --trials or --batch, or raise EIRNN_MEMORY_LIMIT");
}

std::string check_number_text(const std::string& text, bool floating, bool is_unsigned) {
    if (text.empty()) return "empty value (a number is required)";
    std::size_t i = 0;
    if (text[0] == '+' || text[0] == '-') {
        if (text[0] == '-' && is_unsigned) return "must not be negative, got '" + text + "'";
        i = 1;
    }
    if (i == text.size()) return "not a number: '" + text + "'";
    if (!floating) {
        if (text.find_first_not_of("0123456789", i) != std::string::npos)
            return "not an integer (decimal digits only): '" + text + "'";
        return {};
    }
    // Decimal floating point only: digits, one point, an exponent.
    if (text.find_first_not_of("0123456789.eE+-", i) != std::string::npos ||
        text.find_first_of("0123456789", i) == std::string::npos)
        return "not a finite number: '" + text + "'";
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return "not a number: '" + text + "'";
    if (!std::isfinite(v) || errno == ERANGE) return "out of range: '" + text + "'";
    return {};
}

int hardware_threads() {
    return std::max(1u, std::thread::hardware_concurrency());
}

int resolve_threads(long long requested, const std::string& flag) {
    if (requested < 0)
        throw InputError(flag + ": must be >= 0 (0 = all cores), got " + std::to_string(requested));
    if (requested == 0) return 0;
    const int hw = hardware_threads();
    const long long cap = 4LL * hw;
    if (requested > cap) {
        std::fprintf(stderr, "eirnn: note: %s %lld clamped to %lld (4 x %d hardware threads)\n",
                     flag.c_str(), requested, cap, hw);
        return static_cast<int>(cap);
    }
    return static_cast<int>(requested);
}

}  // namespace eirnn
