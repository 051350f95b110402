// Shapes and constants of one recurrent pass, shared by the CPU kernels (kernels/cpu/rnn.*) and
// their CUDA twins (kernels/cuda/rnn.*). No CUDA headers.
//   a_t = W_rec h_{t-1} + W_in x_t + b,  h_t = (1-alpha) h_{t-1} + alpha tanh(a_t) + noise_t,
//   y_t = W_out h_t + b_out,  loss = sum mask (y - target)^2 / (T B O)  (docs/MODEL.md §1, §5).
// Batches are time-major: x (T,B,I), states h (T+1,B,N) with h[0] = 0.
#pragma once

namespace eirnn {

struct RnnDims {
    int B = 0;  // trials in the batch
    int N = 0;  // units
    int I = 0;  // inputs
    int O = 0;  // outputs
    int T = 0;  // steps
};

}  // namespace eirnn
