// The CUDA training backend (kernels/cuda/*): the same function as the CPU backend, many networks
// per launch. Only host code includes this header; it has no CUDA headers.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "host/core/backend.hpp"

namespace eirnn::cuda {

/// True when a CUDA device can be used (driver present, at least one device).
bool device_usable();
/// Why no device is usable ("" when one is).
std::string device_problem();
/// Number of visible devices (0 when none or no driver).
int device_count();

/// What the last train() call did on the device.
struct TrainTiming {
    double device_seconds = 0;  // the update loops, from CUDA events
    double trial_steps = 0;     // trials advanced one step, summed over networks and updates
    long network_updates = 0;   // updates launched, summed over networks
    int waves = 0;              // groups of networks trained one after another (device memory)
    std::string kernels;        // recurrent kernel configuration of the first epoch
};

class CudaBackend final : public Backend {
public:
    CudaBackend();
    ~CudaBackend() override;
    std::string name() const override { return "cuda"; }
    /// Trains on the current device: data set uploaded once, networks in waves that fit its
    /// memory, per-network state read back once per epoch.
    void train(const GroupConfig& cfg, const Dataset& train, TrainState& st,
               TrainProgress* progress) override;
    const TrainTiming& timing() const { return timing_; }
    /// Plans waves as if at most `bytes` of device memory were free (0: what the device has).
    void limit_memory(std::size_t bytes) { memory_limit_ = bytes; }

private:
    TrainTiming timing_;
    std::size_t memory_limit_ = 0;
};

/// The backend on the current device.
std::unique_ptr<Backend> make_cuda_backend();

}  // namespace eirnn::cuda
