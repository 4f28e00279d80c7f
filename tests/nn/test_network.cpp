// network<...>: compile-time shapes and counts, summary, run-time shape errors, and forward
// results against hand-written references (convolution padding, quantizers, batch-norm folding).
#include <doctest/doctest.h>

#include <sstream>

#include "gradcheck.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/nn.hpp"

using namespace qnas;
using namespace qnas::nn;
using qnas::nn::testing::random_batch;

using reference_cnn = network<input<28, 28, 1>, conv2d<16, 3, 2>, relu, conv2d<32, 3, 2>, relu, conv2d<64, 3, 2>,
                              relu, flatten, dense<10>>;
// Hand counts: conv 3*3*1*16+16 = 160, 3*3*16*32+32 = 4640, 3*3*32*64+64 = 18496, dense
// 1024*10+10 = 10250. MACs: 14*14*9*16 = 28224, 7*7*144*32 = 225792, 4*4*288*64 = 294912, 10240.
static_assert(reference_cnn::param_count == 160 + 4640 + 18496 + 10250);
static_assert(reference_cnn::mac_count == 28224 + 225792 + 294912 + 10240);
static_assert(reference_cnn::output_shape == flat(10));
static_assert(reference_cnn::shapes[1] == image(14, 14, 16));
static_assert(reference_cnn::shapes[5] == image(4, 4, 64));

// repeat<> splices copies; residual<> keeps the shape; valid pooling floors.
using deep = network<input<8, 8, 4>, repeat<3, residual<conv2d<4, 3>, relu>>, max_pool<2>, global_avg_pool, dense<3>>;
static_assert(deep::layer_count == 6);
static_assert(deep::shapes[4] == image(4, 4, 4));
static_assert(deep::param_count == 3 * (3 * 3 * 4 * 4 + 4) + 4 * 3 + 3);
static_assert(network<input<5>, dense<4>, relu6, dense<2>, softmax>::param_count == 5 * 4 + 4 + 4 * 2 + 2);
static_assert(network<input<7, 7, 2>, conv2d<3, 3, 2, padding::valid>>::output_shape == image(3, 3, 3));
static_assert(network<input<7, 7, 2>, depthwise_conv2d<3, 2>, avg_pool<2, 1>>::output_shape == image(3, 3, 2));

TEST_CASE("network builds the run-time layers with the compile-time shapes") {
  reference_cnn net(5);
  auto& seq = net.layers();
  REQUIRE(seq.size() == reference_cnn::layer_count);
  for (std::size_t i = 0; i < seq.size(); ++i) CHECK(seq[i].output_shape() == reference_cnn::shapes[i + 1]);
  std::size_t params = 0;
  for (auto* p : net.parameters()) params += p->value.size();
  CHECK(params == reference_cnn::param_count);
  CHECK(seq.describe().macs == reference_cnn::mac_count);
  std::ostringstream os;
  os << net;
  CHECK(os.str().find("conv2d 16 3x3/2 same") != std::string::npos);
  CHECK(os.str().find("total params 33546") != std::string::npos);
  std::mt19937_64 e(1);
  const auto x = random_batch({3, 28, 28, 1}, e, 0.0f, 1.0f);
  const auto& y = net.forward(x);
  CHECK(y.shape()[0] == 3);
  CHECK(y.shape()[1] == 10);
}

TEST_CASE("run-time shape errors throw invalid_argument naming the layer") {
  sequential s(image(8, 8, 3));
  s.emplace<conv2d_layer>(4, 3, 1);
  CHECK_THROWS_AS(s.emplace<dense_layer>(10), qnas::invalid_argument);  // image into dense
  CHECK_THROWS_AS(s.emplace<conv2d_layer>(4, 9, 1, padding::valid), qnas::invalid_argument);  // kernel > input
  CHECK_THROWS_AS(s.add(std::make_unique<relu_layer>(image(4, 4, 4))), qnas::invalid_argument);
  xt::xarray<float> wrong = xt::zeros<float>({2, 8, 8, 2});
  try {
    s.forward(wrong, false);
    FAIL("forward accepted a wrong batch shape");
  } catch (const qnas::invalid_argument& e) {
    CHECK(std::string(e.what()).find("conv2d") != std::string::npos);
  }
}

/// Direct NHWC/HWIO convolution in double with TensorFlow "same" padding, for reference.
static xt::xarray<float> naive_conv(const xt::xarray<float>& x, const xt::xarray<float>& w, const xt::xarray<float>& b,
                                    std::size_t stride, padding p) {
  const std::size_t n = x.shape()[0], h = x.shape()[1], wd = x.shape()[2], c = x.shape()[3];
  const std::size_t k = w.shape()[0], f = w.shape()[3];
  const std::size_t oh = conv_output_size(h, k, stride, p), ow = conv_output_size(wd, k, stride, p);
  const std::size_t pt = conv_pad_before(h, k, stride, p), pl = conv_pad_before(wd, k, stride, p);
  xt::xarray<float> y = xt::zeros<float>({n, oh, ow, f});
  for (std::size_t bi = 0; bi < n; ++bi)
    for (std::size_t oy = 0; oy < oh; ++oy)
      for (std::size_t ox = 0; ox < ow; ++ox)
        for (std::size_t o = 0; o < f; ++o) {
          double s = b(o);
          for (std::size_t ky = 0; ky < k; ++ky)
            for (std::size_t kx = 0; kx < k; ++kx) {
              const long iy = static_cast<long>(oy * stride + ky) - static_cast<long>(pt);
              const long ix = static_cast<long>(ox * stride + kx) - static_cast<long>(pl);
              if (iy < 0 || ix < 0 || iy >= static_cast<long>(h) || ix >= static_cast<long>(wd)) continue;
              for (std::size_t ci = 0; ci < c; ++ci)
                s += static_cast<double>(x(bi, iy, ix, ci)) * w(ky, kx, ci, o);
            }
          y(bi, oy, ox, o) = static_cast<float>(s);
        }
  return y;
}

TEST_CASE("conv2d forward equals a direct convolution (TensorFlow same padding)") {
  // Hand-derived: 28 -> 14 with k3/s2 pads 1 in total, all of it at the bottom/right.
  CHECK(conv_pad_before(28, 3, 2, padding::same) == 0);
  CHECK(conv_pad_before(7, 3, 2, padding::same) == 1);
  CHECK(conv_output_size(7, 3, 2, padding::same) == 4);
  std::mt19937_64 e(9);
  for (auto [h, k, s, p] : {std::tuple{7ul, 3ul, 2ul, padding::same}, std::tuple{8ul, 3ul, 2ul, padding::same},
                            std::tuple{6ul, 5ul, 1ul, padding::same}, std::tuple{9ul, 3ul, 2ul, padding::valid},
                            std::tuple{5ul, 1ul, 1ul, padding::same}}) {
    conv2d_layer l(image(h, h + 1, 3), 4, k, s, p);
    l.initialize(e);
    for (auto& v : l.bias().value) v = 0.25f;
    const auto x = random_batch({2, h, h + 1, 3}, e);
    const auto& y = l.forward(x, false);
    const auto ref = naive_conv(x, l.weights().value, l.bias().value, s, p);
    REQUIRE(y.shape() == ref.shape());
    CHECK(xt::allclose(y, ref, 1e-5, 1e-5));
  }
  // A golden value by hand: 3x3 input 1..9, one 2x2 kernel of ones, valid, stride 1:
  // outputs 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28.
  conv2d_layer g(image(3, 3, 1), 1, 2, 1, padding::valid, {}, false);
  std::fill(g.weights().value.begin(), g.weights().value.end(), 1.0f);
  xt::xarray<float> x = xt::zeros<float>({1, 3, 3, 1});
  for (std::size_t i = 0; i < 9; ++i) x.data()[i] = static_cast<float>(i + 1);
  const auto& y = g.forward(x, false);
  CHECK(y.data()[0] == 12.0f);
  CHECK(y.data()[1] == 16.0f);
  CHECK(y.data()[2] == 24.0f);
  CHECK(y.data()[3] == 28.0f);
}

TEST_CASE("quantized weights: forward uses q(w); the clipped straight-through gradient") {
  using F = fixed_point<4, 1>;  // step 1/4, range [-2, 1.75], round half to even
  std::mt19937_64 e(4);
  dense_layer q(flat(3), 2, {quantizer::of<F>(), {}, {}}, false);
  dense_layer f(flat(3), 2, {}, false);
  // 0.3 -> 0.25, -0.6 -> -0.5 (tie at -0.625? no: -0.6/0.25 = -2.4 -> -2), 1.0 -> 1.0,
  // 5.0 -> clipped 1.75 (outside range: zero gradient), -0.125 -> tie -0.5 steps -> 0 (even), 0.9 -> 1.0
  const float w[6] = {0.3f, -0.6f, 1.0f, 5.0f, -0.125f, 0.9f};
  const float wq[6] = {0.25f, -0.5f, 1.0f, 1.75f, 0.0f, 1.0f};
  std::copy(w, w + 6, q.weights().value.begin());
  std::copy(wq, wq + 6, f.weights().value.begin());
  const auto x = random_batch({4, 3}, e);
  const xt::xarray<float> yq = q.forward(x, true);
  const xt::xarray<float> yf = f.forward(x, true);
  CHECK(yq == yf);
  const auto dy = random_batch({4, 2}, e);
  q.backward(dy, true);
  f.backward(dy, true);
  for (std::size_t i = 0; i < 6; ++i) {
    if (i == 3)
      CHECK(q.weights().grad.data()[i] == 0.0f);
    else
      CHECK(q.weights().grad.data()[i] == doctest::Approx(f.weights().grad.data()[i]));
  }
}

TEST_CASE("quantized activations: values on the grid, gradient masked where clipped") {
  using A = fixed_relu<4, 2>;  // step 1/4, range [0, 3.75]
  relu_layer r(flat(4));
  r.set_output_quantizer(quantizer::of<A>());
  xt::xarray<float> x = {{-1.0f, 0.3f, 2.0f, 9.0f}};
  const xt::xarray<float> y = r.forward(x, true);
  // relu -> {0, 0.3, 2, 9}; quantized -> {0, 0.25, 2, 3.75 (saturated)}
  CHECK(y(0, 0) == 0.0f);
  CHECK(y(0, 1) == 0.25f);
  CHECK(y(0, 2) == 2.0f);
  CHECK(y(0, 3) == 3.75f);
  xt::xarray<float> dy = {{1.0f, 1.0f, 1.0f, 1.0f}};
  const auto& dx = r.backward(dy, true);
  // relu passes x > 0; the STE passes relu outputs inside [0, 3.75]: {0 (relu), 1, 1, 0 (clipped)}
  CHECK(dx(0, 0) == 0.0f);
  CHECK(dx(0, 1) == 1.0f);
  CHECK(dx(0, 2) == 1.0f);
  CHECK(dx(0, 3) == 0.0f);
}

TEST_CASE("batch-norm folding keeps inference outputs") {
  std::mt19937_64 e(12);
  sequential s(image(6, 6, 3));
  s.emplace<conv2d_layer>(5, 3, 2, padding::same, layer_formats{}, false);
  s.emplace<batch_norm_layer>();
  s.emplace<relu_layer>();
  s.emplace<depthwise_conv2d_layer>(3, 1);
  s.emplace<batch_norm_layer>();
  s.emplace<flatten_layer>();
  s.emplace<dense_layer>(4);
  s.emplace<batch_norm_layer>();
  s.initialize(e);
  // a few training steps move the running statistics and give gamma/beta non-trivial values
  for (int i = 0; i < 5; ++i) {
    const auto b = random_batch({8, 6, 6, 3}, e, -1.0f, 2.0f);
    s.forward(b, true);
  }
  for (auto* p : s.parameters())
    if (p->name.find("batch_norm") != std::string::npos)
      for (auto& v : p->value) v += 0.3f * std::uniform_real_distribution<float>(-1, 1)(e);
  const auto x = random_batch({4, 6, 6, 3}, e);
  const xt::xarray<float> before = s.forward(x, false);
  CHECK(fold_batch_norm(s) == 3);
  CHECK(s.size() == 5);
  const xt::xarray<float> after = s.forward(x, false);
  CHECK(xt::allclose(before, after, 1e-4, 1e-5));
}

using mobile = network<input<16, 16, 3>, conv2d<8, 3, 2>, inverted_bottleneck<1, 3, 8>,
                       inverted_bottleneck<4, 3, 16, false, 2>, repeat<2, inverted_bottleneck<4, 5, 16, true>>,
                       global_avg_pool, dense<5>>;
static_assert(mobile::output_shape == flat(5));
static_assert(mobile::shapes[3] == image(4, 4, 16));

TEST_CASE("inverted_bottleneck: compile-time counts equal the run-time layers'") {
  mobile net(2);
  std::size_t params = 0;
  for (auto* p : net.parameters()) params += p->value.size();
  CHECK(params == mobile::param_count);
  CHECK(net.layers().describe().macs == mobile::mac_count);
  for (std::size_t i = 0; i < net.layers().size(); ++i) CHECK(net.layers()[i].output_shape() == mobile::shapes[i + 1]);
  std::ostringstream os;
  os << net;
  CHECK(os.str().find("squeeze_excite") != std::string::npos);
  std::mt19937_64 e(3);
  const auto x = random_batch({2, 16, 16, 3}, e, 0.0f, 1.0f);
  const xt::xarray<float> train_out = net.forward(x, true);
  CHECK(train_out.shape()[1] == 5);
  CHECK(fold_batch_norm(net.layers()) > 0);
}

// lsq weights add learned steps to each of the block's three convolutions (expand only when
// Expansion > 1); squeeze-excite keeps none. Hand counts, m = hidden channels:
//  <2, 3, 4> on 5x5x4, per channel, m = 8: expand 4*8 + 2*8 + 8 steps = 56, depthwise
//    3*3*8 + 2*8 + 8 steps = 96, project 8*4 + 2*4 + 4 steps = 44; 196 (176 without the steps).
//  <1, 3, 6, se, 2> on 6x6x4, per tensor, m = 4, r = 1: depthwise 3*3*4 + 2*4 + 1 = 45,
//    squeeze-excite 2*4*1 + 1 + 4 = 13, project 4*6 + 2*6 + 1 = 37; 95.
//  <3, 3, 5, no se, 2> on 4x4x2, per tensor, m = 6: expand 2*6 + 2*6 + 1 = 25, depthwise
//    3*3*6 + 2*6 + 1 = 67, project 6*5 + 2*5 + 1 = 41; 133.
using lsq_channel = lsq<fixed_point<4, 0>>;
using lsq_tensor = lsq<fixed_point<3, 0>, per_tensor>;
using ib_lsq_channel = inverted_bottleneck<2, 3, 4, false, 1, lsq_channel>;
using ib_lsq_se = inverted_bottleneck<1, 3, 6, true, 2, lsq_tensor>;
using ib_lsq_tensor = inverted_bottleneck<3, 3, 5, false, 2, lsq_tensor>;
static_assert(ib_lsq_channel::params(image(5, 5, 4)) == 56 + 96 + 44);
static_assert(inverted_bottleneck<2, 3, 4>::params(image(5, 5, 4)) == 176);
static_assert(ib_lsq_se::params(image(6, 6, 4)) == 45 + 13 + 37);
static_assert(ib_lsq_tensor::params(image(4, 4, 2)) == 25 + 67 + 41);

template <class Spec>
void check_block_params(tensor_shape in, std::size_t steps) {
  const auto block = Spec::make(in);
  CHECK(block->describe().params == Spec::params(in));
  std::size_t held = 0, step_values = 0;
  for (auto* p : block->parameters()) {
    held += p->value.size();
    if (p->name.find("weight_step") != std::string::npos) step_values += p->value.size();
  }
  CHECK(held == Spec::params(in));
  CHECK(step_values == steps);
}

TEST_CASE("inverted_bottleneck: params() counts the learned steps of lsq weights as the built block holds them") {
  check_block_params<ib_lsq_channel>(image(5, 5, 4), 8 + 8 + 4);
  check_block_params<ib_lsq_se>(image(6, 6, 4), 2);
  check_block_params<ib_lsq_tensor>(image(4, 4, 2), 3);
}

TEST_CASE("stochastic-rounding formats draw from the network's engine, which survives a move") {
  using S = fixed_point<8, 1, true, false, stochastic>;
  using net_t = network<input<4, 4, 1>, conv2d<2, 3, 1, padding::same, S>, flatten, dense<3, S>>;
  net_t a(7);
  net_t b = std::move(a);  // layers keep pointing at the (heap) engine
  std::mt19937_64 e(1);
  const auto x = random_batch({2, 4, 4, 1}, e);
  const xt::xarray<float> y1 = b.forward(x, true);
  const xt::xarray<float> y2 = b.forward(x, true);
  CHECK(y1.shape()[1] == 3);
  CHECK(y1 != y2);  // fresh stochastic roundings of the weights on each pass
  // A run-time network without an engine reports it instead of crashing.
  sequential s(flat(3));
  s.emplace<dense_layer>(2, layer_formats{quantizer::of<S>(), {}, {}});
  const auto z = random_batch({1, 3}, e);
  CHECK_THROWS_AS(s.forward(z, false), qnas::invalid_argument);
  quantizer::engine_type engine(3);
  s.set_engine(&engine);
  CHECK(s.forward(z, false).size() == 2);
}

TEST_CASE("the BLAS backend is the one qnas was configured with, and its thread count can be set") {
  const std::string core = blas_core();
#if defined(QNAS_BLAS_BLIS)
  CHECK(core.rfind("BLIS ", 0) == 0);
#else
  CHECK(core.rfind("OpenBLAS ", 0) == 0);
#endif
  CHECK(core.find("unknown") == std::string::npos);
  // The advice speaks exactly when OpenBLAS runs its generic kernels on a CPU with AVX2 or better.
#if defined(__x86_64__) && !defined(QNAS_BLAS_BLIS)
  const bool fallback_on_avx2 = core == "OpenBLAS Prescott" && __builtin_cpu_supports("avx2");
  CHECK(blas_advice().empty() == !fallback_on_avx2);
  if (fallback_on_avx2) CHECK(blas_advice().find("OPENBLAS_CORETYPE=") != std::string::npos);
#else
  CHECK(blas_advice().empty());
#endif
  const int before = blas_threads();
  set_blas_threads(1);
  CHECK(blas_threads() == 1);
  set_blas_threads(before);
  CHECK(blas_threads() == before);
}
