// A small, dependency-free SVG plot (scatter and line series, labelled axes with "nice" ticks).
//
// Search reports need one picture, accuracy against energy with the Pareto front drawn over all
// trials, on machines that have no plotting stack. Hand-written SVG opens in any browser.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/atomic_file.hpp"

namespace qnas::io {

/// One data series: points drawn as dots (scatter) or joined in the given order (line).
struct plot_series {
  enum class style { scatter, line, line_and_points };
  std::string name;
  std::vector<std::pair<double, double>> points;
  style draw = style::scatter;
  std::string color = "#1f77b4";
};

namespace detail {
/// Tick positions covering [lo, hi] at 1, 2 or 5 times a power of ten, about `target` of them:
/// the values people read without arithmetic.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

inline std::string xml_escape(std::string_view s) {
  std::string r;
  for (char c : s) switch (c) {
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '&': r += "&amp;"; break;
      case '"': r += "&quot;"; break;
      default: r += c;
    }
  return r;
}

inline std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

/// Tick labels: engineering suffixes for large values ("400k", "1.5M") instead of "4e+05".
inline std::string tick_label(double v) {
  const double a = std::abs(v);
  static constexpr const char* suffix[] = {"k", "M", "G", "T"};
  if (a >= 1e3 && a < 1e15) {
    int k = 0;
    double m = v / 1e3;
    while (std::abs(m) >= 1e3 && k < 3) m /= 1e3, ++k;
    char b[32];
    std::snprintf(b, sizeof b, "%.4g%s", m, suffix[k]);
    return b;
  }
  return fmt(v);
}
}  // namespace detail

/// A 2-D plot rendered to SVG text. Set the labels, add series, then str() or save().
/// The axis ranges cover all points (padded by 5 %); a log axis needs positive values.
class svg_plot {
 public:
  std::string title;
  std::string x_label = "x";
  std::string y_label = "y";
  bool log_x = false;
  bool log_y = false;
  int width = 720;
  int height = 480;

  void add(plot_series s) { series_.push_back(std::move(s)); }
  [[nodiscard]] const std::vector<plot_series>& series() const noexcept { return series_; }

  /// The SVG document. Throws qnas::invalid_argument for non-finite points or non-positive
  /// values on a log axis (they have no place on the picture; silently dropping them would lie).
  [[nodiscard]] std::string str() const {
    constexpr const char* where = "qnas::io::svg_plot";
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const auto& s : series_)
      for (auto [x, y] : s.points) {
        if (!std::isfinite(x) || !std::isfinite(y))
          throw invalid_argument(where, qnas::detail::cat("series '", s.name, "' has a non-finite point (", x, ", ", y, ")"));
        if ((log_x && x <= 0) || (log_y && y <= 0))
          throw invalid_argument(where, qnas::detail::cat("series '", s.name, "' has point (", x, ", ", y,
                                                          ") that a log axis cannot show"));
        const double tx = log_x ? std::log10(x) : x, ty = log_y ? std::log10(y) : y;
        x0 = std::min(x0, tx), x1 = std::max(x1, tx), y0 = std::min(y0, ty), y1 = std::max(y1, ty);
      }
    if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // no points: an empty, still labelled, frame
    auto pad = [](double& lo, double& hi) {
      const double d = hi > lo ? (hi - lo) * 0.05 : std::max(std::abs(lo) * 0.05, 0.5);
      lo -= d, hi += d;
    };
    pad(x0, x1), pad(y0, y1);
    const double left = 80, right = 20, top = title.empty() ? 20 : 44, bottom = 60;
    const double pw = width - left - right, ph = height - top - bottom;
    auto sx = [&](double x) { return left + ((log_x ? std::log10(x) : x) - x0) / (x1 - x0) * pw; };
    auto sy = [&](double y) { return top + ph - ((log_y ? std::log10(y) : y) - y0) / (y1 - y0) * ph; };
    using detail::fmt;
    std::string s;
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
         std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    if (!title.empty())
      s += "<text x=\"" + fmt(width / 2.0) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" +
           detail::xml_escape(title) + "</text>\n";
    s += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(top) + "\" width=\"" + fmt(pw) + "\" height=\"" + fmt(ph) +
         "\" fill=\"none\" stroke=\"black\"/>\n";
    // Ticks are computed in the (possibly log10) plotting coordinate; log axes label 10^k.
    for (double t : detail::nice_ticks(x0, x1)) {
      const double v = log_x ? std::pow(10.0, t) : t, px = sx(v);
      s += "<line class=\"xtick\" x1=\"" + fmt(px) + "\" y1=\"" + fmt(top + ph) + "\" x2=\"" + fmt(px) + "\" y2=\"" +
           fmt(top + ph + 5) + "\" stroke=\"black\"/>";
      s += "<text x=\"" + fmt(px) + "\" y=\"" + fmt(top + ph + 18) + "\" text-anchor=\"middle\">" + detail::tick_label(v) + "</text>\n";
    }
    for (double t : detail::nice_ticks(y0, y1)) {
      const double v = log_y ? std::pow(10.0, t) : t, py = sy(v);
      s += "<line class=\"ytick\" x1=\"" + fmt(left - 5) + "\" y1=\"" + fmt(py) + "\" x2=\"" + fmt(left) + "\" y2=\"" +
           fmt(py) + "\" stroke=\"black\"/>";
      s += "<text x=\"" + fmt(left - 8) + "\" y=\"" + fmt(py + 4) + "\" text-anchor=\"end\">" + detail::tick_label(v) + "</text>\n";
    }
    s += "<text x=\"" + fmt(left + pw / 2) + "\" y=\"" + fmt(height - 14.0) + "\" text-anchor=\"middle\">" +
         detail::xml_escape(x_label) + "</text>\n";
    s += "<text x=\"16\" y=\"" + fmt(top + ph / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " +
         fmt(top + ph / 2) + ")\">" + detail::xml_escape(y_label) + "</text>\n";
    double ly = top + 14;
    for (const auto& sr : series_) {
      const bool line = sr.draw != plot_series::style::scatter, dots = sr.draw != plot_series::style::line;
      if (line && !sr.points.empty()) {
        s += "<polyline fill=\"none\" stroke=\"" + sr.color + "\" stroke-width=\"1.5\" points=\"";
        for (auto [x, y] : sr.points) s += fmt(sx(x)) + "," + fmt(sy(y)) + " ";
        s += "\"/>\n";
      }
      if (dots)
        for (auto [x, y] : sr.points)
          s += "<circle cx=\"" + fmt(sx(x)) + "\" cy=\"" + fmt(sy(y)) + "\" r=\"3\" fill=\"" + sr.color +
               "\" fill-opacity=\"0.7\"/>\n";
      if (!sr.name.empty()) {  // legend, top right inside the frame
        s += "<rect x=\"" + fmt(left + pw - 150) + "\" y=\"" + fmt(ly - 9) + "\" width=\"10\" height=\"10\" fill=\"" +
             sr.color + "\"/>";
        s += "<text x=\"" + fmt(left + pw - 135) + "\" y=\"" + fmt(ly) + "\">" + detail::xml_escape(sr.name) +
             "</text>\n";
        ly += 16;
      }
    }
    s += "</svg>\n";
    return s;
  }

  /// Writes str() to `path` atomically.
  void save(const std::filesystem::path& path) const { write_file_atomic(path, str()); }

 private:
  std::vector<plot_series> series_;
};

}  // namespace qnas::io
