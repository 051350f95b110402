// The Backend interface: trains a group of K networks of equal shape (docs/MODEL.md §5). CPU and
// CUDA implementations compute the same function; the CPU one is also the test oracle.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "host/core/config.hpp"
#include "host/core/model.hpp"
#include "tasks/task.hpp"

namespace eirnn {

/// The mutable state of a group during training (host copies; backends may keep device copies and
/// write back at the end).
struct TrainState {
    GroupParams params;                    // in: initial, out: final
    std::vector<float> loss;               // (K, epochs) mean epoch loss, NaN where not run
    std::vector<std::uint8_t> diverged;    // (K)
    std::vector<std::uint8_t> stopped;     // (K) early-stopped
    std::vector<std::int32_t> epochs_run;  // (K)
    std::vector<std::int32_t> updates;     // (K)
    std::vector<float> lr_scale;           // (K) per-network learning-rate factor (1; test hook)

    /// Sizes every vector for K networks and E epochs.
    void reset(int K, int epochs);
};

/// Live counters a progress display reads (updated by the backend from any thread).
struct TrainProgress {
    std::atomic<long> updates_done{0};
    std::atomic<long> updates_total{0};
    std::atomic<int> epoch{0};
    std::atomic<int> active{0};
    std::atomic<double> mean_loss{0};
    std::atomic<double> min_loss{0};
    /// Set from any thread to stop the training: the backend stops within one update and
    /// Backend::train throws Interrupted (host/core/error.hpp).
    std::atomic<bool> cancel{false};
    /// Loss of every network in its last finished epoch (K), NaN where it has none; written by the
    /// backend at the end of each epoch (record_epoch), read by a display under `mu`.
    std::mutex mu;
    std::vector<float> epoch_loss;
    void record_epoch(const TrainState& st, int epochs, int e);
    /// Throws Interrupted when cancel is set.
    void check_cancel() const;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    /// Trains every network of `st` for cfg.train.epochs epochs on `train` (early stop, divergence
    /// per network). progress may be null.
    virtual void train(const GroupConfig& cfg, const Dataset& train, TrainState& st,
                       TrainProgress* progress) = 0;
};

/// The CPU backend: threads over networks, BLAS per step. threads 0 = all cores.
std::unique_ptr<Backend> make_cpu_backend(int threads);

/// Backend by kind: Auto picks CUDA when built with it and a device is usable, else CPU.
/// Cuda without a usable device: InputError ("--backend cuda: ...").
std::unique_ptr<Backend> make_backend(BackendKind kind, int threads);

/// True when this build has the CUDA backend and a device is usable.
bool cuda_available();
/// Number of visible CUDA devices (0 without the CUDA backend or a device).
int cuda_device_count();
/// Why no CUDA device is usable ("" when one is).
std::string cuda_problem();

}  // namespace eirnn
