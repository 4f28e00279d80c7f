// activation_codec / activation_store: stored-then-loaded activations equal decode(encode<F>) bit
// for bit and the format's quantize up to the sign of zero (every supported format, ragged shapes, blocking axes, with and without the
// lossless stage); packed bytes equal qnas::encode<F>'s; byte accounting; buffer reuse.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/formats/binary.hpp"
#include "qnas/formats/bfp.hpp"
#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/train/activation_store.hpp"

#include <xtensor/xadapt.hpp>

#if __has_include("qnas/formats/bfp_outlier.hpp")
#include "qnas/formats/bfp_outlier.hpp"
#endif
#if __has_include("qnas/formats/bfp_nonuniform.hpp")
#include "qnas/formats/bfp_nonuniform.hpp"
#endif

using namespace qnas;
using namespace qnas::train;

namespace {

struct shape_case {
  std::vector<std::size_t> shape;
  std::ptrdiff_t axis;
};

// Ragged on purpose: sizes that are not multiples of block sizes nor of 8 bits, a single
// element, blocks across a non-last axis (strided blocks).
const std::vector<shape_case> shapes = {
    {{1}, -1}, {{7}, -1}, {{3, 5}, -1}, {{2, 37}, -1}, {{2, 3, 33}, -1}, {{3, 5}, 0}, {{2, 37, 3}, 1}, {{4, 2, 2, 17}, -1}};

/// ReLU-like activations with a spread of magnitudes: about half exact zeros, the rest
/// |normal| scaled per row (so blocks see different shared exponents), a few negatives
/// (pre-activation tensors) and a -0.
std::vector<float> activations(std::size_t n, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float x = normal(g) * std::ldexp(1.0f, static_cast<int>(i % 9) - 4);
    v[i] = u(g) < 0.5f ? 0.0f : (u(g) < 0.8f ? std::fabs(x) : x);
  }
  if (n > 3) v[3] = -0.0f;
  return v;
}

/// Bits of the values with -0 written as +0. Integer codes (two's complement, sign-magnitude
/// with "zero is written with s = 0") have no negative zero, so decode(encode(x)) gives +0
/// where quantize(x) gives -0 (x = -0, or a small negative rounded to zero); the formats'
/// law 3 compares values, under which -0 == +0. Everything else is compared bit for bit.
std::vector<std::uint32_t> value_bits(const float* p, std::size_t n) {
  std::vector<std::uint32_t> b(n);
  std::memcpy(b.data(), p, n * sizeof(float));
  for (auto& v : b)
    if (v == 0x80000000u) v = 0;
  return b;
}

std::vector<std::uint32_t> bits_of(const float* p, std::size_t n) {
  std::vector<std::uint32_t> b(n);
  std::memcpy(b.data(), p, n * sizeof(float));
  return b;
}

const std::vector<lossless_options> stages = {
    lossless_options::off(),
    {true, entropy_coder::none, 1},
    {false, entropy_coder::deflate, 6},
    {true, entropy_coder::run_length, 1},
    {true, entropy_coder::huffman, 1}};

template <class F>
void check_format_bit_exact() {
  CAPTURE(F::name());
  const auto codec = activation_codec::of<F>();
  std::uint32_t seed = 1;
  for (const auto& sc : shapes) {
    CAPTURE(sc.axis);
    CAPTURE(sc.shape.size());
    xt::xarray<float> x = xt::empty<float>(sc.shape);
    const auto data = activations(x.size(), seed++);
    std::copy(data.begin(), data.end(), x.begin());
    const xt::xarray<float> q = qnas::quantize<F>(x, sc.axis);
    const auto e = qnas::encode<F>(x, sc.axis);
    const xt::xarray<float> d = qnas::decode(e);
    REQUIRE(value_bits(d.data(), d.size()) == value_bits(q.data(), q.size()));

    // The codec writes exactly what qnas::encode<F> writes.
    std::vector<std::uint8_t> codes, headers;
    codec.encode(data, sc.shape, sc.axis, codes, headers);
    CHECK(codes == e.codes);
    CHECK(headers == e.headers);

    for (const auto& ll : stages) {
      CAPTURE(to_string(ll));
      activation_store s(codec, ll, sc.axis);
      const std::size_t held = s.store(x);
      CHECK(held == s.bytes().stored);
      CHECK(s.bytes().elements == x.size());
      xt::xarray<float> out;
      s.load(out);
      REQUIRE(out.shape() == q.shape());
      // Exactly what qnas::decode(qnas::encode<F>(x)) gives, and quantize<F>(x) up to the
      // sign of zero (see value_bits).
      CHECK(bits_of(out.data(), out.size()) == bits_of(d.data(), d.size()));
      CHECK(value_bits(out.data(), out.size()) == value_bits(q.data(), q.size()));
      // A second load gives the same values (load does not consume).
      std::vector<float> again(x.size());
      s.load(again);
      CHECK(bits_of(again.data(), again.size()) == bits_of(d.data(), d.size()));
    }
  }
}

}  // namespace

TEST_CASE("scalar formats: store + load == quantize, bit for bit") {
  check_format_bit_exact<fixed_point<8, 2>>();
  check_format_bit_exact<fixed_relu<4, 1>>();
  check_format_bit_exact<po2<5>>();
  check_format_bit_exact<ternary<>>();
  check_format_bit_exact<binary<>>();
  check_format_bit_exact<fp8_e4m3>();
  check_format_bit_exact<bf16>();
  check_format_bit_exact<fp32>();
}

TEST_CASE("block formats: store + load == quantize, bit for bit") {
  check_format_bit_exact<bfp<2, 16>>();
  check_format_bit_exact<msfp12>();
  check_format_bit_exact<bfp<8, 32, 6, nearest_even, scale_fit>>();
  check_format_bit_exact<mxfp4>();
  check_format_bit_exact<mxint8>();
#if __has_include("qnas/formats/bfp_outlier.hpp")
  check_format_bit_exact<bfp_outlier<4, 16, 1, 4>>();
#endif
#if __has_include("qnas/formats/bfp_nonuniform.hpp")
  check_format_bit_exact<bfp_nonuniform<3, 16>>();
#endif
}

TEST_CASE("float32 codec stores the values unchanged") {
  const std::vector<std::size_t> shape{3, 11};
  auto data = activations(33, 5);
  data[7] = std::numeric_limits<float>::quiet_NaN();
  data[8] = -std::numeric_limits<float>::infinity();
  for (const auto& ll : stages) {
    activation_store s(activation_codec::float32(), ll);
    s.store(data, shape);
    std::vector<float> out(33);
    s.load(out);
    CHECK(bits_of(out.data(), 33) == bits_of(data.data(), 33));
    if (!ll.enabled()) CHECK(s.bytes().stored == 33 * 4);
  }
  CHECK(activation_codec::float32().is_float32());
  CHECK(activation_codec::float32().name() == "float32");
}

TEST_CASE("stochastic rounding draws from the caller's engine, as quantize does") {
  using F = fixed_point<6, 1, true, false, stochastic>;
  const std::vector<std::size_t> shape{5, 13};
  const auto data = activations(65, 9);
  xt::xarray<float> x = xt::adapt(data, shape);
  std::mt19937_64 e1(42), e2(42);
  const xt::xarray<float> q = qnas::quantize<F>(x, -1, e1);
  activation_store s(activation_codec::of<F>());
  CHECK(activation_codec::of<F>().needs_engine());
  CHECK_THROWS_AS(s.store(data, shape), qnas::invalid_argument);  // no engine
  s.store(data, shape, &e2);
  std::vector<float> out(65);
  s.load(out);
  CHECK(value_bits(out.data(), 65) == value_bits(q.data(), 65));
}

TEST_CASE("bad input: NaN without a NaN code, size mismatch, load before store") {
  const std::vector<std::size_t> shape{2, 16};
  auto data = activations(32, 3);
  data[19] = std::numeric_limits<float>::quiet_NaN();
  activation_store s(activation_codec::of<msfp12>());
  CHECK_THROWS_WITH_AS(s.store(data, shape), doctest::Contains("element 19 is NaN"), qnas::invalid_argument);
  CHECK(s.empty());
  std::vector<float> out(32);
  CHECK_THROWS_AS(s.load(out), qnas::invalid_argument);
  const std::vector<std::size_t> wrong{3, 16};
  CHECK_THROWS_AS(s.store(data, wrong), qnas::invalid_argument);
  data[19] = 1.0f;
  s.store(data, shape);
  std::vector<float> short_out(31);
  CHECK_THROWS_AS(s.load(short_out), qnas::invalid_argument);
  // Truncated codes handed to the codec directly are an io_error, not an out-of-bounds read.
  std::vector<std::uint8_t> codes, headers;
  const auto c = activation_codec::of<msfp12>();
  c.encode(data, shape, -1, codes, headers);
  codes.pop_back();
  CHECK_THROWS_AS(c.decode(codes, headers, shape, -1, out), qnas::io_error);
}

TEST_CASE("byte accounting: hand-computed sizes") {
  // 4 x 40 values in bfp<4,16> along the last axis: codes 160 * 4 bits = 80 bytes; blocks per
  // row ceil(40 / 16) = 3, so 12 headers * 8 bits = 12 bytes. float32: 640 bytes.
  const std::vector<std::size_t> shape{4, 40};
  const auto data = activations(160, 11);
  activation_store s(activation_codec::of<bfp<4, 16>>());
  CHECK(s.bytes() == activation_bytes{});
  CHECK(s.store(data, shape) == 92);
  CHECK(s.bytes().stored == 92);
  CHECK(s.bytes().float32() == 640);
  CHECK(s.bytes().ratio() == doctest::Approx(640.0 / 92.0));
  CHECK(s.bytes().bits_per_element() == doctest::Approx(92.0 * 8 / 160));
  // fixed_relu<4,1>: 160 * 4 bits = 80 bytes, no headers.
  activation_store f(activation_codec::of<fixed_relu<4, 1>>());
  CHECK(f.store(data, shape) == 80);

  activation_memory m;
  m.add("conv1", s.stored_codec().name(), s.bytes());
  m.add("fc", f.stored_codec().name(), f.bytes());
  CHECK(m.total().stored == 172);
  CHECK(m.total().elements == 320);
  std::ostringstream os;
  os << m;
  CHECK(os.str().find("conv1") != std::string::npos);
  CHECK(os.str().find("bfp<4,16>") != std::string::npos);
  CHECK(os.str().find("7.44x") != std::string::npos);  // 1280 / 172 = 7.4418...
}

TEST_CASE("the lossless stage shrinks ReLU-like activations in the store") {
  const std::vector<std::size_t> shape{64, 256};
  const auto data = activations(64 * 256, 21);
  activation_store plain(activation_codec::of<msfp12>());
  activation_store packed(activation_codec::of<msfp12>(), lossless_options{});
  const std::size_t a = plain.store(data, shape), b = packed.store(data, shape);
  // About half the 4-bit codes are zero: the zero mask alone takes codes to ~1 + 0.5 * 4 = 3
  // bits per element, so well under 90% of the plain size.
  CHECK(static_cast<double>(b) < 0.9 * static_cast<double>(a));
}

TEST_CASE("buffers are reused: no reallocation once warm, format change applies at next store") {
  const std::vector<std::size_t> shape{8, 64};
  const auto data = activations(512, 17);
  auto ws = std::make_shared<compression_workspace>();
  activation_store s(activation_codec::of<bfp<6, 16>>(), lossless_options{});
  s.set_workspace(ws);
  s.store(data, shape);
  std::vector<float> out(512);
  s.load(out);
  const auto* codes_ptr = s.code_data().data();
  const auto* ws_ptr = ws->packed.data();
  const std::size_t cap = s.capacity_bytes();
  for (int step = 0; step < 5; ++step) {
    s.store(data, shape);
    s.load(out);
  }
  CHECK(s.code_data().data() == codes_ptr);
  CHECK(ws->packed.data() == ws_ptr);
  CHECK(s.capacity_bytes() == cap);

  // Narrower format: set_codec takes effect at the next store; what is stored keeps decoding
  // with its own format.
  s.set_codec(activation_codec::of<bfp<2, 16>>());
  CHECK(s.stored_codec().name() == "bfp<6,16>");
  s.load(out);
  const xt::xarray<float> x = xt::adapt(data, shape);
  const xt::xarray<float> q6 = qnas::quantize<bfp<6, 16>>(x);
  CHECK(value_bits(out.data(), 512) == value_bits(q6.data(), 512));
  s.store(data, shape);
  CHECK(s.stored_codec().name() == "bfp<2,16>");
  s.load(out);
  const xt::xarray<float> q2 = qnas::quantize<bfp<2, 16>>(x);
  CHECK(value_bits(out.data(), 512) == value_bits(q2.data(), 512));
  CHECK(s.code_data().data() == codes_ptr);  // a narrower format fits in the same buffer

  s.release();
  CHECK(s.empty());
  CHECK(s.capacity_bytes() == 0);
}

TEST_CASE("corrupt stored bytes are reported as io_error") {
  const std::vector<std::size_t> shape{16, 32};
  const auto data = activations(512, 23);
  activation_store s(activation_codec::of<msfp12>(), lossless_options{});
  s.store(data, shape);
  std::vector<float> out(512);
  auto bytes = s.code_data_mutable();
  bytes[bytes.size() / 2] ^= 0x5A;
  CHECK_THROWS_AS(s.load(out), qnas::io_error);
}

TEST_CASE("empty tensors store and load nothing") {
  const std::vector<std::size_t> shape{0, 16};
  const std::vector<float> none;
  for (const auto& ll : stages) {
    CAPTURE(to_string(ll));
    activation_store s(activation_codec::of<msfp12>(), ll);
    s.store(none, shape);
    CHECK(!s.empty());
    CHECK(s.bytes().elements == 0);
    std::vector<float> out;
    s.load(out);
    xt::xarray<float> x;
    s.load(x);
    CHECK(x.size() == 0);
  }
}
