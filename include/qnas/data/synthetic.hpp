// The built-in synthetic data set: ten classes of anti-aliased stroked shapes with nuisances.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string_view>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/dataset.hpp"
#include "qnas/data/random.hpp"

namespace qnas::data {

/// Number of classes of the synthetic data set.
inline constexpr std::size_t synthetic_classes = 10;

/// What each synthetic class draws. The set is built from confusable pairs and families, so a
/// classifier has to resolve angles, gaps and stroke layout rather than ink amount:
/// plus/cross and square/diamond differ only by a 45-degree rotation (each is rotated by up to
/// `max_rotation_deg`), ring/arc/double ring share the outer circle, triangle and seven share
/// two edges.
inline constexpr std::array<std::string_view, synthetic_classes> synthetic_class_names = {
    "ring", "square", "triangle", "plus", "cross", "bars", "double_ring", "arc", "seven", "diamond"};

/// The nuisances of the synthetic data set. The defaults make a 28x28 task that a small float
/// CNN learns well but not perfectly, and on which low-bit quantization visibly costs accuracy.
struct synthetic_options {
  std::size_t size = 10000;        ///< number of images (exactly balanced: every run of 10
                                   ///< consecutive images holds each class once, in seeded order)
  std::size_t height = 28;         ///< image rows (>= 8)
  std::size_t width = 28;          ///< image columns (>= 8)
  std::uint64_t seed = 0;          ///< same seed: same labels; same images (bit for bit with the same libm)
  float noise = 0.10f;             ///< std. dev. of additive pixel noise (approximately Gaussian)
  float clutter = 0.6f;            ///< probability that an image gets 1-3 distractor strokes
  float max_shift = 0.12f;         ///< centre offset, as a fraction of the image size, per axis
  float min_scale = 0.26f;         ///< shape radius range, as a fraction of min(height, width)
  float max_scale = 0.36f;
  float max_rotation_deg = 20.0f;  ///< in [0, 22.5]: beyond it plus/cross and square/diamond
                                   ///< would overlap and the labels would be ambiguous
  float min_thickness = 1.2f;      ///< stroke width range in pixels (scaled with the image size
  float max_thickness = 2.8f;      ///< relative to 28 pixels)
  float jitter = 0.07f;            ///< random displacement of each vertex, fraction of the radius
  float min_ink = 0.35f;           ///< stroke intensity range: faint strokes sit close to the
  float max_ink = 1.0f;            ///< noise floor, which is where coarse quantization hurts
  float occlusion = 0.25f;         ///< probability that a block hides part of the glyph (a ring
                                   ///< may then look like an arc: the task is not separable)
};

}  // namespace qnas::data

namespace qnas::detail::synth {

using data::synthetic_options;

struct vec2 {
  float x, y;
};

// A glyph in pixel coordinates: straight segments and circular arcs, stored with what the
// per-pixel distance needs precomputed (no division or trigonometry per segment and pixel).
struct segment {
  float ax, ay, dx, dy, inv_len2;
};
struct arc {
  float cx, cy, radius, start, sweep;
  bool full;
  vec2 e0, e1;  // end points (open arcs)
};

struct glyph {
  std::array<segment, 8> segments{};
  std::array<arc, 2> arcs{};
  std::size_t n_segments = 0, n_arcs = 0;

  void add_segment(vec2 a, vec2 b) {
    const float dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy;
    segments[n_segments++] = {a.x, a.y, dx, dy, len2 > 0.0f ? 1.0f / len2 : 0.0f};
  }
  // An arc of `radius` around c from angle `start` sweeping `sweep` radians (>= 2*pi: a circle).
  void add_arc(vec2 c, float radius, float start, float sweep) {
    const bool full = sweep >= 2.0f * std::numbers::pi_v<float>;
    arcs[n_arcs++] = {c.x, c.y, radius, start, sweep, full,
                      {c.x + radius * std::cos(start), c.y + radius * std::sin(start)},
                      {c.x + radius * std::cos(start + sweep), c.y + radius * std::sin(start + sweep)}};
  }
};

inline float segment_distance_sq(vec2 p, const segment& s) noexcept {
  const float px = p.x - s.ax, py = p.y - s.ay;
  const float t = std::clamp((px * s.dx + py * s.dy) * s.inv_len2, 0.0f, 1.0f);
  const float ex = px - t * s.dx, ey = py - t * s.dy;
  return ex * ex + ey * ey;
}

inline float arc_distance(vec2 p, const arc& s) noexcept {
  constexpr float two_pi = 2.0f * std::numbers::pi_v<float>;
  const float dx = p.x - s.cx, dy = p.y - s.cy;
  const float r = std::sqrt(dx * dx + dy * dy);
  if (s.full) return std::abs(r - s.radius);
  float ang = std::atan2(dy, dx) - s.start;
  ang -= two_pi * std::floor(ang / two_pi);  // [0, 2*pi)
  if (ang <= s.sweep) return std::abs(r - s.radius);
  const float d0 = (p.x - s.e0.x) * (p.x - s.e0.x) + (p.y - s.e0.y) * (p.y - s.e0.y);
  const float d1 = (p.x - s.e1.x) * (p.x - s.e1.x) + (p.y - s.e1.y) * (p.y - s.e1.y);
  return std::sqrt(std::min(d0, d1));
}

// Distance from p to the nearest stroke centre line.
inline float glyph_distance(vec2 p, const glyph& g) noexcept {
  float best_sq = 3.4e38f, best_arc = 3.4e38f;
  for (std::size_t k = 0; k < g.n_segments; ++k) best_sq = std::min(best_sq, segment_distance_sq(p, g.segments[k]));
  for (std::size_t k = 0; k < g.n_arcs; ++k) best_arc = std::min(best_arc, arc_distance(p, g.arcs[k]));
  return std::min(std::sqrt(best_sq), best_arc);
}

// Approximately standard normal from one 64-bit draw: the sum of four 16-bit uniforms
// (Irwin-Hall), recentred and rescaled to unit variance. Per-pixel noise needs speed more than
// Gaussian tails.
inline float fast_normal(std::uint64_t bits) noexcept {
  const float s = static_cast<float>(bits & 0xFFFF) + static_cast<float>((bits >> 16) & 0xFFFF) +
                  static_cast<float>((bits >> 32) & 0xFFFF) + static_cast<float>(bits >> 48);
  // mean 4 * 32767.5, variance 4 * (65536^2 - 1) / 12
  return (s - 131070.0f) * (1.0f / 37837.23f);
}

// The unit-space outline of class c (coordinates in [-1, 1], y down), rotated, scaled, jittered
// and placed; arcs keep their angles relative to the rotation.
template <class E>
glyph make_glyph(std::size_t c, E& e, const synthetic_options& o, vec2 centre, float radius, float angle) {
  const float jit = o.jitter;
  auto place = [&](float ux, float uy) {
    const float jx = ux + jit * static_cast<float>(uniform(e, -1.0, 1.0));
    const float jy = uy + jit * static_cast<float>(uniform(e, -1.0, 1.0));
    const float cs = std::cos(angle), sn = std::sin(angle);
    return vec2{centre.x + radius * (cs * jx - sn * jy), centre.y + radius * (sn * jx + cs * jy)};
  };
  auto circle = [&](glyph& g, float r, float start, float sweep) {
    const vec2 cc = place(0.0f, 0.0f);
    const float rr = radius * r * (1.0f + jit * static_cast<float>(uniform(e, -1.0, 1.0)));
    g.add_arc(cc, rr, start + angle, sweep);
  };
  auto polygon = [&](glyph& g, std::span<const vec2> v, bool closed) {
    std::array<vec2, 8> p{};
    for (std::size_t k = 0; k < v.size(); ++k) p[k] = place(v[k].x, v[k].y);
    for (std::size_t k = 0; k + 1 < v.size(); ++k) g.add_segment(p[k], p[k + 1]);
    if (closed) g.add_segment(p[v.size() - 1], p[0]);
  };
  constexpr float two_pi = 2.0f * std::numbers::pi_v<float>;
  constexpr float q = std::numbers::pi_v<float> / 4.0f;
  glyph g;
  switch (c) {
    case 0: circle(g, 0.9f, 0.0f, two_pi); break;
    case 1: {
      const vec2 v[] = {{-0.78f, -0.78f}, {0.78f, -0.78f}, {0.78f, 0.78f}, {-0.78f, 0.78f}};
      polygon(g, v, true);
      break;
    }
    case 2: {
      const vec2 v[] = {{0.0f, -0.95f}, {0.85f, 0.6f}, {-0.85f, 0.6f}};
      polygon(g, v, true);
      break;
    }
    case 3:
    case 4: {
      // plus; the cross is the same glyph turned by 45 degrees
      const float a = c == 4 ? q : 0.0f, cs = std::cos(a), sn = std::sin(a);
      const vec2 v0[] = {{-0.9f * cs, -0.9f * sn}, {0.9f * cs, 0.9f * sn}};
      const vec2 v1[] = {{0.9f * sn, -0.9f * cs}, {-0.9f * sn, 0.9f * cs}};
      polygon(g, v0, false);
      polygon(g, v1, false);
      break;
    }
    case 5:
      for (float y : {-0.6f, 0.0f, 0.6f}) {
        const vec2 v[] = {{-0.8f, y}, {0.8f, y}};
        polygon(g, v, false);
      }
      break;
    case 6:
      circle(g, 0.9f, 0.0f, two_pi);
      circle(g, 0.42f, 0.0f, two_pi);
      break;
    case 7: {
      // an open ring: gap of 70-110 degrees facing any direction
      const float gap = static_cast<float>(uniform(e, 70.0, 110.0)) * std::numbers::pi_v<float> / 180.0f;
      const float start = static_cast<float>(uniform(e, 0.0, two_pi));
      circle(g, 0.9f, start, two_pi - gap);
      break;
    }
    case 8: {
      const vec2 v[] = {{-0.75f, -0.8f}, {0.75f, -0.8f}, {-0.15f, 0.92f}};
      polygon(g, v, false);
      break;
    }
    default: {
      const float r = 0.78f * std::numbers::sqrt2_v<float>;  // the square turned by 45 degrees
      const vec2 v[] = {{0.0f, -r}, {r, 0.0f}, {0.0f, r}, {-r, 0.0f}};
      polygon(g, v, true);
      break;
    }
  }
  return g;
}

inline void check_options(const synthetic_options& o) {
  constexpr const char* where = "qnas::data::make_synthetic";
  auto finite_in = [](float v, float lo, float hi) { return std::isfinite(v) && v >= lo && v <= hi; };
  if (o.height < 8 || o.width < 8)
    throw invalid_argument(where, qnas::detail::cat("image size ", o.height, "x", o.width, " is below the minimum 8x8"));
  if (!finite_in(o.noise, 0.0f, 1.0f)) throw invalid_argument(where, qnas::detail::cat("noise ", o.noise, " is not in [0, 1]"));
  if (!finite_in(o.clutter, 0.0f, 1.0f))
    throw invalid_argument(where, qnas::detail::cat("clutter ", o.clutter, " is not a probability in [0, 1]"));
  if (!finite_in(o.max_shift, 0.0f, 0.5f))
    throw invalid_argument(where, qnas::detail::cat("max_shift ", o.max_shift, " is not in [0, 0.5]"));
  if (!finite_in(o.min_scale, 0.01f, 1.0f) || !finite_in(o.max_scale, o.min_scale, 1.0f))
    throw invalid_argument(where, qnas::detail::cat("scale range [", o.min_scale, ", ", o.max_scale,
                                              "] must satisfy 0.01 <= min_scale <= max_scale <= 1"));
  if (!finite_in(o.max_rotation_deg, 0.0f, 22.5f))
    throw invalid_argument(where, qnas::detail::cat("max_rotation_deg ", o.max_rotation_deg,
                                              " is not in [0, 22.5] (plus/cross and square/diamond would overlap)"));
  if (!finite_in(o.min_thickness, 0.1f, 100.0f) || !finite_in(o.max_thickness, o.min_thickness, 100.0f))
    throw invalid_argument(where, qnas::detail::cat("thickness range [", o.min_thickness, ", ", o.max_thickness,
                                              "] must satisfy 0.1 <= min_thickness <= max_thickness"));
  if (!finite_in(o.jitter, 0.0f, 0.5f)) throw invalid_argument(where, qnas::detail::cat("jitter ", o.jitter, " is not in [0, 0.5]"));
  if (!finite_in(o.min_ink, 0.0f, 1.0f) || !finite_in(o.max_ink, o.min_ink, 1.0f))
    throw invalid_argument(where, qnas::detail::cat("ink range [", o.min_ink, ", ", o.max_ink,
                                              "] must satisfy 0 <= min_ink <= max_ink <= 1"));
  if (!finite_in(o.occlusion, 0.0f, 1.0f))
    throw invalid_argument(where, qnas::detail::cat("occlusion ", o.occlusion, " is not a probability in [0, 1]"));
}

}  // namespace qnas::detail::synth

namespace qnas::data {

/// Renders one synthetic image of class `cls` into `out` (height * width floats, row-major, in
/// [0, 1]). Every random choice comes from `item_seed`, so any image can be regenerated alone.
inline void render_synthetic(std::size_t cls, std::uint64_t item_seed, const synthetic_options& o, std::span<float> out) {
  using namespace qnas::detail::synth;
  if (cls >= synthetic_classes)
    throw invalid_argument("qnas::data::render_synthetic", qnas::detail::cat("class ", cls, " is not below ", synthetic_classes));
  if (out.size() != o.height * o.width)
    throw invalid_argument("qnas::data::render_synthetic",
                           qnas::detail::cat("output has ", out.size(), " floats, the image needs ", o.height * o.width));
  random_engine e(item_seed);
  const auto H = static_cast<float>(o.height), W = static_cast<float>(o.width), side = std::min(H, W);
  const float px_scale = side / 28.0f;
  const vec2 centre{W * 0.5f + W * o.max_shift * static_cast<float>(qnas::detail::uniform(e, -1.0, 1.0)),
                    H * 0.5f + H * o.max_shift * static_cast<float>(qnas::detail::uniform(e, -1.0, 1.0))};
  const float radius = side * static_cast<float>(qnas::detail::uniform(e, o.min_scale, o.max_scale));
  const float angle = static_cast<float>(qnas::detail::uniform(e, -1.0, 1.0)) * o.max_rotation_deg *
                      std::numbers::pi_v<float> / 180.0f;
  const float half_t = 0.5f * px_scale * static_cast<float>(qnas::detail::uniform(e, o.min_thickness, o.max_thickness));
  const float ink = static_cast<float>(qnas::detail::uniform(e, o.min_ink, o.max_ink));
  // Background: a faint level plus a linear gradient in a random direction.
  const float bg = static_cast<float>(qnas::detail::uniform(e, 0.0, 0.12));
  const float gdir = static_cast<float>(qnas::detail::uniform(e, 0.0, 2.0 * std::numbers::pi));
  const float gamp = static_cast<float>(qnas::detail::uniform(e, 0.0, 0.10));
  const float gx = gamp * std::cos(gdir) / W, gy = gamp * std::sin(gdir) / H;

  const glyph g = make_glyph(cls, e, o, centre, radius, angle);

  // Occluder: an axis-aligned block over part of the outline, painted with the background.
  float ox0 = 0.0f, ox1 = -1.0f, oy0 = 0.0f, oy1 = -1.0f;
  if (qnas::detail::uniform01(e) < o.occlusion) {
    const float dir = static_cast<float>(qnas::detail::uniform(e, 0.0, 2.0 * std::numbers::pi));
    const float dist = radius * static_cast<float>(qnas::detail::uniform(e, 0.5, 1.0));
    const float hw = radius * static_cast<float>(qnas::detail::uniform(e, 0.2, 0.4));
    const float hh = radius * static_cast<float>(qnas::detail::uniform(e, 0.2, 0.4));
    const float bx = centre.x + dist * std::cos(dir), by = centre.y + dist * std::sin(dir);
    ox0 = bx - hw, ox1 = bx + hw, oy0 = by - hh, oy1 = by + hh;
  }

  // Distractors: short thin strokes anywhere, dimmer than the glyph on average. Each is only
  // evaluated inside its bounding box.
  struct distractor {
    segment s;
    float x0, x1, y0, y1;
  };
  std::array<distractor, 3> clutter{};
  std::size_t clutter_count = 0;
  float clutter_ink = 0.0f, clutter_half_t = 0.5f * px_scale;
  if (qnas::detail::uniform01(e) < o.clutter) {
    clutter_count = 1 + qnas::detail::uniform_below(e, 3);
    clutter_ink = static_cast<float>(qnas::detail::uniform(e, 0.3, 0.8));
    clutter_half_t = 0.5f * px_scale * static_cast<float>(qnas::detail::uniform(e, 0.8, 1.6));
    for (std::size_t k = 0; k < clutter_count; ++k) {
      const vec2 a{static_cast<float>(qnas::detail::uniform(e, 0.0, W)), static_cast<float>(qnas::detail::uniform(e, 0.0, H))};
      const float len = side * static_cast<float>(qnas::detail::uniform(e, 0.1, 0.3));
      const float dir = static_cast<float>(qnas::detail::uniform(e, 0.0, 2.0 * std::numbers::pi));
      const vec2 b{a.x + len * std::cos(dir), a.y + len * std::sin(dir)};
      const float m = clutter_half_t + 1.0f;
      glyph one;
      one.add_segment(a, b);
      clutter[k] = {one.segments[0], std::min(a.x, b.x) - m, std::max(a.x, b.x) + m, std::min(a.y, b.y) - m,
                    std::max(a.y, b.y) + m};
    }
  }

  // Only pixels inside the glyph's bounding box (strokes widened by the stroke width and the
  // anti-aliasing ramp) can be inked, so the rest of the image skips the distance evaluation.
  float bx0 = 3.4e38f, bx1 = -3.4e38f, by0 = 3.4e38f, by1 = -3.4e38f;
  for (std::size_t k = 0; k < g.n_segments; ++k) {
    const segment& sg = g.segments[k];
    bx0 = std::min({bx0, sg.ax, sg.ax + sg.dx});
    bx1 = std::max({bx1, sg.ax, sg.ax + sg.dx});
    by0 = std::min({by0, sg.ay, sg.ay + sg.dy});
    by1 = std::max({by1, sg.ay, sg.ay + sg.dy});
  }
  for (std::size_t k = 0; k < g.n_arcs; ++k) {
    const arc& a = g.arcs[k];
    bx0 = std::min(bx0, a.cx - a.radius);
    bx1 = std::max(bx1, a.cx + a.radius);
    by0 = std::min(by0, a.cy - a.radius);
    by1 = std::max(by1, a.cy + a.radius);
  }
  const float margin = half_t + 1.0f;
  bx0 -= margin, bx1 += margin, by0 -= margin, by1 += margin;
  const std::uint64_t noise_seed = qnas::detail::bits64(e);
  const float sigma = o.noise;
  for (std::size_t y = 0; y < o.height; ++y) {
    const float py = static_cast<float>(y) + 0.5f;
    for (std::size_t x = 0; x < o.width; ++x) {
      const vec2 p{static_cast<float>(x) + 0.5f, py};
      // Clamped here, not only after the noise: otherwise max() with the glyph's zero coverage
      // would lift a negative background inside the glyph's box only, a visible frame.
      float v = std::max(0.0f, bg + gx * (p.x - W * 0.5f) + gy * (p.y - H * 0.5f));
      const bool hidden = p.x >= ox0 && p.x <= ox1 && p.y >= oy0 && p.y <= oy1;
      const bool near = p.x >= bx0 && p.x <= bx1 && p.y >= by0 && p.y <= by1;
      if (near && !hidden) {
        // Box-filter anti-aliasing: coverage falls linearly over the pixel at the stroke edge.
        const float cov = std::clamp(half_t + 0.5f - glyph_distance(p, g), 0.0f, 1.0f);
        v = std::max(v, ink * cov);
      }
      for (std::size_t k = 0; k < clutter_count; ++k) {
        const distractor& c = clutter[k];
        if (p.x < c.x0 || p.x > c.x1 || p.y < c.y0 || p.y > c.y1) continue;
        const float cov = std::clamp(clutter_half_t + 0.5f - std::sqrt(segment_distance_sq(p, c.s)), 0.0f, 1.0f);
        v = std::max(v, clutter_ink * cov);
      }
      out[y * o.width + x] = v;
    }
  }
  // Noise in a separate pass: a hash of (seed, pixel), independent per pixel, so the loop has no
  // serial dependency.
  const std::size_t npx = o.height * o.width;
  if (sigma > 0.0f)
    for (std::size_t k = 0; k < npx; ++k) out[k] += sigma * fast_normal(qnas::detail::mix_seed(noise_seed, k));
  for (std::size_t k = 0; k < npx; ++k) out[k] = std::clamp(out[k], 0.0f, 1.0f);
}

/// Generates the synthetic data set: `o.size` images `[N, height, width, 1]` in [0, 1], 10
/// classes (`synthetic_class_names`), exactly balanced (class counts differ by at most one),
/// labels in a seeded random order. Image i depends only on (seed, i), so the data set is
/// reproducible (labels everywhere, pixels bit for bit with the same math library; see
/// random.hpp) and any prefix of a larger data set is the smaller one.
[[nodiscard]] inline dataset make_synthetic(const synthetic_options& o = {}) {
  qnas::detail::synth::check_options(o);
  dataset d;
  d.classes = synthetic_classes;
  d.images.resize({o.size, o.height, o.width, 1});
  d.labels.resize(o.size);
  const std::size_t n = o.height * o.width;
  for (std::size_t i = 0; i < o.size; ++i) {
    // Balanced labels without a global shuffle: each run of 10 images is a seeded permutation of
    // the 10 classes, so prefixes stay balanced too.
    const std::size_t block = i / synthetic_classes;
    if (i % synthetic_classes == 0) {
      std::array<label_t, synthetic_classes> perm{};
      for (std::size_t c = 0; c < synthetic_classes; ++c) perm[c] = static_cast<label_t>(c);
      random_engine pe(qnas::detail::mix_seed(o.seed, 2 * block));
      qnas::detail::shuffle(std::span<label_t>(perm), pe);
      for (std::size_t c = 0; c < synthetic_classes && i + c < o.size; ++c) d.labels[i + c] = perm[c];
    }
    render_synthetic(static_cast<std::size_t>(d.labels[i]), qnas::detail::mix_seed(o.seed, 2 * i + 1), o,
                     std::span<float>(d.images.data() + i * n, n));
  }
  return d;
}

}  // namespace qnas::data
