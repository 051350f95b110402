// BLAS thread control and the choice of OpenBLAS's kernels (OpenBLAS).
#include "kernels/cpu/blas.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace eirnn::cpu {

namespace {

bool same_name(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

}  // namespace

const char* better_openblas_core(std::string_view picked, bool avx512, bool avx2_fma) {
    // The cores of OpenBLAS's DYNAMIC_ARCH builds whose kernels stop short of AVX2 + FMA (the
    // names openblas_get_corename returns, as in 0.3.21's library), "Unknown" included.
    static constexpr std::string_view kBeforeAvx2[] = {
        "Unknown", "Katmai",       "Coppermine",  "Northwood",  "Prescott", "Banias",
        "Atom",    "Core2",        "Penryn",      "Dunnington", "Nehalem",  "Athlon",
        "Opteron", "Opteron_SSE3", "Steamroller", "Barcelona",  "Nano",     "Sandybridge",
        "Bobcat",  "Bulldozer",    "Piledriver"};
    const bool old = std::any_of(std::begin(kBeforeAvx2), std::end(kBeforeAvx2),
                                 [&](std::string_view c) { return same_name(c, picked); });
    if (!old) return nullptr;
    if (avx512) return "SkylakeX";
    if (avx2_fma) return "Haswell";
    return nullptr;
}

void use_the_cpus_openblas_kernels(char** argv) {
#if defined(__x86_64__) || defined(__i386__)
    // The restarted run: OpenBLAS has read the variable; the processes this one starts (Slurm jobs
    // on other nodes among them) choose for their own CPU, as if it had never been set.
    static constexpr const char* kMark = "EIRNN_OPENBLAS_CORETYPE_CHOSEN";
    const char* mark = std::getenv(kMark);
    const char* set = std::getenv("OPENBLAS_CORETYPE");
    if (mark != nullptr) {
        if (set != nullptr && std::string_view(set) == mark) unsetenv("OPENBLAS_CORETYPE");
        unsetenv(kMark);
        return;
    }
    if (set != nullptr) return;  // the user's choice
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const char* core = better_openblas_core(openblas_get_corename(), avx512, avx2_fma);
    if (core == nullptr || setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
    if (setenv(kMark, core, 1) == 0) execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE");  // the exec failed: carry on with the kernels loaded
    unsetenv(kMark);
#else
    (void)argv;
#endif
}

void set_blas_threads(int n) {
    openblas_set_num_threads(n);
}
int blas_threads() {
    return openblas_get_num_threads();
}

}  // namespace eirnn::cpu
