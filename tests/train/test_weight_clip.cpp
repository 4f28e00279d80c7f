// Weight clipping (BinaryConnect): master weights of quantized layers clamped to their format's
// range, float layers left alone, nested layers reached; as a trainer callback, no weight stays
// outside the range, where the clipped straight-through estimator would give it no gradient.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "qnas/data/dataset.hpp"
#include "qnas/data/synthetic.hpp"
#include "qnas/formats/binary.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/nn.hpp"
#include "qnas/search/train_evaluator.hpp"
#include "qnas/space.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/trainer.hpp"
#include "qnas/train/weight_clip.hpp"

using namespace qnas;

namespace {
// conv (binary<-1>: {-0.5, 0.5}) -> relu -> flatten -> dense (float32).
std::unique_ptr<nn::sequential> small_net() {
  auto net = std::make_unique<nn::sequential>(nn::image(12, 12, 1));
  const quantizer w = quantizer::of<binary<-1>>();
  net->emplace<nn::conv2d_layer>(4, 3, 2, nn::padding::same, nn::layer_formats{w, w, {}});
  net->emplace<nn::relu_layer>();
  net->emplace<nn::flatten_layer>();
  net->emplace<nn::dense_layer>(10);
  return net;
}
nn::weighted_layer& layer_at(nn::sequential& net, std::size_t i) {
  return dynamic_cast<nn::weighted_layer&>(*net.children().at(i));
}
float max_abs(const nn::parameter& p) {
  float m = 0.0f;
  for (float v : p.value) m = std::max(m, std::abs(v));
  return m;
}
}  // namespace

TEST_CASE("clip_quantized_weights: quantized weights and bias into the range, float layers untouched") {
  auto net = small_net();
  std::mt19937_64 rng(3);
  net->initialize(rng);
  auto& conv = layer_at(*net, 0);
  auto& dense = layer_at(*net, 3);
  std::fill(conv.weights().value.begin(), conv.weights().value.end(), 2.0f);
  conv.weights().value.data()[0] = -3.0f;
  conv.weights().value.data()[1] = 0.25f;
  std::fill(conv.bias().value.begin(), conv.bias().value.end(), -1.0f);
  std::fill(dense.weights().value.begin(), dense.weights().value.end(), 7.0f);

  train::clip_quantized_weights(*net);
  CHECK(conv.weights().value.data()[0] == -0.5f);
  CHECK(conv.weights().value.data()[1] == 0.25f);  // inside: unchanged
  CHECK(conv.weights().value.data()[2] == 0.5f);
  CHECK(conv.bias().value.data()[0] == -0.5f);
  CHECK(max_abs(dense.weights()) == 7.0f);  // float32: no range, no clipping

  // Nested: a sequential inside a residual block is reached through children().
  auto outer = std::make_unique<nn::sequential>(nn::image(12, 12, 1));
  auto body = std::make_unique<nn::sequential>(nn::image(12, 12, 1));
  body->emplace<nn::conv2d_layer>(1, 3, 1, nn::padding::same,
                                  nn::layer_formats{quantizer::of<fixed_point<4, 0>>(), {}, {}});
  auto& inner = dynamic_cast<nn::weighted_layer&>(*body->children().at(0));
  std::fill(inner.weights().value.begin(), inner.weights().value.end(), 5.0f);
  outer->add(std::make_unique<nn::residual_layer>(std::move(body)));
  train::clip_quantized_weights(*outer);
  CHECK(max_abs(inner.weights()) == doctest::Approx(fixed_point<4, 0>::max_value));
}

TEST_CASE("weight_clip callback: after training every quantized weight lies inside its range") {
  const auto all = data::make_synthetic({.size = 200, .height = 12, .width = 12, .seed = 2});
  const auto train_on = [&](bool clip) {
    auto net = small_net();
    std::mt19937_64 rng(5);
    net->initialize(rng);
    train::adam opt({.learning_rate = 5e-2f});
    train::trainer t(*net, opt);
    const train::fit_options fo{.epochs = 1, .batch_size = 20, .seed = 1};
    if (clip)
      t.fit(all, nullptr, fo, train::weight_clip{net.get()});
    else
      t.fit(all, nullptr, fo);
    return max_abs(layer_at(*net, 0).weights());
  };
  CHECK(train_on(false) > 0.5f);  // He init (std ~0.47) and large steps leave weights outside [-0.5, 0.5]
  CHECK(train_on(true) <= 0.5f);
}

TEST_CASE("train_evaluator: clip_weights trains with the callback, deterministically") {
  using s_t = space<type_choice<"w", binary<-1>, fixed_point<4, 0>>>;
  const auto build = [](const candidate& c) {
    auto net = std::make_unique<nn::sequential>(nn::image(12, 12, 1));
    const quantizer w = quantizer_of<"w">(s_t{}, c);
    net->emplace<nn::conv2d_layer>(4, 3, 2, nn::padding::same, nn::layer_formats{w, w, {}});
    net->emplace<nn::relu_layer>();
    net->emplace<nn::flatten_layer>();
    net->emplace<nn::dense_layer>(10);
    return net;
  };
  const auto all = data::make_synthetic({.size = 300, .height = 12, .width = 12, .seed = 4});
  auto parts = data::split(all, 100, 1);
  search::train_evaluator_options o;
  o.training = {.epochs = 1, .batch_size = 32, .learning_rate = 3e-3f};
  o.training.clip_weights = true;
  const search::train_evaluator<> ev(describe<s_t>(), build, parts.train, parts.validation, o);
  const auto a = ev(candidate({0}), {.trial = 0, .seed = 9});
  const auto b = ev(candidate({0}), {.trial = 1, .seed = 9});
  CHECK(a.at("accuracy") == b.at("accuracy"));
  CHECK(a.at("accuracy") > 0.0);
}
