// A one-line progress bar on stderr (epoch, networks active, mean/min loss, percentage, ETA),
// redrawn by a background thread from the backend's atomic counters. Silent when stderr is not a
// terminal or when disabled (--quiet). Written by hand: a single status line needs no library.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace eirnn {

class ProgressBar {
public:
    /// line(): the text after the bar; fraction(): done in [0, 1]. enabled = false draws nothing.
    ProgressBar(std::function<double()> fraction, std::function<std::string()> line, bool enabled);
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;
    ~ProgressBar();  // stops the thread and clears the line

    /// True when stderr is a terminal.
    static bool stderr_is_tty();
    /// "1h02m", "3m05s", "42s".
    static std::string format_duration(double seconds);

private:
    void draw(bool final);
    std::function<double()> fraction_;
    std::function<std::string()> line_;
    bool enabled_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace eirnn
