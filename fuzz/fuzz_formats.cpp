// libFuzzer target: every built-in format's quantize/encode/decode on arbitrary floats.
//
// Input: byte 0 selects the format, byte 1 the layout (rank, blocking axis, value mode), the rest
// are the values. In raw mode every 4 bytes are one float (any bit pattern: NaN payloads,
// infinities, subnormals); in special mode each byte picks a value from a table of corner cases
// (so the fuzzer reaches them without guessing 32-bit patterns). Checked, aborting on a mismatch:
//   * decode(encode(x)) == quantize(x) bit for bit (NaN == NaN; -0 != +0), and the packed sizes;
//   * quantize(quantize(x)) == quantize(x) bit for bit;
//   * encode(x) throws qnas::invalid_argument exactly when x holds NaN and F has no NaN code;
//   * for scalar formats, every finite in-range decoded code re-encodes to the same value.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/bfp_nonuniform.hpp"
#include "qnas/formats/bfp_outlier.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/formats/ops.hpp"

#include <xtensor/xadapt.hpp>

// po2, ternary and binary01 take double template parameters (P1907); clang 14, the libFuzzer
// compiler Debian 12 ships, does not implement them. Those formats are fuzzed by the same checks
// through random_driver.cpp built with GCC (fuzz_formats_random).
#if defined(__cpp_nontype_template_args) && __cpp_nontype_template_args >= 201911L
#define QNAS_FUZZ_FLOAT_NTTP 1
#include "qnas/formats/binary.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/ternary.hpp"
#else
#define QNAS_FUZZ_FLOAT_NTTP 0
#endif

namespace {

using namespace qnas;

[[noreturn]] void fail(const char* format, const char* what, std::size_t at, float a, float b) {
  std::uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  std::fprintf(stderr, "fuzz_formats: %s: %s at element %zu: %a (0x%08x) vs %a (0x%08x)\n", format, what, at,
               static_cast<double>(a), ua, static_cast<double>(b), ub);
  std::abort();
}

bool same_bits(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  std::uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  return ua == ub;
}

float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// Corner values reached in special mode: byte & 31 picks the entry, bit 5 flips the sign, bits
/// 6-7 scale by 2^-1, 2^1 or 2^8 (so values straddle format limits and block scales).
float special(std::uint8_t b, double max_value) {
  static const float table[32] = {
      0.0f, 1.0f, 0.5f, 0.75f, 1.5f, 3.0f, 0.1f, 1e-3f,
      std::numeric_limits<float>::denorm_min(), from_bits(0x007fffff), std::numeric_limits<float>::min(),
      std::numeric_limits<float>::max(), std::numeric_limits<float>::infinity(),
      std::numeric_limits<float>::quiet_NaN(), from_bits(0x7f800001), 65504.0f,
      448.0f, 57344.0f, 6.0f, 7.5f, 0.0625f, 0x1p-126f, 0x1p-149f, 0x1p127f,
      1.0f + 0x1p-23f, 1.0f - 0x1p-24f, 0.25f + 0x1p-10f, 1e30f, 1e-30f, 2.5f, 3.5f, 0.0f};
  float v = (b & 31) == 31 ? static_cast<float>(max_value) : table[b & 31];
  if (b & 32) v = -v;
  switch (b >> 6) {
    case 1: v *= 0.5f; break;
    case 2: v *= 2.0f; break;
    case 3: v *= 256.0f; break;
    default: break;
  }
  return v;
}

template <number_format F>
void check(const std::uint8_t* data, std::size_t size, std::uint8_t layout) {
  static const std::string full = F::name();
  const char* name = full.c_str();
  std::vector<float> v;
  if (layout & 0x80) {
    for (std::size_t i = 0; i < size; ++i) v.push_back(special(data[i], F::max_value));
  } else {
    for (std::size_t i = 0; i + 4 <= size; i += 4) {
      float f;
      std::memcpy(&f, data + i, 4);
      v.push_back(f);
    }
  }
  if (v.empty()) return;
  // Layout: rank 1, or rank 2 [rows, cols] blocked along axis 0 (the gather/scatter path) or 1.
  std::vector<std::size_t> shape{v.size()};
  std::ptrdiff_t axis = last_axis;
  const std::size_t rows = 1 + (layout & 3);
  if ((layout & 0x0c) && v.size() % rows == 0) {
    shape = {rows, v.size() / rows};
    axis = (layout & 0x04) ? 0 : 1;
  }
  const auto x = xt::adapt(v, shape);

  const auto q = quantize<F>(x, axis);
  const auto qq = quantize<F>(q, axis);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!same_bits(q.data()[i], qq.data()[i])) {
      fail(name, "q(q(x)) != q(x)", i, qq.data()[i], q.data()[i]);
    }
  bool has_nan_input = false;
  for (float f : v) has_nan_input |= std::isnan(f);
  encoded<F> e;
  try {
    e = encode<F>(x, axis);
  } catch (const qnas::invalid_argument&) {
    if (has_nan_input && !F::has_nan) return;  // documented refusal
    fail(name, "encode threw for an input without NaN", 0, 0, 0);
  }
  if (has_nan_input && !F::has_nan) fail(name, "encode accepted NaN though the format has no NaN code", 0, 0, 0);
  const std::size_t blocks = [&] {
    if (F::block_size == 1) return std::size_t{0};
    const std::size_t len = shape.size() == 1 ? shape[0] : shape[axis == 0 ? 0 : 1];
    const std::size_t others = v.size() / len;
    return others * ((len + F::block_size - 1) / F::block_size);
  }();
  if (e.codes.size() != (v.size() * F::bits + 7) / 8) fail(name, "packed code bytes", e.codes.size(), 0, 0);
  if (e.headers.size() != (blocks * F::scale_bits + 7) / 8) fail(name, "packed header bytes", e.headers.size(), 0, 0);
  const auto d = decode(e);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!same_bits(d.data()[i], q.data()[i])) {
      fail(name, "decode(encode(x)) != q(x)", i, d.data()[i], q.data()[i]);
    }

  if constexpr (scalar_format<F>) {
    // The input bytes as codes: any code decodes; one in range re-encodes to its own value.
    nearest_even round;
    for (std::size_t i = 0; i + 4 <= size; i += 4) {
      std::uint32_t c;
      std::memcpy(&c, data + i, 4);
      if constexpr (F::bits < 32) c &= (1u << F::bits) - 1u;
      const float y = F::decode_one(c);
      if (std::isnan(y) || y < F::min_value || y > F::max_value) continue;
      const float y2 = F::decode_one(F::encode_one(y, round));
      if (!same_bits(y, y2)) fail(name, "decode(encode(decode(c))) != decode(c)", i / 4, y2, y);
    }
  }
}

using check_fn = void (*)(const std::uint8_t*, std::size_t, std::uint8_t);
constexpr check_fn formats[] = {
    &check<int8>,
    &check<int4>,
    &check<uint8>,
    &check<fixed_point<12, 4, true, true, nearest_away>>,
    &check<fixed_point<6, -2, true, false, toward_zero>>,
    &check<fp32>,
    &check<fp16>,
    &check<bf16>,
    &check<fp8_e4m3>,
    &check<fp8_e5m2>,
    &check<fp6_e3m2>,
    &check<fp6_e2m3>,
    &check<fp4_e2m1>,
    &check<minifloat<4, 3, specials_ieee, to_inf, flush_subnormals>>,
    &check<minifloat<3, 4, specials_ieee, to_nan, toward_zero>>,
    &check<mxfp8_e4m3>,
    &check<mxfp8_e5m2>,
    &check<mxfp6_e3m2>,
    &check<mxfp6_e2m3>,
    &check<mxfp4>,
    &check<mxint8>,
    &check<mx<fp8_e4m3, 8, scale_fit>>,
    &check<msfp12>,
    &check<msfp16>,
    &check<bfp<5, 4, 6, nearest_away, scale_fit>>,
    &check<bfp_outlier<4, 16, 1, 4>>,
    &check<bfp_outlier<3, 32, 3, 5, 6, nearest_away>>,
    &check<bfp_nonuniform<4, 16>>,
    &check<bfp_nonuniform<4, 16, uniform_levels<4>, 5>>,
#if QNAS_FUZZ_FLOAT_NTTP
    &check<po2<4>>,
    &check<po2<6, 4.0, log2_nearest, false>>,
    &check<ternary<>>,
    &check<ternary<-2, 0.125>>,
    &check<binary<>>,
    &check<binary<3>>,
    &check<binary01<>>,
    &check<binary01<-1, 0.25>>,
#endif
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  constexpr std::size_t n = sizeof(formats) / sizeof(formats[0]);
  formats[data[0] % n](data + 2, size - 2, data[1]);
  return 0;
}
