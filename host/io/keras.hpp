// Recurrent matrices from outside the engine: SimpleRNN layers of Keras 2.x / 3.x models saved to
// HDF5 (weights under model_weights/<layer>/.../{kernel,recurrent_kernel,bias}[:0]), and any
// [N,N] or [K,N,N] numeric dataset named as FILE:DATASET. Everything is converted to the engine's
// convention W[i][j] = weight from unit j to unit i; Keras stores U = W_recᵀ, so W_rec = Uᵀ.
// Bad input (missing file, not HDF5, no SimpleRNN weights, non-square, NaN/inf, N = 0) throws
// InputError with one line naming the file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "host/analysis/spectra.hpp"

namespace eirnn {

/// One SimpleRNN layer of a Keras model, with the Dense readout that follows it when there is one.
struct KerasRnn {
    std::string layer;  // HDF5 path of the layer's recurrent_kernel
    int N = 0, I = 0, O = 0;
    std::vector<double> w_rec;  // (N,N) [i][j] = j -> i, = recurrent_kernelᵀ
    std::vector<double> w_in;   // (N,I) = kernelᵀ; empty when the file has no kernel
    std::vector<double> b;      // (N); empty for a layer without bias
    std::vector<double> w_out;  // (O,N) = Dense kernelᵀ; empty when no Dense layer reads this one
    std::vector<double> b_out;  // (O); empty without a Dense bias
};

/// A Keras model file: its SimpleRNN layers in model order.
struct KerasModel {
    std::string path;
    std::string keras_version;  // root attribute keras_version, "" when absent
    std::vector<KerasRnn> layers;
};

/// Reads every SimpleRNN layer of a Keras HDF5 model file (the whole model or save_weights output).
KerasModel read_keras(const std::filesystem::path& path);

/// A stack of K square matrices read from an HDF5 dataset.
struct MatrixStack {
    std::string file, dataset;
    bool stacked = false;  // the dataset is [K,N,N] (else [N,N], K = 1)
    int K = 0, N = 0;
    std::vector<double> w;  // (K,N,N) as stored: [k][i][j] is taken as the weight j -> i
};

/// Reads `--h5 FILE:DATASET`: a numeric dataset of shape [N,N] (K = 1) or [K,N,N]. The file name is
/// the longest prefix before a ':' that names an existing file, so dataset paths may hold ':'.
MatrixStack read_h5_matrices(const std::string& spec);

/// Signs of the units when every column of w (N,N) is single-signed (a Dale network: +1 where the
/// column has no negative entry, -1 otherwise; an all-zero column counts as excitatory), else
/// empty.
std::vector<std::int8_t> infer_column_signs(const double* w, int N);

class EigSolver;
/// Spectra and metrics of K imported matrices w (K,N,N) whose unit signs are not known (what
/// `eirnn spectrum --keras/--h5` and the Python module's spectrum() report): eigenvalues from
/// `solver` into eig (K,N); the weight-statistics columns of every matrix whose columns are
/// single-signed are computed with the inferred signs (NaN for the others). sign_out, when given,
/// receives the inferred signs (K,N), rows of 0 for matrices that are not Dale matrices; sv_out
/// (K,N), when non-null, the singular values, descending.
MetricsTable analyse_matrices(const double* w, int K, int N, int outliers, cplx* eig, int threads,
                              EigSolver& solver, std::vector<std::int8_t>* sign_out = nullptr,
                              double* sv_out = nullptr);

}  // namespace eirnn
