// Import of recurrent matrices: Keras SimpleRNN models (HDF5, Keras 2.x `name:0` and 3.x layouts)
// and FILE:DATASET stacks. The layer groups under model_weights (or the root, for save_weights
// files) are walked in the order of their `layer_names` attribute; a group holding a square
// recurrent_kernel is a SimpleRNN cell (kernel and bias are its siblings), a group holding a 2-D
// kernel and no recurrent_kernel is a Dense layer, the readout of the last SimpleRNN before it when
// shapes agree.
#include "host/io/keras.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "host/analysis/eig_solver.hpp"
#include "host/core/error.hpp"
#include "host/core/limits.hpp"
#include "host/io/h5.hpp"

namespace eirnn {
namespace fs = std::filesystem;
namespace {

/// A dataset's name without Keras 2's ":0" suffix.
std::string base_name(const std::string& name) {
    std::size_t colon = name.rfind(':');
    if (colon == std::string::npos || colon + 1 == name.size()) return name;
    bool digits = std::all_of(name.begin() + colon + 1, name.end(),
                              [](unsigned char c) { return std::isdigit(c) != 0; });
    return digits ? name.substr(0, colon) : name;
}

/// "<file>: <message>", unless the message names the file already.
std::string prefixed(const std::string& file, const std::string& message) {
    return message.rfind(file, 0) == 0 ? message : file + ": " + message;
}

/// The weight datasets of one HDF5 group (a Keras cell or layer), by base name.
struct WeightGroup {
    std::string path;
    std::map<std::string, std::string> datasets;  // base name -> full path
};

/// Identity of an HDF5 object in its file (its address, or token from HDF5 1.12 on): a group
/// reached twice through hard links is the same object.
std::string object_key(hid_t obj) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(obj, &info, H5O_INFO_BASIC) < 0) return {};
    return std::string(reinterpret_cast<const char*>(&info.token), sizeof info.token);
#else
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return {};
    return std::to_string(info.addr);
#endif
}

/// Walks the groups under `path` depth first, each group once however many links lead to it (a
/// file whose groups link back to their parents would otherwise be walked without end).
void collect(hid_t file, const std::string& path, std::vector<WeightGroup>& out, int depth,
             std::set<std::string>& visited) {
    h5::Id g = h5::open_group(file, path);
    const std::string key = object_key(g);
    if (key.empty() || !visited.insert(key).second) return;
    WeightGroup here{path, {}};
    std::vector<std::string> subgroups;
    for (const std::string& name : h5::children(g)) {
        std::string child = path + "/" + name;
        h5::Id obj(H5Oopen(file, child.c_str(), H5P_DEFAULT));
        if (!obj.valid()) continue;
        H5I_type_t type = H5Iget_type(obj);
        if (type == H5I_DATASET)
            here.datasets.emplace(base_name(name), child);
        else if (type == H5I_GROUP && depth < 32 && !visited.count(object_key(obj)))
            subgroups.push_back(child);
    }
    if (!here.datasets.empty()) out.push_back(std::move(here));
    for (const std::string& s : subgroups) collect(file, s, out, depth + 1, visited);
}

/// Layer group names in model order: the `layer_names` attribute when readable, else sorted.
std::vector<std::string> layer_order(hid_t root) {
    std::vector<std::string> names = h5::children(root);
    if (!h5::has_attr(root, "layer_names")) return names;
    std::vector<std::string> ordered;
    try {
        ordered = h5::read_attr_strings(root, "layer_names");
    } catch (const std::exception&) {
        return names;
    }
    for (const std::string& n : names)
        if (std::find(ordered.begin(), ordered.end(), n) == ordered.end()) ordered.push_back(n);
    std::erase_if(ordered, [&](const std::string& n) {
        return std::find(names.begin(), names.end(), n) == names.end();
    });
    return ordered;
}

/// Reads a dataset as double, naming file and path in any error; non-finite entries are an error.
h5::Array<double> read_finite(hid_t file, const std::string& file_name, const std::string& path) {
    h5::Array<double> a = h5::read_double(file, path);
    for (std::size_t i = 0; i < a.data.size(); ++i)
        if (!std::isfinite(a.data[i]))
            throw InputError(file_name + ": " + path + " has a NaN or infinite entry (element " +
                             std::to_string(i) + ")");
    return a;
}

/// out[c][r] = in[r][c] for in (rows, cols) row-major.
std::vector<double> transpose(const std::vector<double>& in, std::size_t rows, std::size_t cols) {
    std::vector<double> out(in.size());
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
    return out;
}

KerasRnn read_cell(hid_t file, const std::string& file_name, const WeightGroup& g) {
    KerasRnn rnn;
    rnn.layer = g.datasets.at("recurrent_kernel");
    h5::Array<double> u = read_finite(file, file_name, rnn.layer);
    if (u.dims.size() != 2 || u.dims[0] != u.dims[1] || u.dims[0] > 1'000'000)
        throw InputError(file_name + ": " + rnn.layer + " has shape " + h5::shape_text(u.dims) +
                         ", expected N x N with N <= 1000000");
    const std::size_t N = u.dims[0];
    rnn.N = static_cast<int>(N);
    rnn.w_rec = transpose(u.data, N, N);
    if (auto it = g.datasets.find("kernel"); it != g.datasets.end()) {
        h5::Array<double> k = read_finite(file, file_name, it->second);
        if (k.dims.size() != 2 || k.dims[1] != N)
            throw InputError(file_name + ": " + it->second + " has shape " +
                             h5::shape_text(k.dims) + ", expected inputs x " + std::to_string(N));
        rnn.I = static_cast<int>(k.dims[0]);
        rnn.w_in = transpose(k.data, k.dims[0], N);
    }
    if (auto it = g.datasets.find("bias"); it != g.datasets.end()) {
        h5::Array<double> b = read_finite(file, file_name, it->second);
        if (b.dims.size() != 1 || b.dims[0] != N)
            throw InputError(file_name + ": " + it->second + " has shape " +
                             h5::shape_text(b.dims) + ", expected " + std::to_string(N));
        rnn.b = std::move(b.data);
    }
    return rnn;
}

void attach_readout(hid_t file, const std::string& file_name, const WeightGroup& g, KerasRnn& rnn) {
    const std::string& kpath = g.datasets.at("kernel");
    std::vector<hsize_t> dims = h5::shape(file, kpath);
    if (dims.size() != 2 || dims[0] != static_cast<hsize_t>(rnn.N)) return;
    h5::Array<double> k = read_finite(file, file_name, kpath);
    rnn.O = static_cast<int>(dims[1]);
    rnn.w_out = transpose(k.data, dims[0], dims[1]);
    if (auto it = g.datasets.find("bias"); it != g.datasets.end()) {
        h5::Array<double> b = read_finite(file, file_name, it->second);
        if (b.dims.size() == 1 && b.dims[0] == dims[1]) rnn.b_out = std::move(b.data);
    }
}

}  // namespace

namespace {
KerasModel read_keras_file(const fs::path& path) {
    KerasModel model;
    model.path = path.string();
    const std::string& name = model.path;
    h5::Id file = h5::open_untrusted(path);
    if (h5::has_attr(file, "keras_version")) {
        try {
            model.keras_version = h5::read_attr_string(file, "keras_version");
        } catch (const std::exception&) {
            model.keras_version.clear();
        }
    }
    const bool whole_model = h5::exists(file, "model_weights");
    const std::string base = whole_model ? "/model_weights" : "";
    h5::Id root = h5::open_group(file, whole_model ? "/model_weights" : "/");

    std::vector<WeightGroup> groups;
    std::set<std::string> visited{object_key(root)};
    for (const std::string& layer : layer_order(root)) {
        if (!whole_model && layer == "optimizer_weights") continue;
        std::string lpath = base + "/" + layer;
        h5::Id obj(H5Oopen(file, lpath.c_str(), H5P_DEFAULT));
        if (obj.valid() && H5Iget_type(obj) == H5I_GROUP) collect(file, lpath, groups, 0, visited);
    }

    std::string rejected;
    for (const WeightGroup& g : groups) {
        if (auto it = g.datasets.find("recurrent_kernel"); it != g.datasets.end()) {
            std::vector<hsize_t> dims = h5::shape(file, it->second);
            if (dims.size() != 2 || dims[0] != dims[1]) {
                rejected = it->second + " has shape " + h5::shape_text(dims);
                continue;
            }
            if (dims[0] == 0) throw InputError(name + ": " + it->second + " is empty (N = 0)");
            model.layers.push_back(read_cell(file, name, g));
        } else if (g.datasets.count("kernel") && !model.layers.empty() &&
                   model.layers.back().w_out.empty()) {
            attach_readout(file, name, g, model.layers.back());
        }
    }
    if (model.layers.empty()) {
        if (!rejected.empty())
            throw InputError(name + ": no SimpleRNN weights (" + rejected +
                             ", not square: LSTM/GRU layers are not supported)");
        throw InputError(name + ": no SimpleRNN weights (no recurrent_kernel under " +
                         (whole_model ? std::string("model_weights") : std::string("/")) + ")");
    }
    return model;
}
}  // namespace

KerasModel read_keras(const fs::path& path) {
    return h5::reading(path, [&] { return read_keras_file(path); });
}

MatrixStack read_h5_matrices(const std::string& spec) {
    std::string file_name, dataset;
    for (std::size_t colon = spec.rfind(':'); colon != std::string::npos && colon > 0;
         colon = spec.rfind(':', colon - 1)) {
        std::error_code ec;
        if (fs::is_regular_file(spec.substr(0, colon), ec)) {
            file_name = spec.substr(0, colon);
            dataset = spec.substr(colon + 1);
            break;
        }
    }
    if (file_name.empty()) {
        std::size_t colon = spec.find(':');
        if (colon == std::string::npos || colon == 0)
            throw InputError("--h5 " + spec + ": expected FILE:DATASET");
        file_name = spec.substr(0, colon);
        dataset = spec.substr(colon + 1);
    }
    h5::Id file = h5::open_untrusted(file_name);
    if (dataset.empty()) throw InputError("--h5 " + spec + ": no dataset named after the ':'");
    if (!h5::exists(file, dataset)) throw InputError(file_name + ": no dataset '" + dataset + "'");
    std::vector<hsize_t> dims;
    try {
        dims = h5::shape(file, dataset);
    } catch (const InputError& e) {
        throw InputError(prefixed(file_name, e.what()));
    }
    MatrixStack m;
    m.file = file_name;
    m.dataset = dataset;
    const std::string source = file_name + ":" + dataset;
    if (dims.size() != 2 && dims.size() != 3)
        throw InputError(source + ": shape " + h5::shape_text(dims) +
                         ", expected [N,N] or [K,N,N]");
    const hsize_t rows = dims[dims.size() - 2], cols = dims[dims.size() - 1];
    if (rows != cols)
        throw InputError(source + ": shape " + h5::shape_text(dims) + " is not square");
    if (rows == 0) throw InputError(source + ": empty matrices (N = 0)");
    const hsize_t K = dims.size() == 3 ? dims[0] : 1;
    if (K == 0) throw InputError(source + ": no matrices (K = 0)");
    if (rows > 1'000'000 || K > 2'000'000'000)
        throw InputError(source + ": shape " + h5::shape_text(dims) +
                         " is too large (N <= 1000000, K <= 2000000000)");
    checked_bytes({K, rows, cols}, sizeof(double), source);
    h5::Array<double> a;
    try {
        a = h5::read_double(file, dataset);
    } catch (const InputError& e) {
        throw InputError(prefixed(file_name, e.what()));
    }
    const std::size_t nn = rows * cols;
    for (std::size_t i = 0; i < a.data.size(); ++i)
        if (!std::isfinite(a.data[i]))
            throw InputError(source + ": NaN or infinite entry at [" + std::to_string(i / nn) +
                             "," + std::to_string(i % nn / cols) + "," + std::to_string(i % cols) +
                             "]");
    m.stacked = dims.size() == 3;
    m.K = static_cast<int>(K);
    m.N = static_cast<int>(rows);
    m.w = std::move(a.data);
    return m;
}

std::vector<std::int8_t> infer_column_signs(const double* w, int N) {
    std::vector<std::int8_t> sign(N, 1);
    for (int j = 0; j < N; ++j) {
        bool pos = false, neg = false;
        for (int i = 0; i < N; ++i) {
            double v = w[std::size_t(i) * N + j];
            pos |= v > 0;
            neg |= v < 0;
        }
        if (pos && neg) return {};
        sign[j] = neg ? -1 : 1;
    }
    return sign;
}

MetricsTable analyse_matrices(const double* w, int K, int N, int outliers, cplx* eig, int threads,
                              EigSolver& solver, std::vector<std::int8_t>* sign_out,
                              double* sv_out) {
    const auto& names = metric_names();
    const std::size_t w0 = std::find(names.begin(), names.end(), "w_ee_mean") - names.begin();
    const std::size_t nn = std::size_t(N) * N;
    MetricsTable t = analyse(w, K, N, {}, outliers, eig, threads, &solver, sv_out);
    if (sign_out) sign_out->assign(std::size_t(K) * N, 0);
    for (int k = 0; k < K; ++k) {
        std::vector<std::int8_t> row = infer_column_signs(w + k * nn, N);
        if (row.empty()) continue;
        if (sign_out) std::copy(row.begin(), row.end(), sign_out->begin() + std::size_t(k) * N);
        WeightStats ws = weight_stats(w + k * nn, N, row);
        std::vector<double> full = metric_row(SpectralMetrics{}, &ws);
        for (std::size_t c = w0; c < full.size(); ++c) t.columns[c][k] = full[c];
    }
    return t;
}

}  // namespace eirnn
