// Trains one group end to end: dataset from the data seed, initial weights from each network's
// seed, the backend's training, evaluation on the held-out trials, and example activity for
// figures.
#pragma once
#include <cstdint>
#include <vector>

#include "host/backend.hpp"

namespace eirnn {

struct GroupResult {
    GroupConfig cfg;
    std::string backend;
    int I = 0, O = 0, T = 0;
    std::vector<float> w_rec_initial;  // (K,N,N) effective recurrent matrices before training
    std::vector<float> w_in_initial;   // (K,N,I)
    std::vector<float> w_out_initial;  // (K,O,N)
    TrainState st;                     // final parameters and the training record
    std::vector<float> test_loss;      // (K)
    std::vector<float> accuracy;       // (K) NaN for tasks without accuracy
    int example_network = 0;           // the network whose activity is kept below
    int S = 0;                         // example trials
    std::vector<float> ex_x, ex_y, ex_out, ex_h;  // (S,T,I), (S,T,O), (S,T,O), (S,T,N)
    std::vector<std::int32_t> ex_type, ex_delay;  // (S) trial type and delay (tasks/task.hpp)
    double train_seconds = 0;

    /// Effective final recurrent matrices (K,N,N) (|V| s in reparam mode).
    std::vector<float> w_rec_final() const;
    /// Records the current parameters of st.params as the initial ones (w_*_initial).
    void capture_initial();
};

/// Optional test hooks.
struct TrainHooks {
    std::vector<float> lr_scale;  // (K) per-network learning-rate factor
};

/// Validates cfg, then trains. backend: already made (make_backend). progress may be null.
GroupResult train_group(const GroupConfig& cfg, Backend& backend, TrainProgress* progress,
                        const TrainHooks* hooks = nullptr);

/// Forward pass of every network on a dataset (one batch of all its trials), on the CPU:
/// per-network loss and accuracy; outputs (K,n,T,O) / states of network `keep_h` when requested.
struct Evaluation {
    std::vector<float> loss, accuracy;
};
Evaluation evaluate(const GroupConfig& cfg, const GroupParams& g, const Dataset& d, int threads);

}  // namespace eirnn
