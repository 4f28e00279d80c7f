// Inference-mode forward passes: conv2d reads its windows through an indirection buffer instead of
// an im2col matrix, conv2d and dense add the bias (and a following ReLU that sequential fuses into
// them) in the GEMM's store. All of it must give the training-mode forward's values bit for bit,
// on the built-in kernel (1 and 2 threads) and on the BLAS fallback. Activation quantizers and
// straight-through masks split among threads must give the serial values.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/nn/activations.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/pooling.hpp"
#include "qnas/nn/sequential.hpp"

using namespace qnas;
using namespace qnas::nn;

namespace {

xt::xarray<float> random_batch(std::size_t n, tensor_shape s, std::mt19937_64& e) {
  xt::xarray<float> x = xt::zeros<float>(nn::detail::batch_shape(n, s));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : x) v = u(e);
  return x;
}

void randomize(weighted_layer& l, std::mt19937_64& e) {
  l.initialize(e);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (float& v : l.bias().value) v = u(e);
}

xt::xarray<float> relu_of(xt::xarray<float> y) {
  for (float& v : y) v = v > 0.0f ? v : 0.0f;  // relu_layer's rule (a -0 becomes +0)
  return y;
}

/// Runs `check` with the built-in kernel on 1 and 2 threads and with every GEMM on the BLAS.
template <class Check>
void on_every_path(Check&& check) {
  const int threads = blas_threads();
  for (int t : {1, 2}) {
    set_blas_threads(t);
    INFO("built-in kernel ", to_string(builtin_gemm_isa()), ", ", t, " thread(s)");
    check();
  }
  set_blas_threads(threads);
  set_builtin_gemm(false);
  {
    INFO("BLAS only");
    check();
  }
  set_builtin_gemm(true);
}

}  // namespace

TEST_CASE("conv2d in inference equals its training forward bit for bit, with and without a fused ReLU") {
  struct geometry {
    tensor_shape in;
    std::size_t kernel, stride;
    padding pad;
    std::size_t filters;
  };
  const geometry cases[] = {
      {image(28, 28, 1), 3, 2, padding::same, 16}, {image(14, 14, 16), 3, 2, padding::same, 32},
      {image(7, 7, 32), 3, 2, padding::same, 64},  {image(9, 8, 3), 5, 1, padding::same, 70},
      {image(9, 8, 3), 3, 1, padding::valid, 5},   {image(10, 10, 2), 4, 3, padding::same, 17},
      {image(6, 6, 8), 1, 1, padding::same, 12},   {image(6, 6, 8), 1, 2, padding::valid, 12},
      {image(12, 12, 50), 3, 1, padding::same, 9},  // k = 450: two reduction slices
  };
  std::mt19937_64 e(21);
  for (const auto& c : cases) {
    conv2d_layer conv(c.in, c.filters, c.kernel, c.stride, c.pad);
    randomize(conv, e);
    INFO("input ", to_string(c.in), ", ", c.filters, " filters ", c.kernel, "x", c.kernel, "/", c.stride, " ",
         to_string(c.pad));
    const xt::xarray<float> x = random_batch(5, c.in, e);
    set_builtin_gemm(false);
    const xt::xarray<float> want = conv.forward(x, true);  // im2col + BLAS, as training runs it
    set_builtin_gemm(true);
    const xt::xarray<float> want_builtin = conv.forward(x, true);
    on_every_path([&] {
      const xt::xarray<float>& reference = builtin_gemm_enabled() && builtin_gemm_isa() != gemm_isa::none ? want_builtin : want;
      CHECK(conv.forward(x, false) == reference);
      CHECK(conv.forward_relu(x) == relu_of(reference));
      CHECK(conv.forward(x, false) == reference);  // the fused ReLU was for one call only
    });
  }
}

TEST_CASE("conv2d inference keeps up with new inputs of the same batch size (its indirection buffer is reused)") {
  std::mt19937_64 e(22);
  for (padding pad : {padding::same, padding::valid}) {
    conv2d_layer conv(image(8, 8, 4), 6, 3, 1, pad);
    randomize(conv, e);
    xt::xarray<float> a = random_batch(3, image(8, 8, 4), e), b = random_batch(3, image(8, 8, 4), e);
    const xt::xarray<float> ya = conv.forward(a, true), yb = conv.forward(b, true);
    CHECK(conv.forward(a, false) == ya);
    CHECK(conv.forward(b, false) == yb);  // another buffer
    a = b;                                // the same buffer, new contents
    CHECK(conv.forward(a, false) == yb);
    const xt::xarray<float> c = random_batch(2, image(8, 8, 4), e);  // another batch size
    CHECK(conv.forward(c, false) == xt::xarray<float>(conv.forward(c, true)));
  }
}

TEST_CASE("dense in inference, with a fused ReLU, equals its training forward") {
  std::mt19937_64 e(23);
  dense_layer d(flat(300), 70);
  randomize(d, e);
  const xt::xarray<float> x = random_batch(9, flat(300), e);
  on_every_path([&] {
    const xt::xarray<float> want = d.forward(x, true);
    CHECK(d.forward(x, false) == want);
    CHECK(d.forward_relu(x) == relu_of(want));
  });
}

TEST_CASE("sequential fuses conv2d/dense + ReLU in inference only, and leaves quantized ReLUs alone") {
  std::mt19937_64 e(24);
  sequential net(image(28, 28, 1));
  net.emplace<conv2d_layer>(8, 3, 2);
  net.emplace<relu_layer>();
  net.emplace<conv2d_layer>(16, 3, 2);
  auto& quantized_relu = net.emplace<relu_layer>();
  quantized_relu.set_output_quantizer(quantizer::of<fixed_relu<4, 2>>());
  net.emplace<conv2d_layer>(16, 3, 1, padding::valid);
  net.emplace<relu_layer>();
  net.emplace<pool_layer>(pool_layer::mode::max, 2, 2);
  net.emplace<flatten_layer>();
  net.emplace<dense_layer>(20);
  net.emplace<relu_layer>();
  net.emplace<dense_layer>(10);
  std::mt19937_64 init(3);
  net.initialize(init);
  for (layer* l : net.children())
    if (auto* w = dynamic_cast<weighted_layer*>(l)) randomize(*w, e);
  const xt::xarray<float> x = random_batch(6, image(28, 28, 1), e);
  CHECK(net[0].fuses_relu());
  CHECK(net[1].is_plain_relu());
  CHECK_FALSE(net[3].is_plain_relu());  // its output quantizer must still run
  CHECK_FALSE(net[7].fuses_relu());
  on_every_path([&] {
    const xt::xarray<float> want = net.forward(x, true);
    CHECK(net.forward(x, false) == want);
    net.set_memory_saving(true);
    CHECK(net.forward(x, false) == want);
    net.set_memory_saving(false);
  });
}

TEST_CASE("forward_relu refuses a layer that cannot apply the ReLU itself") {
  relu_layer r(flat(4));
  xt::xarray<float> x = xt::zeros<float>({std::size_t{1}, std::size_t{4}});
  CHECK_THROWS_AS(r.forward_relu(x), qnas::invalid_argument);
  dense_layer d(flat(4), 3, layer_formats{{}, {}, quantizer::of<fixed_point<8, 1>>()});
  CHECK_FALSE(d.fuses_relu());  // an output quantizer comes after the ReLU would
  CHECK_THROWS_AS(d.forward_relu(x), qnas::invalid_argument);
}

TEST_CASE("activation quantizers and straight-through masks split among threads give the serial values") {
  // A [64, 14, 14, 16] activation (the reference CNN's first output): large enough to be split.
  std::mt19937_64 e(25);
  xt::xarray<float> x = random_batch(64, image(14, 14, 16), e);
  for (float& v : x) v *= 5.0f;
  const xt::xarray<float> g = random_batch(64, image(14, 14, 16), e);
  for (const quantizer& q : {quantizer::of<fixed_relu<8, 3>>(), quantizer::of<fixed_point<4, 1>>(),
                             quantizer::of<bfp<4, 16>>()}) {
    INFO(q.name());
    const int threads = blas_threads();
    set_blas_threads(1);
    xt::xarray<float> serial, serial_mask = xt::zeros<float>(x.shape());
    nn::detail::quantize_into(q, x, serial, nullptr);
    nn::detail::ste_mask(q.info(), x.data(), g.data(), serial_mask.data(), x.size());
    set_blas_threads(2);
    xt::xarray<float> split, split_mask = xt::zeros<float>(x.shape());
    nn::detail::quantize_into(q, x, split, nullptr);
    nn::detail::ste_mask(q.info(), x.data(), g.data(), split_mask.data(), x.size());
    set_blas_threads(threads);
    CHECK(split == serial);
    CHECK(split_mask == serial_mask);
  }
}
