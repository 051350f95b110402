// The CUDA training backend (kernels/cuda/*): the same function as the CPU backend, many networks
// per launch. Only host code includes this header; it has no CUDA headers.
#pragma once
#include <memory>
#include <string>

#include "host/backend.hpp"

namespace eirnn::cuda {

/// True when a CUDA device can be used (driver present, at least one device).
bool device_usable();
/// Why no device is usable ("" when one is).
std::string device_problem();
/// The backend on the current device.
std::unique_ptr<Backend> make_cuda_backend();

}  // namespace eirnn::cuda
