// The configuration of a group of networks: model (docs/MODEL.md §1-3), training (docs/MODEL.md
// §5), task (docs/MODEL.md §4). A network is fully determined by (GroupConfig, its seed).
// Serialised as JSON into results files.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "tasks/task.hpp"

namespace eirnn {

enum class Init { Normal, Orthogonal };
enum class DaleMode { Project, Reparam, None };
enum class DaleAxis { Outgoing, Incoming };
enum class ClipMode { Global, PerTensor };
enum class BackendKind { Auto, Cpu, Cuda };

struct ModelConfig {
    int units = 100;      // N
    double e_frac = 0.5;  // f_E: the first round(f_E N) units are excitatory
    Init init = Init::Orthogonal;
    double mu = 0.0;    // normal init: E columns N(+mu, g^2/N), I columns N(-mu, g^2/N)
    double gain = 1.0;  // g (normal std scale, orthogonal gain)
    DaleMode dale = DaleMode::Project;
    DaleAxis dale_axis = DaleAxis::Outgoing;
    bool project_init = false;  // project the initial matrix before training
    bool nonneg_input = true;   // W_in >= 0, projected after every update
    double p_connect = 1.0;     // density of the fixed connectivity mask (1 = no mask)
    bool autapses = true;       // false: W_rec[i][i] = 0 always
    double alpha = 1.0;         // dt / tau
    double sigma_rec = 0.0;     // recurrent noise std
};

struct TrainConfig {
    int epochs = 20;
    int trials = 15050;  // trials drawn; the last `test_trials` are held out
    int test_trials = 50;
    int batch = 64;
    double lr = 1e-4;
    double decay = 1e-4;  // Keras-2 time decay: lr / (1 + decay * updates)
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double clipnorm = 0.5;  // 0 disables clipping
    ClipMode clip = ClipMode::Global;
    double early_stop = 9e-5;  // stop a network when its epoch loss < this (0 disables)
    double l2_weight = 0.0;    // L2 penalty on W_rec, W_in, W_out
    double l2_rate = 0.0;      // L2 penalty on the rates h
};

struct GroupConfig {
    ModelConfig model;
    TrainConfig train;
    TaskParams task;
    int networks = 4;        // K
    std::uint64_t seed = 1;  // network k has seed `seed + k`
    std::uint64_t data_seed = 1;
    int threads = 0;  // 0 = all cores
    BackendKind backend = BackendKind::Auto;
    bool spectra = true;  // compute eigenvalues and metrics after training
    int outliers = 6;     // k of r_outer
};

/// Checks every field; throws InputError naming the flag (e.g. "--e-frac: ...").
void validate(const GroupConfig& c);

/// Number of excitatory units: round(f_E N).
int excitatory_units(const ModelConfig& m);

nlohmann::json to_json(const GroupConfig& c);
/// Reads a config written by to_json (unknown keys are errors). Throws InputError.
GroupConfig group_config_from_json(const nlohmann::json& j);

std::optional<Init> parse_init(std::string_view s);
std::optional<DaleMode> parse_dale(std::string_view s);
std::optional<DaleAxis> parse_dale_axis(std::string_view s);
std::optional<ClipMode> parse_clip(std::string_view s);
std::optional<BackendKind> parse_backend(std::string_view s);
std::string_view name(Init v);
std::string_view name(DaleMode v);
std::string_view name(DaleAxis v);
std::string_view name(ClipMode v);
std::string_view name(BackendKind v);

}  // namespace eirnn
