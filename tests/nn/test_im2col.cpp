// im2col against a direct gather for every kernel size 1-7, 1-3 channels, strides 1-3 and both
// paddings (the compile-time row lengths 3, 5, 7, 9 and the run-time path), and col2im as its
// adjoint: <im2col(x), c> == <x, col2im(c)>.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qnas/nn/conv2d.hpp"

using namespace qnas::nn;

TEST_CASE("im2col equals a direct gather; col2im is its adjoint") {
  std::mt19937_64 e(5);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::size_t cases = 0;
  for (std::size_t k = 1; k <= 7; ++k)
    for (std::size_t c = 1; c <= 3; ++c)
      for (std::size_t stride = 1; stride <= 3; ++stride)
        for (padding p : {padding::same, padding::valid}) {
          const std::size_t h = 9, w = 8, n = 2;
          if (p == padding::valid && k > w) continue;
          const window_geometry g = window_geometry::of(image(h, w, c), k, stride, p);
          std::vector<float> x(n * h * w * c);
          for (float& v : x) v = d(e);
          const std::size_t rows = n * g.out_h * g.out_w, patch = k * k * c;
          std::vector<float> cols(rows * patch, 7.0f);
          detail::im2col(x.data(), n, g, cols.data());
          std::size_t bad = 0;
          for (std::size_t b = 0; b < n; ++b)
            for (std::size_t oy = 0; oy < g.out_h; ++oy)
              for (std::size_t ox = 0; ox < g.out_w; ++ox)
                for (std::size_t ky = 0; ky < k; ++ky)
                  for (std::size_t kx = 0; kx < k; ++kx)
                    for (std::size_t ch = 0; ch < c; ++ch) {
                      const auto iy = static_cast<long>(oy * stride + ky) - static_cast<long>(g.pad_top);
                      const auto ix = static_cast<long>(ox * stride + kx) - static_cast<long>(g.pad_left);
                      const bool in = iy >= 0 && iy < static_cast<long>(h) && ix >= 0 && ix < static_cast<long>(w);
                      const float want = in ? x[((b * h + static_cast<std::size_t>(iy)) * w + static_cast<std::size_t>(ix)) * c + ch] : 0.0f;
                      const std::size_t row = (b * g.out_h + oy) * g.out_w + ox;
                      bad += cols[row * patch + (ky * k + kx) * c + ch] != want;
                    }
          CHECK_MESSAGE(bad == 0, "k " << k << " c " << c << " stride " << stride << " " << to_string(p));
          std::vector<float> r(cols.size()), back(x.size());
          for (float& v : r) v = d(e);
          detail::col2im(r.data(), n, g, back.data());
          double lhs = 0.0, rhs = 0.0;
          for (std::size_t i = 0; i < cols.size(); ++i) lhs += static_cast<double>(cols[i]) * r[i];
          for (std::size_t i = 0; i < x.size(); ++i) rhs += static_cast<double>(x[i]) * back[i];
          CHECK(std::abs(lhs - rhs) <= 1e-4 * (1.0 + std::abs(lhs)));
          ++cases;
        }
  CHECK(cases > 100);
}
