// Text output shared by the subcommands that print one row per network or matrix (spectrum,
// dynamics): numbers, CSV fields and aligned columns.
#pragma once
#include <string>
#include <vector>

namespace eirnn::cli {

/// v printed with the printf format f; "nan" for NaN.
std::string format_number(const char* f, double v);

/// s as one CSV field: quoted, with quotes doubled, when it holds a comma, a quote or a newline.
std::string csv_field(const std::string& s);

/// Prints rows of cells (the first row is the header) as columns two spaces apart: the first
/// column left-aligned, the others right-aligned, and the last left-aligned too when
/// last_is_text (a free-text column). Rows may not be longer than the header.
void print_columns(const std::vector<std::vector<std::string>>& cells, bool last_is_text = false);

}  // namespace eirnn::cli
