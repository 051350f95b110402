// Backend selection. Built into the eirnn_backends library, which sees EIRNN_HAVE_CUDA when the
// CUDA backend is part of the build.
#include "host/backend.hpp"
#include "host/error.hpp"

#if defined(EIRNN_HAVE_CUDA)
#include "host/cuda/cuda_backend.hpp"
#endif

namespace eirnn {

bool cuda_available() {
#if defined(EIRNN_HAVE_CUDA)
    return cuda::device_usable();
#else
    return false;
#endif
}

std::unique_ptr<Backend> make_backend(BackendKind kind, int threads) {
    switch (kind) {
        case BackendKind::Cpu:
            return make_cpu_backend(threads);
        case BackendKind::Cuda:
#if defined(EIRNN_HAVE_CUDA)
            if (!cuda::device_usable())
                throw InputError("--backend cuda: no usable CUDA device (" +
                                 cuda::device_problem() + ")");
            return cuda::make_cuda_backend();
#else
            throw InputError("--backend cuda: this build of eirnn has no CUDA backend");
#endif
        case BackendKind::Auto:
            break;
    }
    if (cuda_available()) {
#if defined(EIRNN_HAVE_CUDA)
        return cuda::make_cuda_backend();
#endif
    }
    return make_cpu_backend(threads);
}

}  // namespace eirnn
