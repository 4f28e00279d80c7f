// Example 2: a user-defined number format, used exactly like the built-in ones.
//
// `log3` is a 3-bit logarithmic format: sign plus three magnitude levels {1/4, 1/2, 1} and
// zero, i.e. values {0, +-0.25, +-0.5, +-1}. Rounding to the nearest level is done in the
// linear domain (ties toward the larger magnitude, documented below). The program checks the
// format against the conformance kit, quantizes a tensor, round-trips it through packed codes,
// and uses it as a run-time quantizer. It exits non-zero if any claim fails.
#include <qnas/qnas.hpp>
#include <qnas/testing/check_format.hpp>

#include <cstdio>
#include <algorithm>
#include <sstream>
#include <string>

#include "search_cli.hpp"

struct log3 {
  // --- traits (see qnas/formats/concept.hpp for the minimal complete definition) ---------
  using rounding = qnas::nearest_even;  // only nearest rounding is offered by this format
  static constexpr qnas::format_family family = qnas::format_family::po2;
  static constexpr qnas::bit_tuple tuple{1, 2, 0};  // sign + 2 exponent bits (e-quant)
  static constexpr int bits = 3;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = 1.0;
  static constexpr double min_value = -1.0;
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;
  static std::string name() { return "log3"; }

  // --- operations ---------------------------------------------------------------------
  // Code layout: bit 2 = sign, bits 1..0 = level (0 = zero, 1 = 1/4, 2 = 1/2, 3 = 1).
  // Decision boundaries are the midpoints 1/8, 3/8, 3/4; a tie goes to the larger level.
  template <class R>
  static std::uint32_t encode_one(float x, R&) noexcept {
    const float a = x < 0 ? -x : x;
    const std::uint32_t level = a >= 0.75f ? 3u : a >= 0.375f ? 2u : a >= 0.125f ? 1u : 0u;
    return level == 0 ? 0u : ((x < 0 ? 4u : 0u) | level);
  }
  static float decode_one(std::uint32_t code) noexcept {
    static constexpr float mag[4] = {0.0f, 0.25f, 0.5f, 1.0f};
    const float m = mag[code & 3u];
    return (code & 4u) && m != 0.0f ? -m : m;  // code 4 ("-0") is zero too: one zero, +0, as encode writes
  }
  template <class R>
  static float quantize_one(float x, R& r) noexcept {
    if (x != x) return x;  // NaN propagates through fake quantization
    return decode_one(encode_one(x, r));
  }
};

static_assert(qnas::number_format<log3>, "log3 must model qnas::number_format");

namespace {

int run() {
  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    std::printf("%-58s %s\n", what, ok ? "ok" : "FAILED");
    failures += ok ? 0 : 1;
  };

  const auto report = qnas::testing::check_format<log3>();
  std::printf("%s\n", [&] { std::ostringstream os; os << report; return os.str(); }().c_str());
  expect(static_cast<bool>(report), "log3 obeys the number_format laws");

  const auto vals = qnas::values<log3>();
  expect(vals.size() == 7 && vals.front() == -1.0f && vals.back() == 1.0f, "values<log3>() lists 7 values in [-1, 1]");

  xt::xarray<float> w = {0.9f, -0.3f, 0.05f, 0.6f, -2.0f, 0.375f};
  const auto q = qnas::quantize<log3>(w);
  const xt::xarray<float> expected = {1.0f, -0.25f, 0.0f, 0.5f, -1.0f, 0.5f};
  expect(q == expected, "quantize<log3> gives the hand-derived values");

  const auto e = qnas::encode<log3>(w);
  expect(e.codes.size() == 3 && qnas::decode(e) == q, "6 codes pack into 3 bytes and decode to quantize()");

  const auto rq = qnas::quantizer::of<log3>();
  std::vector<float> out(w.size());
  const std::size_t shape[] = {w.size()};
  rq(std::span<const float>(w.data(), w.size()), out, shape);
  expect(std::equal(out.begin(), out.end(), q.begin()), "as a run-time quantizer it gives the same values");
  std::printf("%s: %.1f bits per element\n", rq.name().c_str(), rq.info().amortized_bits());
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("02_custom_format", [&] {
    // No options: anything on the command line is a mistake, not something to ignore.
    qnas::examples::parse_cli(argc, argv, {"02_custom_format", "02_custom_format"}, {});
    return run();
  });
}
