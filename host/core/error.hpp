// Exceptions of the host layer. Library code throws; only main() catches, prints one line and
// exits: InputError (bad user input: a flag, a file, a config) exits with status 2, anything else
// with 1.
#pragma once
#include <stdexcept>
#include <string>

namespace eirnn {

/// Bad input from the user (flag, file, dataset, config). The message names the culprit.
struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Failure inside the engine (I/O, library call) that is not the user's input.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// A training stopped on request (TrainProgress::cancel) before its end; nothing was written.
struct Interrupted : Error {
    using Error::Error;
};

}  // namespace eirnn
