// onnx/import: qnas networks exported with export_onnx and imported again compute bit for bit what the originals compute, and export again to the same bytes.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/pooling.hpp"
#include "qnas/nn/residual.hpp"
#include "qnas/onnx/export.hpp"
#include "qnas/onnx/import.hpp"
#include "../onnx/onnx_cases.hpp"

using namespace qnas;
using namespace qnas::nn;

namespace {

xt::xarray<float> random_batch(std::size_t n, const tensor_shape& s, std::uint64_t seed) {
  return onnx_tests::random_batch(n, s, seed, 2.0f);
}

void randomize(layer& l, std::mt19937_64& e) {
  if (auto* bn = dynamic_cast<batch_norm_layer*>(&l)) onnx_tests::randomize_batch_norms(*bn, e);
  if (auto* w = dynamic_cast<weighted_layer*>(&l); w != nullptr && w->has_bias()) {
    std::uniform_real_distribution<float> u(-0.3f, 0.3f);
    for (auto& x : w->bias().value) x = u(e);
  }
  for (layer* c : l.children()) randomize(*c, e);
}

std::string serialized(sequential& net) {
  std::string s;
  REQUIRE(to_onnx(net).SerializeToString(&s));
  return s;
}

std::unique_ptr<sequential> reimport(sequential& net) {
  const std::string s = serialized(net);
  return import_onnx_bytes({s.data(), s.size()}, "round trip");
}

bool identical(const xt::xarray<float>& a, const xt::xarray<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// export -> import -> export -> import: every network computes the same bits on `x`, and the
/// two exports are the same bytes.
/// QNAS_ONNX_IMPORT_WRITE_SEEDS=<folder> writes each exported network there (the fuzz seeds of
/// fuzz/corpus/fuzz_onnx_import were made so).
void check_round_trip(sequential& net, std::uint64_t seed) {
  std::mt19937_64 e(seed);
  net.initialize(e);
  randomize(net, e);
  if (const char* dir = std::getenv("QNAS_ONNX_IMPORT_WRITE_SEEDS")) {
    std::ofstream f(std::filesystem::path(dir) / ("qnas_export_" + std::to_string(seed) + ".onnx"), std::ios::binary);
    const std::string s = serialized(net);
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
  }
  const xt::xarray<float> x = random_batch(32, net.input_shape(), seed);
  const xt::xarray<float> want = net.forward(x, false);
  const std::unique_ptr<sequential> once = reimport(net);
  CHECK(once->input_shape() == net.input_shape());
  CHECK(once->output_shape() == net.output_shape());
  CHECK(once->size() == net.size());
  CHECK(identical(once->forward(x, false), want));
  const std::unique_ptr<sequential> twice = reimport(*once);
  CHECK(identical(twice->forward(x, false), want));
  CHECK(serialized(*once) == serialized(net));
}

}  // namespace

TEST_CASE("import_onnx: a float CNN (conv, batch norm, pools, dense, swish, softmax) round-trips bit for bit") {
  sequential net(image(12, 10, 3));
  net.emplace<conv2d_layer>(8, 3, 1, padding::same);
  net.emplace<batch_norm_layer>();
  net.emplace<relu_layer>();
  net.emplace<pool_layer>(pool_layer::mode::max, 2, 2);
  net.emplace<conv2d_layer>(6, 3, 2, padding::same, layer_formats{}, false);  // asymmetric pads, no bias
  net.emplace<relu6_layer>();
  net.emplace<pool_layer>(pool_layer::mode::average, 3, 1, padding::same);
  net.emplace<conv2d_layer>(5, 2, 1, padding::valid);
  net.emplace<sigmoid_layer>();
  net.emplace<flatten_layer>();
  net.emplace<dense_layer>(16);
  net.emplace<swish_layer>();
  net.emplace<batch_norm_layer>();
  net.emplace<dense_layer>(10);
  net.emplace<softmax_layer>();
  check_round_trip(net, 11);
}

TEST_CASE("import_onnx: depthwise convolutions, nested residual blocks and global average pool round-trip bit for bit") {
  sequential net(image(9, 9, 4));
  net.emplace<conv2d_layer>(8, 1, 1, padding::same);
  auto& r = net.emplace<residual_layer>();
  r.body().emplace<depthwise_conv2d_layer>(3, 1, padding::same);
  r.body().emplace<batch_norm_layer>();
  r.body().emplace<relu6_layer>();
  auto& inner = r.body().emplace<residual_layer>();
  inner.body().emplace<conv2d_layer>(8, 3, 1, padding::same, layer_formats{}, false);
  inner.body().emplace<swish_layer>();
  inner.seal();
  r.body().emplace<conv2d_layer>(8, 1, 1, padding::same);
  r.seal();
  net.emplace<depthwise_conv2d_layer>(3, 2, padding::same, layer_formats{}, false);
  net.emplace<relu_layer>();
  net.emplace<global_avg_pool_layer>();
  net.emplace<dense_layer>(7);
  check_round_trip(net, 12);
}

TEST_CASE("import_onnx: flat inputs and image outputs keep qnas's layout") {
  sequential flat_net(flat(20));
  flat_net.emplace<dense_layer>(12);
  flat_net.emplace<relu_layer>();
  flat_net.emplace<dense_layer>(3);
  check_round_trip(flat_net, 13);

  sequential image_net(image(6, 5, 2));  // output [6, 5, 4]: a Transpose back to NHWC at the end
  image_net.emplace<conv2d_layer>(4, 3, 1, padding::same);
  image_net.emplace<relu_layer>();
  check_round_trip(image_net, 14);
}
