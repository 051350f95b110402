// Backend and eigensolver selection. Built into the eirnn_backends library, which sees
// EIRNN_HAVE_CUDA when the CUDA backend is part of the build.
#include "host/analysis/dynamics.hpp"
#include "host/analysis/eig_solver.hpp"
#include "host/core/backend.hpp"
#include "host/core/error.hpp"

#if defined(EIRNN_HAVE_CUDA)
#include "host/cuda/cuda_backend.hpp"
#include "host/cuda/dynamics.hpp"
#include "host/cuda/eig.hpp"
#endif

namespace eirnn {

bool cuda_available() {
#if defined(EIRNN_HAVE_CUDA)
    return cuda::device_usable();
#else
    return false;
#endif
}

int cuda_device_count() {
#if defined(EIRNN_HAVE_CUDA)
    return cuda::device_count();
#else
    return 0;
#endif
}

std::string cuda_problem() {
#if defined(EIRNN_HAVE_CUDA)
    return cuda::device_problem();
#else
    return "this build of eirnn has no CUDA backend";
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

std::unique_ptr<DynamicsSearch> make_dynamics_search(BackendKind kind, int threads) {
    if (kind == BackendKind::Auto) kind = cuda_available() ? BackendKind::Cuda : BackendKind::Cpu;
    if (kind == BackendKind::Cpu) return make_cpu_dynamics_search(threads);
#if defined(EIRNN_HAVE_CUDA)
    if (!cuda::device_usable())
        throw InputError("--backend cuda: no usable CUDA device (" + cuda::device_problem() + ")");
    return cuda::make_cuda_dynamics_search();
#else
    throw InputError("--backend cuda: this build of eirnn has no CUDA backend");
#endif
}

std::unique_ptr<EigSolver> make_eig_solver(BackendKind backend, EigMethod method, int threads) {
    const bool chosen = backend == BackendKind::Auto;
    if (chosen) backend = cuda_available() ? BackendKind::Cuda : BackendKind::Cpu;
    if (backend == BackendKind::Cpu) {
        switch (method) {
            case EigMethod::Auto:
                return make_cpu_auto_eig_solver(threads);
            case EigMethod::Lapack:
                return make_lapack_eig_solver(threads);
            case EigMethod::Batched:
                return make_twin_eig_solver(threads);
            case EigMethod::Xgeev:
                break;
        }
        throw InputError(chosen ? "--eig-method xgeev: needs a usable CUDA device (--backend auto "
                                  "chose the CPU; the CPU methods are lapack and batched)"
                                : "--eig-method xgeev: needs --backend cuda (the CPU methods are "
                                  "lapack and batched)");
    }
#if defined(EIRNN_HAVE_CUDA)
    if (!cuda::device_usable())
        throw InputError("--backend cuda: no usable CUDA device (" + cuda::device_problem() + ")");
    switch (method) {
        case EigMethod::Auto:
            return cuda::make_auto_eig_solver();
        case EigMethod::Batched:
            return cuda::make_batched_eig_solver();
        case EigMethod::Xgeev:
            return cuda::make_xgeev_eig_solver();
        case EigMethod::Lapack:
            break;
    }
    return make_lapack_eig_solver(threads);
#else
    throw InputError("--backend cuda: this build of eirnn has no CUDA backend");
#endif
}

}  // namespace eirnn
