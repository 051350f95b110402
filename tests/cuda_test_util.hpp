// What the GPU test programs share: the device requirement (skip without a usable device, or fail
// when EIRNN_REQUIRE_GPU=1 says one must be there, as tools/gpu-check does) and whether the device
// is the emulated one of tests/cuda_emu, where the costliest sizes are trimmed.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "host/cuda/cuda_backend.hpp"
#include "host/cuda/handles.hpp"

namespace eirnn::testutil {

inline bool gpu_required() {
    const char* v = std::getenv("EIRNN_REQUIRE_GPU");
    return v && std::string(v) == "1";
}

/// True on the emulated device (kernels run on the CPU: minutes where a GPU takes milliseconds).
inline bool gpu_emulated() {
    return cuda::device_usable() && cuda::device_description().rfind("eirnn emulated", 0) == 0;
}

/// Whether this build runs under ThreadSanitizer (the slowest emulated run: each size of a sweep
/// that the ASan+UBSan build also runs costs tens of seconds there).
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

}  // namespace eirnn::testutil

#define EIRNN_REQUIRE_GPU()                                                        \
    do {                                                                           \
        if (!::eirnn::cuda::device_usable()) {                                     \
            if (::eirnn::testutil::gpu_required())                                 \
                FAIL() << "EIRNN_REQUIRE_GPU=1 but no usable CUDA device: "        \
                       << ::eirnn::cuda::device_problem();                         \
            GTEST_SKIP() << "no CUDA device: " << ::eirnn::cuda::device_problem(); \
        }                                                                          \
    } while (0)
