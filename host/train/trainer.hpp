// Trains one group end to end: dataset from the data seed, initial weights from each network's
// seed, the backend's training, evaluation on the held-out trials, and example activity for
// figures.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "host/core/backend.hpp"

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
    /// Final tensor t (ParamLayout order: 1 W_in, 2 b, 3 W_out, 4 b_out) of every network,
    /// (K, size of t).
    std::vector<float> tensor(int t) const;
    /// Unit signs of every network (K,N): +1 excitatory, -1 inhibitory.
    std::vector<std::int8_t> signs() const;
    /// The connectivity mask as 1/0 bytes (K,N,N); empty without a mask.
    std::vector<std::uint8_t> mask_bytes() const;
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

/// Parameters of K networks of equal shape for forward_trials (all row-major, float32).
struct ForwardParams {
    int K = 0, N = 0, I = 0, O = 0;
    const float* w_rec = nullptr;  // (K,N,N) effective matrices, [k][i][j] = j -> i
    const float* w_in = nullptr;   // (K,N,I)
    const float* b = nullptr;      // (K,N)
    const float* w_out = nullptr;  // (K,O,N)
    const float* b_out = nullptr;  // (K,O)
};

/// Forward pass (docs/MODEL.md §1, without recurrent noise) of every network on the same n trials
/// x (n,T,I), trial-major: states (K,n,T,N) = h_1..h_T and outputs (K,n,T,O), on the CPU with
/// `threads` threads over networks (0 = all cores).
void forward_trials(const ForwardParams& p, const float* x, int n, int T, double alpha,
                    float* states, float* outputs, int threads = 0);

class ProgressBar;
/// The progress line of a training (epoch, networks training, mean and min loss) on stderr, as
/// `eirnn train` draws it; nothing when disabled or when stderr is not a terminal.
std::unique_ptr<ProgressBar> make_train_bar(const TrainProgress& progress, const GroupConfig& cfg,
                                            bool enabled);

}  // namespace eirnn
