// Gradient checks: every layer's backward against central finite differences on small tensors.
#include <doctest/doctest.h>

#include "gradcheck.hpp"
#include "qnas/nn.hpp"

using namespace qnas::nn;
using qnas::nn::testing::check_gradients;
using qnas::nn::testing::random_batch;

TEST_CASE("dense") {
  std::mt19937_64 e(1);
  dense_layer l(flat(7), 5);
  l.initialize(e);
  for (auto& v : l.bias().value) v = 0.1f;
  check_gradients(l, random_batch({3, 7}, e), e);
}

TEST_CASE("conv2d: same padding with stride 2 (asymmetric pad), valid, pointwise") {
  std::mt19937_64 e(2);
  SUBCASE("3x3/2 same on 7x6x3") {
    conv2d_layer l(image(7, 6, 3), 4, 3, 2, padding::same);
    l.initialize(e);
    check_gradients(l, random_batch({2, 7, 6, 3}, e), e);
  }
  SUBCASE("3x3/1 valid on 5x5x2") {
    conv2d_layer l(image(5, 5, 2), 3, 3, 1, padding::valid);
    l.initialize(e);
    check_gradients(l, random_batch({2, 5, 5, 2}, e), e);
  }
  SUBCASE("1x1 pointwise") {
    conv2d_layer l(image(4, 3, 5), 6, 1, 1, padding::same);
    l.initialize(e);
    check_gradients(l, random_batch({2, 4, 3, 5}, e), e);
  }
  SUBCASE("5x5/2 same, no bias") {
    conv2d_layer l(image(6, 6, 2), 3, 5, 2, padding::same, {}, false);
    l.initialize(e);
    check_gradients(l, random_batch({2, 6, 6, 2}, e), e);
  }
}

TEST_CASE("depthwise_conv2d") {
  std::mt19937_64 e(3);
  depthwise_conv2d_layer l(image(6, 5, 4), 3, 2, padding::same);
  l.initialize(e);
  check_gradients(l, random_batch({2, 6, 5, 4}, e), e);
  depthwise_conv2d_layer v(image(5, 5, 3), 3, 1, padding::valid);
  v.initialize(e);
  check_gradients(v, random_batch({2, 5, 5, 3}, e), e);
}

/// Inputs whose values are pairwise at least 0.05 apart, so a 5e-3 perturbation never
/// changes which element of a window is the maximum (max pool is not differentiable there).
static xt::xarray<float> distinct_batch(std::vector<std::size_t> shape, std::mt19937_64& e) {
  xt::xarray<float> x = xt::zeros<float>(shape);
  std::vector<float> v(x.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.05f * static_cast<float>(i) - 1.0f;
  std::shuffle(v.begin(), v.end(), e);
  std::copy(v.begin(), v.end(), x.begin());
  return x;
}

TEST_CASE("pools") {
  std::mt19937_64 e(4);
  pool_layer mp(image(5, 5, 2), pool_layer::mode::max, 2, 2, padding::same);
  check_gradients(mp, distinct_batch({2, 5, 5, 2}, e), e);
  pool_layer mv(image(6, 6, 2), pool_layer::mode::max, 3, 2, padding::valid);
  check_gradients(mv, distinct_batch({2, 6, 6, 2}, e), e);
  pool_layer ap(image(5, 5, 3), pool_layer::mode::average, 2, 2, padding::same);
  check_gradients(ap, random_batch({2, 5, 5, 3}, e), e);
  global_avg_pool_layer g(image(3, 4, 5));
  check_gradients(g, random_batch({2, 3, 4, 5}, e), e);
}

TEST_CASE("batch_norm: training statistics and inference statistics") {
  std::mt19937_64 e(5);
  batch_norm_layer bn(image(3, 3, 4));
  for (auto& v : bn.gamma().value) v = 1.5f;
  for (auto& v : bn.beta().value) v = -0.2f;
  check_gradients(bn, random_batch({3, 3, 3, 4}, e, -2.0f, 2.0f), e, true, 2e-3f);
  bn.running_var().assign(4, 0.7f);
  check_gradients(bn, random_batch({3, 3, 3, 4}, e), e, false);
  batch_norm_layer flat_bn(flat(6));
  check_gradients(flat_bn, random_batch({5, 6}, e), e, true, 2e-3f);
}

TEST_CASE("activations") {
  std::mt19937_64 e(6);
  auto away_from_kinks = [&](std::vector<std::size_t> s) {
    // relu/relu6 have kinks at 0 and 6: keep inputs 0.05 away from them.
    auto x = random_batch(s, e, -7.0f, 7.0f);
    for (auto& v : x)
      if (std::abs(v) < 0.05f || std::abs(v - 6.0f) < 0.05f) v += 0.1f;
    return x;
  };
  relu_layer r(image(3, 3, 2));
  check_gradients(r, away_from_kinks({2, 3, 3, 2}), e);
  relu6_layer r6(flat(20));
  check_gradients(r6, away_from_kinks({3, 20}), e);
  swish_layer s(flat(9));
  check_gradients(s, random_batch({2, 9}, e, -4.0f, 4.0f), e);
  sigmoid_layer sg(flat(9));
  check_gradients(sg, random_batch({2, 9}, e, -4.0f, 4.0f), e);
  softmax_layer sm(flat(6));
  check_gradients(sm, random_batch({3, 6}, e, -2.0f, 2.0f), e);
  flatten_layer f(image(2, 3, 2));
  check_gradients(f, random_batch({2, 2, 3, 2}, e), e);
}

TEST_CASE("residual and sequential composition") {
  std::mt19937_64 e(7);
  auto body = std::make_unique<sequential>(image(4, 4, 3));
  body->emplace<conv2d_layer>(5, 3, 1, padding::same);
  body->emplace<swish_layer>();
  body->emplace<conv2d_layer>(3, 1, 1, padding::same);
  residual_layer res(std::move(body));
  res.initialize(e);
  check_gradients(res, random_batch({2, 4, 4, 3}, e), e);

  sequential s(image(6, 6, 2));
  s.emplace<conv2d_layer>(4, 3, 2, padding::same);
  s.emplace<batch_norm_layer>();
  s.emplace<swish_layer>();
  s.emplace<global_avg_pool_layer>();
  s.emplace<dense_layer>(3);
  s.initialize(e);
  check_gradients(s, random_batch({3, 6, 6, 2}, e), e, true, 2e-3f);
}

TEST_CASE("squeeze_excite") {
  std::mt19937_64 e(8);
  squeeze_excite_layer se(image(3, 3, 8), 4);
  se.initialize(e);
  for (auto& v : se.parameters()[1]->value) v = 0.2f;  // b1 > 0 keeps most relu units active
  check_gradients(se, random_batch({2, 3, 3, 8}, e), e);
}

// With swish inside: the relu6 variant's kinks, amplified by two batch norms over few elements,
// make finite differences cross kinks; relu6 itself is checked above, the composition here.
TEST_CASE("inverted_bottleneck: expansion, squeeze-excite, residual and strided variants") {
  std::mt19937_64 e(9);
  for (auto [stride, filters, se] : {std::tuple{1ul, 4ul, true}, std::tuple{2ul, 6ul, false}}) {
    auto block = make_inverted_bottleneck(image(5, 5, 4), {3, 3, filters, stride, se, block_activation::swish, {}});
    CHECK(block->kind() == (stride == 1 ? "residual" : "sequential"));
    block->initialize(e);
    check_gradients(*block, random_batch({3, 5, 5, 4}, e), e, true, 2e-3f, 3e-3, 3e-2);
  }
}
