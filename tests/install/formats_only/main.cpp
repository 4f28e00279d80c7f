// Consumer of the installed qnas package that links qnas::formats only: quantizes and packs a
// block in MSFP12 (block floating point, 4-bit sign-magnitude mantissas, one 8-bit exponent per
// 16 values) and checks the values against a hand derivation.
#include <qnas/formats.hpp>

#include <cstdio>
#include <exception>

int main() try {
  static_assert(qnas::amortized_bits_v<qnas::msfp12> == 4.5, "4 bits + an 8-bit exponent per 16");
  // max |x| = 1.9: shared exponent floor(log2 1.9) = 0, so the step is 2^(0 - 2) = 0.25 and
  // the magnitudes are k * 0.25 for k in [0, 7]; 1.9 rounds to k = 8 and saturates to 7.
  xt::xarray<float> x = {1.0f, 0.3f, -0.6f, 0.2f, 1.9f};
  const xt::xarray<float> want = {1.0f, 0.25f, -0.5f, 0.25f, 1.75f};
  auto q = qnas::quantize<qnas::msfp12>(x);
  auto e = qnas::encode<qnas::msfp12>(x);
  auto d = qnas::decode(e);
  bool ok = q.shape() == want.shape() && d.shape() == want.shape();
  for (std::size_t i = 0; ok && i < want.size(); ++i) {
    if (q(i) != want(i) || d(i) != want(i)) {
      std::printf("element %zu: quantize %g, decode %g, expected %g\n", i, q(i), d(i), want(i));
      ok = false;
    }
  }
  // 5 codes of 4 bits in 3 bytes, one 8-bit shared exponent.
  if (ok && (e.codes.size() != 3 || e.headers.size() != 1)) {
    std::printf("packed sizes: %zu code bytes, %zu header bytes; expected 3 and 1\n", e.codes.size(),
                e.headers.size());
    ok = false;
  }
  std::printf("qnas formats-only consumer: %s\n", ok ? "ok" : "WRONG VALUES");
  return ok ? 0 : 1;
} catch (const std::exception& ex) {
  std::printf("qnas formats-only consumer: %s\n", ex.what());
  return 1;
}
