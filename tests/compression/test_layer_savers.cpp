// Layers that keep their input in an activation_saver, memory-saving training, and
// compressed_activations over a whole network:
// - with a float32 store, every gradient is bit-identical to the layer without a saver;
// - with a narrow format, backward sees exactly decode(encode(x)): gradients equal those of a
//   plain layer whose backward reads the decoded input;
// - memory-saving training (buffers freed as soon as nothing needs them) changes no bit of the
//   loss or of any gradient, with and without output quantizers;
// - misuse throws with the layer named.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/nn.hpp"
#include "qnas/train/compressed_training.hpp"
#include "qnas/train/loss.hpp"

using namespace qnas;
using namespace qnas::nn;
using namespace qnas::train;

namespace {

xt::xarray<float> random_batch(std::vector<std::size_t> shape, std::mt19937_64& e) {
  xt::xarray<float> x = xt::zeros<float>(shape);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto& v : x) v = d(e);
  return x;
}

bool same_bits(const xt::xarray<float>& a, const xt::xarray<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// Copies parameter values from `from` to `to` (same layer kind and sizes).
void copy_params(layer& from, layer& to) {
  auto a = from.parameters(), b = to.parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) b[i]->value = a[i]->value;
}

struct gradients {
  xt::xarray<float> dx;
  std::vector<xt::xarray<float>> params;
};

gradients run(layer& l, const xt::xarray<float>& forward_x, const xt::xarray<float>& dy) {
  for (parameter* p : l.parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
  l.forward(forward_x, true);
  gradients g;
  g.dx = l.backward(dy, true);
  for (parameter* p : l.parameters()) g.params.push_back(p->grad);
  return g;
}

void check_same(const gradients& a, const gradients& b, const std::string& what) {
  CHECK_MESSAGE(same_bits(a.dx, b.dx), what << ": input gradient differs");
  REQUIRE(a.params.size() == b.params.size());
  for (std::size_t i = 0; i < a.params.size(); ++i)
    CHECK_MESSAGE(same_bits(a.params[i], b.params[i]), what << ": gradient of parameter " << i << " differs");
}

using factory = std::unique_ptr<layer> (*)(tensor_shape);

struct layer_case {
  const char* name;
  tensor_shape in;
  factory make;
};

const std::vector<layer_case>& layer_cases() {
  static const std::vector<layer_case> cases = {
      {"conv2d 3x3/2 on one channel", image(9, 9, 1),
       [](tensor_shape in) -> std::unique_ptr<layer> { return std::make_unique<conv2d_layer>(in, 6, 3, 2); }},
      {"conv2d 3x3/1 valid", image(7, 6, 5),
       [](tensor_shape in) -> std::unique_ptr<layer> {
         return std::make_unique<conv2d_layer>(in, 4, 3, 1, padding::valid);
       }},
      {"conv2d 1x1", image(5, 5, 8),
       [](tensor_shape in) -> std::unique_ptr<layer> { return std::make_unique<conv2d_layer>(in, 3, 1, 1); }},
      {"depthwise_conv2d 3x3", image(6, 6, 16),
       [](tensor_shape in) -> std::unique_ptr<layer> { return std::make_unique<depthwise_conv2d_layer>(in, 3, 1); }},
      {"dense", flat(40),
       [](tensor_shape in) -> std::unique_ptr<layer> { return std::make_unique<dense_layer>(in, 7); }},
      {"relu", image(4, 4, 16), [](tensor_shape in) -> std::unique_ptr<layer> { return std::make_unique<relu_layer>(in); }},
      {"swish", flat(48), [](tensor_shape in) -> std::unique_ptr<layer> { return std::make_unique<swish_layer>(in); }},
      {"batch_norm", image(4, 5, 16),
       [](tensor_shape in) -> std::unique_ptr<layer> { return std::make_unique<batch_norm_layer>(in); }},
  };
  return cases;
}

std::vector<std::size_t> batch_of(std::size_t n, tensor_shape s) {
  if (s.rank == 1) return {n, s.c};
  return {n, s.h, s.w, s.c};
}

}  // namespace

TEST_CASE("a float32 saver leaves every gradient bit-identical, with and without memory saving") {
  for (const layer_case& c : layer_cases()) {
    for (bool saving : {false, true}) {
      CAPTURE(c.name);
      CAPTURE(saving);
      std::mt19937_64 e(7);
      auto plain = c.make(c.in), saved = c.make(c.in);
      plain->initialize(e);
      copy_params(*plain, *saved);
      activation_store store;  // float32, no lossless stage
      saved->set_input_saver(&store);
      saved->set_memory_saving(saving);
      REQUIRE_FALSE(saved->reads_input_in_backward());
      const xt::xarray<float> x = random_batch(batch_of(3, c.in), e);
      const xt::xarray<float> dy = random_batch(batch_of(3, plain->output_shape()), e);
      const gradients a = run(*plain, x, dy);
      // The input buffer may change after forward: the saved layer must not read it.
      xt::xarray<float> scratch = x;
      for (parameter* p : saved->parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
      saved->forward(scratch, true);
      std::fill(scratch.begin(), scratch.end(), 1e30f);
      gradients b;
      b.dx = saved->backward(dy, true);
      for (parameter* p : saved->parameters()) b.params.push_back(p->grad);
      check_same(a, b, c.name);
      CHECK(store.elements() == x.size());
    }
  }
}

TEST_CASE("with a narrow format, backward reads exactly decode(encode(x))") {
  const auto codec = activation_codec::of<bfp<3, 16>>();
  for (const layer_case& c : layer_cases()) {
    if (std::string(c.name) == "batch_norm") continue;  // saves the normalized input: below
    CAPTURE(c.name);
    std::mt19937_64 e(11);
    auto plain = c.make(c.in), saved = c.make(c.in);
    plain->initialize(e);
    copy_params(*plain, *saved);
    const std::ptrdiff_t axis = c.in.is_image() && c.in.c == 1 ? -2 : last_axis;
    activation_store store(codec, lossless_options{}, axis);
    saved->set_input_saver(&store);
    const xt::xarray<float> x = random_batch(batch_of(4, c.in), e);
    const xt::xarray<float> dy = random_batch(batch_of(4, plain->output_shape()), e);
    // What backward should see: the same format applied to x.
    activation_store reference(codec, lossless_options::off(), axis);
    reference.store(x);
    xt::xarray<float> xhat;
    reference.load(xhat);
    REQUIRE_FALSE(same_bits(x, xhat));  // the format does change the input
    const gradients a = run(*plain, xhat, dy);
    const gradients b = run(*saved, x, dy);
    check_same(a, b, c.name);
    CHECK(store.bytes().ratio() > 4.0);
  }
}

TEST_CASE("conv2d with a saver in memory-saving mode works a few images at a time") {
  // 40x40 output rows x 72-value patches: one image per im2col chunk, so 3 chunks.
  for (const auto& sf : {std::pair<std::size_t, std::size_t>{1, 5}, {2, 16}}) {
    const std::size_t stride = sf.first, filters = sf.second;  // no structured binding: CAPTURE takes it by reference
    CAPTURE(stride);
    std::mt19937_64 e(13);
    conv2d_layer plain(image(40, 40, 8), filters, 3, stride), chunked(image(40, 40, 8), filters, 3, stride);
    plain.initialize(e);
    copy_params(plain, chunked);
    activation_store store;
    chunked.set_input_saver(&store);
    chunked.set_memory_saving(true);
    const xt::xarray<float> x = random_batch({3, 40, 40, 8}, e);
    const xt::xarray<float> y0 = plain.forward(x, true);
    const xt::xarray<float> y1 = chunked.forward(x, true);
    const xt::xarray<float> dy = random_batch(std::vector<std::size_t>(y0.shape().begin(), y0.shape().end()), e);
    for (parameter* p : plain.parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
    for (parameter* p : chunked.parameters()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
    const xt::xarray<float> dx0 = plain.backward(dy), dx1 = chunked.backward(dy);
    auto close = [](const xt::xarray<float>& a, const xt::xarray<float>& b) {
      REQUIRE(a.size() == b.size());
      double worst = 0.0, scale = 0.0;
      for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, static_cast<double>(std::abs(a.data()[i] - b.data()[i])));
        scale = std::max(scale, static_cast<double>(std::abs(a.data()[i])));
      }
      return worst <= 1e-5 * scale;
    };
    CHECK(close(y0, y1));
    CHECK(close(dx0, dx1));
    CHECK(close(plain.weights().grad, chunked.weights().grad));  // summed over chunks: order differs
    CHECK(close(plain.bias().grad, chunked.bias().grad));
  }
}

TEST_CASE("batch norm saves its normalized input") {
  std::mt19937_64 e(5);
  batch_norm_layer plain(image(3, 3, 16)), saved(image(3, 3, 16));
  plain.initialize(e);
  copy_params(plain, saved);
  activation_store store;
  saved.set_input_saver(&store);
  const xt::xarray<float> x = random_batch({4, 3, 3, 16}, e);
  const xt::xarray<float> dy = random_batch({4, 3, 3, 16}, e);
  check_same(run(plain, x, dy), run(saved, x, dy), "batch_norm");
  // The stored values are the normalized input: mean 0 per channel.
  xt::xarray<float> xh;
  store.load(xh);
  double s = 0.0;
  for (std::size_t r = 0; r < xh.size() / 16; ++r) s += xh.data()[r * 16];
  CHECK(std::abs(s) < 1e-4);
}

namespace {
/// conv 16 -> relu -> conv 32 (fixed-point outputs) -> relu -> max pool -> flatten -> dense 10.
std::unique_ptr<sequential> small_cnn(std::uint64_t seed, bool quantized_outputs) {
  auto net = std::make_unique<sequential>(image(12, 12, 1));
  layer_formats f;
  if (quantized_outputs) f.output = quantizer::of<fixed_point<8, 3>>();
  net->emplace<conv2d_layer>(16, 3, 2, padding::same, f);
  net->emplace<relu_layer>();
  net->emplace<conv2d_layer>(32, 3, 1, padding::same, f);
  net->emplace<relu_layer>();
  net->emplace<pool_layer>(pool_layer::mode::max, 2, 2, padding::valid);
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(10, f);
  std::mt19937_64 e(seed);
  net->initialize(e);
  return net;
}

struct step_result {
  float loss = 0.0f;
  std::vector<xt::xarray<float>> grads;
};

step_result train_step(sequential& net, const xt::xarray<float>& x, const std::vector<data::label_t>& y) {
  net.zero_grad();
  const auto& logits = net.forward(x, true);
  xt::xarray<float> dlogits;
  step_result r;
  r.loss = softmax_cross_entropy(logits, y, dlogits);
  net.backward(dlogits, false);
  for (parameter* p : net.parameters()) r.grads.push_back(p->grad);
  return r;
}
}  // namespace

TEST_CASE("memory-saving training and float32 stores change no bit of a training step") {
  for (bool quantized : {false, true}) {
    CAPTURE(quantized);
    std::mt19937_64 e(3);
    const xt::xarray<float> x = random_batch({5, 12, 12, 1}, e);
    const std::vector<data::label_t> y = {1, 4, 9, 0, 4};
    auto plain = small_cnn(21, quantized);
    auto saving = small_cnn(21, quantized);
    auto stored = small_cnn(21, quantized);
    saving->set_memory_saving(true);
    compressed_activations saved(*stored, activation_codec::float32(), lossless_options{});
    CHECK(saved.size() == 5);  // conv, relu, conv, relu, dense
    for (int step = 0; step < 2; ++step) {
      const step_result a = train_step(*plain, x, y), b = train_step(*saving, x, y), c = train_step(*stored, x, y);
      CHECK(a.loss == b.loss);
      CHECK(a.loss == c.loss);
      for (std::size_t i = 0; i < a.grads.size(); ++i) {
        CHECK_MESSAGE(same_bits(a.grads[i], b.grads[i]), "memory saving: parameter " << i);
        CHECK_MESSAGE(same_bits(a.grads[i], c.grads[i]), "float32 stores: parameter " << i);
      }
    }
    // Inference still works after memory-saving training, and agrees.
    CHECK(same_bits(plain->forward(x, false), stored->forward(x, false)));
  }
}

TEST_CASE("compressed_activations: bytes, formats, detaching and misuse") {
  auto net = small_cnn(2, false);
  std::mt19937_64 e(9);
  const xt::xarray<float> x = random_batch({8, 12, 12, 1}, e);
  const std::vector<data::label_t> y = {0, 1, 2, 3, 4, 5, 6, 7};
  {
    compressed_activations saved(*net, activation_codec::of<bfp<4, 16>>(), lossless_options{});
    CHECK(net->memory_saving());
    REQUIRE(saved.names().size() == 5);
    CHECK(saved.names()[0] == "conv2d 0");
    CHECK(saved.names()[4] == "dense 4");
    train_step(*net, x, y);
    const activation_bytes b = saved.bytes();
    CHECK(b.elements == 8 * (144 + 6 * 6 * 16 + 6 * 6 * 16 + 6 * 6 * 32 + 3 * 3 * 32));
    CHECK(b.ratio() > 6.0);
    std::ostringstream os;
    os << saved.memory();
    CHECK(os.str().find("bfp<4,16>") != std::string::npos);
    saved.set_codec(activation_codec::float32());
    train_step(*net, x, y);
    CHECK(saved.bytes().ratio() < 2.0);  // float32 codes; only the lossless stage squeezes zeros out
    CHECK(saved.store(0).stored_codec().name() == "float32");
    CHECK_THROWS_WITH_AS(compressed_activations(*net, activation_codec::float32()),
                         doctest::Contains("already has an input saver"), invalid_argument);
  }
  // Destroyed: the layers keep float data again, memory saving is off.
  CHECK_FALSE(net->memory_saving());
  CHECK((*net)[0].input_saver() == nullptr);
  CHECK(train_step(*net, x, y).loss > 0.0f);

  sequential flat_only(image(4, 4, 2));
  flat_only.emplace<flatten_layer>();
  CHECK_THROWS_WITH_AS(compressed_activations(flat_only, activation_codec::float32()),
                       doctest::Contains("no layer of the network can keep its input"), invalid_argument);
  activation_store s;
  CHECK_THROWS_WITH_AS(flat_only[0].set_input_saver(&s), doctest::Contains("qnas::nn::flatten::set_input_saver"),
                       invalid_argument);
}

TEST_CASE("a backward pass without a training forward pass is refused") {
  conv2d_layer l(image(5, 5, 2), 3, 3, 1, padding::same, {.output = quantizer::of<fixed_point<8, 3>>()});
  l.set_memory_saving(true);
  xt::xarray<float> dy = xt::zeros<float>({2, 5, 5, 3});
  CHECK_THROWS_WITH_AS(l.backward(dy), doctest::Contains("qnas::nn::conv2d::backward"), invalid_argument);
  activation_store store;
  conv2d_layer m(image(5, 5, 2), 3, 3);
  m.set_input_saver(&store);
  CHECK_THROWS_WITH_AS(m.backward(dy), doctest::Contains("nothing is stored"), invalid_argument);
}
