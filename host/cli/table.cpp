#include "host/cli/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace eirnn::cli {

std::string format_number(const char* f, double v) {
    if (std::isnan(v)) return "nan";
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

void print_columns(const std::vector<std::vector<std::string>>& cells, bool last_is_text) {
    if (cells.empty()) return;
    std::vector<std::size_t> width(cells.front().size(), 0);
    for (const auto& line : cells)
        for (std::size_t c = 0; c < line.size() && c < width.size(); ++c)
            width[c] = std::max(width[c], line[c].size());
    for (const auto& line : cells) {
        std::string out;
        for (std::size_t c = 0; c < line.size() && c < width.size(); ++c) {
            std::string pad(width[c] - line[c].size(), ' ');
            const bool left = c == 0, text = last_is_text && c + 1 == width.size();
            out += left ? line[c] + pad : text ? "  " + line[c] : "  " + pad + line[c];
        }
        std::printf("%s\n", out.c_str());
    }
}

}  // namespace eirnn::cli
