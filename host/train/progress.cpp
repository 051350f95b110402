// Progress bar (see progress.hpp).
#include "host/train/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace eirnn {

ProgressBar::ProgressBar(std::function<double()> fraction, std::function<std::string()> line,
                         bool enabled)
    : fraction_(std::move(fraction)),
      line_(std::move(line)),
      enabled_(enabled && stderr_is_tty()),
      start_(std::chrono::steady_clock::now()) {
    if (!enabled_) return;
    thread_ = std::thread([this] {
        while (!stop_.load()) {
            draw(false);
            for (int i = 0; i < 5 && !stop_.load(); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
}

ProgressBar::~ProgressBar() {
    if (!enabled_) return;
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    std::fprintf(stderr, "\r\033[2K");
    std::fflush(stderr);
}

bool ProgressBar::stderr_is_tty() {
    return isatty(STDERR_FILENO) != 0;
}

std::string ProgressBar::format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "--";
    long t = std::lround(s);
    char buf[32];
    if (t >= 3600)
        std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    else
        std::snprintf(buf, sizeof buf, "%lds", t);
    return buf;
}

void ProgressBar::draw(bool) {
    double f = fraction_();
    if (!std::isfinite(f)) f = 0;
    f = f < 0 ? 0 : (f > 1 ? 1 : f);
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double eta = f > 0.002 ? el * (1 - f) / f : NAN;
    constexpr int kWidth = 24;
    int fill = static_cast<int>(f * kWidth);
    std::string bar(fill, '#');
    bar += std::string(kWidth - fill, '.');
    std::fprintf(stderr, "\r\033[2K[%s] %3d%% %s | %s elapsed, ETA %s", bar.c_str(),
                 static_cast<int>(f * 100), line_().c_str(), format_duration(el).c_str(),
                 format_duration(eta).c_str());
    std::fflush(stderr);
}

}  // namespace eirnn
