// Layers whose weights learn their quantization steps (lsq): the step parameter, LSQ's
// initialisation, the forward values and the paper's gradients through dense and conv2d layers,
// training, and the refusals.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qnas/formats.hpp"
#include "qnas/nn.hpp"
#include "qnas/nn/energy.hpp"
#include "qnas/energy/qtools_compat.hpp"
#include "qnas/nn/fold.hpp"
#include "qnas/space.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/trainer.hpp"

using namespace qnas;
using namespace qnas::nn;

namespace {
using w4 = lsq<fixed_point<4, 0>>;  // per output channel, Qn = 8, Qp = 7

xt::xarray<float> ramp(std::vector<std::size_t> shape, float scale, float shift = 0.0f) {
  xt::xarray<float> a = xt::zeros<float>(shape);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = std::sin(0.7f * static_cast<float>(i) + shift) * scale;
  return a;
}
}  // namespace

TEST_CASE("dense with lsq weights: step parameter, initialisation and forward values") {
  dense_layer d(flat(5), 3, {.weights = quantizer::of<w4>()});
  d.weights().value = ramp({5, 3}, 0.4f);
  d.bias().value = xt::xarray<float>{0.01f, -0.02f, 0.03f};
  const auto params = d.parameters();
  REQUIRE(params.size() == 3);
  CHECK(params[2] == &d.weight_steps());
  CHECK(d.weight_steps().name == "dense.weight_step");
  CHECK(!d.weight_steps().decay);
  REQUIRE(d.weight_steps().value.size() == 3);
  for (float s : d.weight_steps().value) CHECK(s == 0.0f);  // set at the first forward pass
  CHECK(d.describe().params == 5 * 3 + 3 + 3);

  const xt::xarray<float> x = ramp({2, 5}, 1.0f, 0.3f);
  const auto& y = d.forward(x, true);
  // the steps are the paper's initial steps of the weights
  std::vector<float> want_s(3);
  w4::init_steps(d.weights().value.data(), want_s.data(), 5, 3);
  for (std::size_t j = 0; j < 3; ++j) CHECK(d.weight_steps().value(j) == want_s[j]);
  // y = x * quantize_with_steps(W) + b
  std::vector<float> wq(15);
  w4::quantize_rows_with(d.weights().value.data(), wq.data(), want_s.data(), 5, 3);
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t j = 0; j < 3; ++j) {
      float acc = 0.0f;
      for (std::size_t i = 0; i < 5; ++i) acc += x(n, i) * wq[i * 3 + j];
      CHECK(y(n, j) == doctest::Approx(acc + d.bias().value(j)).epsilon(1e-6));
    }
  // initialised steps stay: a second forward pass does not set them again
  d.weight_steps().value(1) = 0.125f;
  d.forward(x, true);
  CHECK(d.weight_steps().value(1) == 0.125f);
  // initialize() draws new weights and sets the steps to 0 again
  std::mt19937_64 e(3);
  d.initialize(e);
  for (float s : d.weight_steps().value) CHECK(s == 0.0f);
}

TEST_CASE("dense with lsq weights: the paper's weight and step gradients") {
  dense_layer d(flat(4), 2, {.weights = quantizer::of<w4>()}, false);
  d.weights().value = ramp({4, 2}, 0.5f);
  d.weight_steps().value = xt::xarray<float>{0.125f, 0.05f};  // set: not re-initialised
  const xt::xarray<float> x = ramp({3, 4}, 1.0f, 1.1f);
  const xt::xarray<float> dy = ramp({3, 2}, 1.0f, 2.3f);
  d.forward(x, true);
  d.backward(dy, false);
  // dL/dW' = x^T dy; then LSQ's backward splits it into the weights' and the steps' gradients
  std::vector<float> gq(8, 0.0f), gw(8, 0.0f), gs(2, 0.0f);
  for (std::size_t n = 0; n < 3; ++n)
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 2; ++j) gq[i * 2 + j] += x(n, i) * dy(n, j);
  const float steps[2] = {0.125f, 0.05f};
  w4::backward_rows(d.weights().value.data(), gq.data(), steps, gw.data(), gs.data(), 4, 2);
  for (std::size_t i = 0; i < 8; ++i) CHECK(d.weights().grad.data()[i] == doctest::Approx(gw[i]).epsilon(1e-6));
  CHECK(d.weight_steps().grad(0) == doctest::Approx(gs[0]).epsilon(1e-5));
  CHECK(d.weight_steps().grad(1) == doctest::Approx(gs[1]).epsilon(1e-5));
  CHECK(gs[0] != 0.0f);
  // with a step this small some weights clip (w / s >= Qp = 7 or <= -Qn = -8): their gradient is 0
  std::size_t clipped = 0;
  for (std::size_t i = 0; i < 4; ++i)
    if (const float t = d.weights().value(i, 1) / 0.05f; t >= 7.0f || t <= -8.0f) {
      ++clipped;
      CHECK(d.weights().grad(i, 1) == 0.0f);
    }
  CHECK(clipped > 0);
}

TEST_CASE("conv2d with per-channel and per-tensor lsq weights on 1 and 2 threads") {
  for (bool per_tensor_steps : {false, true}) {
    const quantizer q = per_tensor_steps ? quantizer::of<lsq<fixed_point<3, 0>, per_tensor>>() : quantizer::of<w4>();
    xt::xarray<float> out[2], gw[2], gs[2];
    for (std::size_t threads : {1u, 2u}) {
      set_blas_threads(threads);
      conv2d_layer c(image(6, 6, 2), 4, 3, 1, padding::same, {.weights = q});
      std::mt19937_64 e(7);
      c.initialize(e);
      CHECK(c.weight_steps().value.size() == (per_tensor_steps ? 1u : 4u));
      const xt::xarray<float> x = ramp({2, 6, 6, 2}, 1.0f);
      out[threads - 1] = c.forward(x, true);
      c.backward(ramp({2, 6, 6, 4}, 0.1f, 0.5f), false);
      gw[threads - 1] = c.weights().grad;
      gs[threads - 1] = c.weight_steps().grad;
      // the layer's weights are those quantize_with_steps gives
      std::vector<float> wq(c.weights().value.size());
      const std::vector<std::size_t> shape(c.weights().value.shape().begin(), c.weights().value.shape().end());
      q.quantize_with_steps(std::span<const float>(c.weights().value.data(), wq.size()), wq, shape,
                            std::span<const float>(c.weight_steps().value.data(), c.weight_steps().value.size()));
      std::size_t levels_used = 0;
      for (std::size_t i = 0; i < wq.size(); ++i) levels_used += wq[i] != 0.0f;
      CHECK(levels_used > wq.size() / 2);
    }
    set_blas_threads(1);
    CHECK(out[0] == out[1]);
    CHECK(gs[0] == gs[1]);
    CHECK(xt::allclose(gw[0], gw[1], 1e-5, 1e-6));
  }
}

TEST_CASE("a network with lsq weights trains: loss falls and the steps move") {
  data::dataset d;
  d.classes = 2;
  d.images = xt::zeros<float>({std::size_t{256}, std::size_t{8}, std::size_t{8}, std::size_t{1}});
  d.labels.resize(256);
  std::mt19937_64 g(11);
  std::uniform_real_distribution<float> u(0.0f, 0.5f);
  for (std::size_t i = 0; i < 256; ++i) {
    d.labels[i] = static_cast<data::label_t>(i % 2);
    for (std::size_t y = 0; y < 8; ++y)
      for (std::size_t x = 0; x < 8; ++x) d.images(i, y, x, 0) = u(g) + (((y < 4) == (i % 2 == 0)) ? 0.5f : 0.0f);
  }
  sequential net(image(8, 8, 1));
  net.emplace<conv2d_layer>(4, 3, 2, padding::same, layer_formats{.weights = quantizer::of<lsq<fixed_point<3, 0>>>()});
  net.emplace<relu_layer>();
  net.emplace<flatten_layer>();
  net.emplace<dense_layer>(2, layer_formats{.weights = quantizer::of<lsq<fixed_point<3, 0>, per_tensor>>()});
  std::mt19937_64 e(5);
  net.initialize(e);
  const auto before = train::evaluate(net, d);
  auto& conv = dynamic_cast<conv2d_layer&>(net[0]);
  train::adam opt({.learning_rate = 1e-2f});
  train::trainer t(net, opt);
  t.fit(d, nullptr, {.epochs = 6, .batch_size = 32});
  const auto after = train::evaluate(net, d);
  CHECK(after.loss < before.loss);
  CHECK(after.accuracy > 0.9);
  // the steps are parameters the optimizer moved away from their initial values
  std::vector<float> init(4);
  conv.weight_quantizer().init_steps(std::span<const float>(conv.weights().value.data(), conv.weights().value.size()),
                                     std::vector<std::size_t>{3, 3, 1, 4}, init);
  std::size_t moved = 0;
  for (std::size_t j = 0; j < 4; ++j) moved += std::fabs(conv.weight_steps().value(j) - init[j]) > 1e-4f * init[j];
  CHECK(moved == 4);
}

TEST_CASE("lsq refusals: activations, bias, a step driven <= 0, batch-norm folding") {
  CHECK_THROWS_WITH_AS(dense_layer(flat(4), 2, {.output = quantizer::of<w4>()}),
                       doctest::Contains("only a layer's weights can hold"), invalid_argument);
  CHECK_THROWS_WITH_AS(dense_layer(flat(4), 2, {.bias = quantizer::of<w4>()}),
                       doctest::Contains("quantize the bias with a fixed or data-dependent format"), invalid_argument);
  relu_layer r(flat(4));
  CHECK_THROWS_AS(r.set_output_quantizer(quantizer::of<w4>()), invalid_argument);

  dense_layer d(flat(4), 2, {.weights = quantizer::of<w4>()});
  d.weights().value = ramp({4, 2}, 0.5f);
  d.weight_steps().value = xt::xarray<float>{0.1f, -0.01f};
  const xt::xarray<float> x = ramp({1, 4}, 1.0f);
  CHECK_THROWS_WITH_AS(d.forward(x, false), doctest::Contains("learned weight step 1"), invalid_argument);

  // switching the weight quantizer sizes the steps anew
  d.set_weight_quantizer(quantizer::of<lsq<fixed_point<4, 0>, per_tensor>>());
  CHECK(d.weight_steps().value.size() == 1);
  d.set_weight_quantizer(quantizer::of<fixed_point<4, 0>>());
  CHECK(d.weight_steps().value.size() == 0);
  CHECK(d.parameters().size() == 2);

  // a dense + batch norm pair with learned steps keeps its batch norm
  sequential net(flat(4));
  net.emplace<dense_layer>(3, layer_formats{.weights = quantizer::of<w4>()});
  net.emplace<batch_norm_layer>();
  sequential plain(flat(4));
  plain.emplace<dense_layer>(3);
  plain.emplace<batch_norm_layer>();
  CHECK(fold_batch_norm(net) == 0);
  CHECK(net.size() == 2);
  CHECK(fold_batch_norm(plain) == 1);
}

TEST_CASE("compile-time layer specs take lsq formats") {
  using net_t = network<input<8, 8, 1>, conv2d<4, 3, 1, padding::same, w4>, relu, flatten, dense<2, w4>>;
  static_assert(net_t::param_count == (3 * 3 * 4 + 4 + 4) + (8 * 8 * 4 * 2 + 2 + 2));  // steps included
  net_t net(5);
  auto& c = dynamic_cast<conv2d_layer&>(net.layers()[0]);
  CHECK(c.weight_quantizer().learned());
  CHECK(c.weight_steps().value.size() == 4);
  std::size_t described = 0;
  for (std::size_t i = 0; i < net.layers().size(); ++i) described += net.layers()[i].describe().params;
  CHECK(described == net_t::param_count);
}

TEST_CASE("lsq as a decision of a search space: a candidate picks fixed or learned steps") {
  using space_t = space<type_choice<"w", fixed_point<4, 0>, lsq<fixed_point<4, 0>>>>;
  const space_t s;
  for (std::uint32_t k : {0u, 1u}) {
    const quantizer w = quantizer_of<"w">(s, candidate({k}));
    sequential net(flat(6));
    net.emplace<dense_layer>(3, layer_formats{.weights = w});
    std::mt19937_64 e(1);
    net.initialize(e);
    CHECK(net.parameters().size() == (k == 1 ? 3u : 2u));
    const xt::xarray<float> x = ramp({4, 6}, 1.0f);
    net.forward(x, true);
    net.backward(ramp({4, 3}, 1.0f));
    auto& d = dynamic_cast<dense_layer&>(net[0]);
    CHECK(d.weight_steps().value.size() == (k == 1 ? 3u : 0u));
    if (k == 1) CHECK(xt::any(xt::not_equal(d.weight_steps().grad, 0.0f)));
  }
}

TEST_CASE("the energy bridge prices lsq weights as their integer grid (the steps are not weights)") {
  const auto make = [](const quantizer& w) {
    auto net = std::make_unique<sequential>(image(12, 12, 1));
    net->emplace<conv2d_layer>(8, 3, 2, padding::same, layer_formats{.weights = w});
    net->emplace<relu_layer>();
    net->emplace<flatten_layer>();
    net->emplace<dense_layer>(10, layer_formats{.weights = w});
    return net;
  };
  const auto learned = make(quantizer::of<w4>()), fixed = make(quantizer::of<fixed_point<4, 0>>());
  const nn::bridge_options bo{.input_format = info_of<uint8>(), .accumulator_bits = 16};
  const auto el = energy::price_model<energy::qtools_compat>(nn::describe_network(*learned, bo));
  const auto ef = energy::price_model<energy::qtools_compat>(nn::describe_network(*fixed, bo));
  CHECK(el.total_pj == ef.total_pj);
  CHECK(el.macs == ef.macs);
  CHECK((*learned)[0].describe().step_params == 8);
  CHECK((*learned)[0].describe().params == 3 * 3 * 8 + 8 + 8);
}
