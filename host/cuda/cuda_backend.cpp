// CUDA device discovery for backend selection.
#include "host/cuda/cuda_backend.hpp"

#include <cuda_runtime.h>

#include "host/error.hpp"

namespace eirnn::cuda {

std::string device_problem() {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return cudaGetErrorString(e);
    }
    return n > 0 ? "" : "no CUDA device";
}

bool device_usable() { return device_problem().empty(); }

std::unique_ptr<Backend> make_cuda_backend() {
    throw Error("the CUDA training backend is not part of this build yet");
}

}  // namespace eirnn::cuda
