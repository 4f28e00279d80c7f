// The network -> energy bridge: the reference CNN built as an nn network prices to exactly the
// qtools figures of the energy module's worked example (tests/energy/test_worked_example.cpp,
// which derives them by hand: 559,168 MACs, op cost 139,792 pJ, total 162,063 pJ).
#include <doctest/doctest.h>

#include <array>
#include <memory>

#include "qnas/energy.hpp"
#include "qnas/nn/energy.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/nn.hpp"

using namespace qnas;
namespace en = qnas::energy;

namespace {
// Worked example options: parameters and activations in SRAM, min SRAM 2^27 bits, no DRAM I/O.
constexpr en::energy_options worked_opts{en::memory_kind::sram, en::memory_kind::sram, 134217728.0, false};

// The reference CNN with int8 weights and biases, 8-bit relu outputs and (16-bit accumulators
// via the bridge options), ending in an unquantized softmax as the worked example does.
template <class W, class A>
std::unique_ptr<nn::sequential> reference_cnn() {
  auto net = std::make_unique<nn::sequential>(nn::image(28, 28, 1));
  const nn::layer_formats f{quantizer::of<W>(), quantizer::of<W>(), {}};
  for (std::size_t filters : {16, 32, 64}) {
    net->emplace<nn::conv2d_layer>(filters, 3, 2, nn::padding::same, f);
    net->emplace<nn::relu_layer>().set_output_quantizer(quantizer::of<A>());
  }
  net->emplace<nn::flatten_layer>();
  net->emplace<nn::dense_layer>(10, f);
  net->emplace<nn::softmax_layer>();
  return net;
}
}  // namespace

TEST_CASE("bridge: the reference CNN as an nn network prices to the qtools worked example") {
  auto net = reference_cnn<int8, fixed_relu<8, 8>>();
  const nn::bridge_options bo{.input_format = info_of<int8>(), .accumulator_bits = 16};
  const en::network_desc d = nn::describe_network(*net, bo);
  REQUIRE(d.size() == 9);
  CHECK(d[0].kind == en::layer_kind::conv2d);
  CHECK(d[0].out == en::tensor_shape{14, 14, 16});
  CHECK(d[0].use_bias);
  CHECK(d[0].output.bits == 16);  // the accumulator
  CHECK(d[1].kind == en::layer_kind::activation);
  CHECK(d[1].input.bits == 16);
  CHECK(d[1].output.bits == 8);
  CHECK(d[6].kind == en::layer_kind::flatten);
  CHECK(d[7].kind == en::layer_kind::dense);
  CHECK(d[7].in == qnas::flat(1024));
  CHECK(d[8].output.bits == 16);  // an unquantized softmax keeps the dense accumulator type
  const en::model_energy e = en::price_model<en::qtools_compat>(d, worked_opts);
  CHECK(e.macs == 559168);
  CHECK(en::round2(e.op) == 139792.0);
  CHECK(e.qtools_total() == 162063);
  CHECK(static_cast<long long>(e.total_pj) == 162063);
}

TEST_CASE("bridge: only bits and families matter, so other 8-bit scalings price the same") {
  // fixed_point<8, 0> weights ([-1, 1)) and fixed_relu<8, 3> activations ([0, 8)) are the same
  // 8-bit multipliers and 8-bit tensors as int8 / uint8.
  auto net = reference_cnn<fixed_point<8, 0>, fixed_relu<8, 3>>();
  const nn::bridge_options bo{.input_format = info_of<uint8>(), .accumulator_bits = 16};
  const auto e = en::price_model<en::qtools_compat>(nn::describe_network(*net, bo), worked_opts);
  CHECK(e.qtools_total() == 162063);
}

TEST_CASE("bridge: derived accumulators, the cap, and fused output quantizers") {
  // conv 3x3/2 16 with int8 x int8: product 16 bits + ceil(log2(9 + 1 bias)) = 4 -> 20 bits.
  nn::sequential net(nn::image(8, 8, 1));
  net.emplace<nn::conv2d_layer>(16, 3, 2, nn::padding::same,
                                nn::layer_formats{quantizer::of<int8>(), quantizer::of<int8>(),
                                                  quantizer::of<ternary<0, 0.5>>()});
  net.emplace<nn::pool_layer>(nn::pool_layer::mode::max, 2, 2);
  net.emplace<nn::global_avg_pool_layer>();
  net.emplace<nn::dense_layer>(3);
  const auto d = nn::describe_network(net, {.input_format = info_of<int8>()});
  REQUIRE(d.size() == 5);
  CHECK(d[0].output.bits == 20);
  CHECK(d[0].accumulator_bits == 0);  // left to the energy model, which derives the same
  CHECK(d[1].kind == en::layer_kind::activation);  // the fused ternary output quantizer
  CHECK(std::string(d[1].name) == "conv2d_0.output");
  CHECK(d[1].output.family == format_family::ternary);
  CHECK(d[2].kind == en::layer_kind::max_pool);
  CHECK(d[2].input.family == format_family::ternary);  // pooling keeps its input's format
  CHECK(d[3].kind == en::layer_kind::avg_pool);
  CHECK(d[3].kernel_h == 2);
  CHECK(d[3].out == qnas::flat(16));
  CHECK(d[4].output == float32_info);  // float weights: a float product and accumulator
  const auto capped = nn::describe_network(net, {.input_format = info_of<int8>(), .max_accumulator_bits = 16});
  CHECK(capped[0].output.bits == 16);
  CHECK(capped[0].accumulator_bits == 16);
  // Copies keep valid names (they share the storage).
  const en::network_desc copy = capped;
  CHECK(std::string(copy[1].name) == "conv2d_0.output");
}

TEST_CASE("bridge: residual blocks end in a 2-input add; batch norm is priced as folded") {
  nn::sequential net(nn::image(4, 4, 8));
  auto& r = net.emplace<nn::residual_layer>();
  r.body().emplace<nn::conv2d_layer>(8, 3, 1);
  r.body().emplace<nn::batch_norm_layer>();
  r.body().emplace<nn::relu_layer>();
  r.seal();
  net.emplace<nn::flatten_layer>();
  const auto d = nn::describe_network(net);
  REQUIRE(d.size() == 4);
  CHECK(d[0].kind == en::layer_kind::conv2d);
  CHECK(d[1].kind == en::layer_kind::activation);
  CHECK(d[2].kind == en::layer_kind::add);
  CHECK(d[2].inputs == 2);
  CHECK(d[3].kind == en::layer_kind::flatten);
}

TEST_CASE("bridge: an unpriceable layer or an inconsistent description throws naming the layer") {
  nn::sequential net(nn::image(4, 4, 8));
  net.emplace<nn::conv2d_layer>(8, 3, 1);
  auto rows = nn::describe_layers(net);
  CHECK(rows[0].op == nn::layer_op::conv2d);
  CHECK(rows[0].window == nn::window_desc{3, 1, nn::padding::same});
  rows[0].window.kernel = 0;
  CHECK_THROWS_WITH_AS(nn::describe_network(std::span<const nn::layer_description>(rows)),
                       "qnas::nn::describe_network (layer 0, conv2d): a conv2d needs a window with kernel and stride "
                       ">= 1, the description has kernel 0, stride 1",
                       qnas::invalid_argument);
  rows = nn::describe_layers(net);
  rows[0].window.stride = 2;  // would give 2x2x8, the layer says 4x4x8
  CHECK_THROWS_WITH_AS(nn::describe_network(std::span<const nn::layer_description>(rows)),
                       "qnas::nn::describe_network (layer 0, conv2d): conv2d 3x3/2 same on input [4,4,8] gives [2,2,8], "
                       "but the layer's output is [4,4,8]",
                       qnas::invalid_argument);
  rows = nn::describe_layers(net);
  rows[0].config = "8 three-by-three";  // for people only: never parsed
  CHECK(nn::describe_network(std::span<const nn::layer_description>(rows)).size() == 1);
  rows[0].op = nn::layer_op::unpriced;
  CHECK_THROWS_WITH_AS(nn::describe_network(std::span<const nn::layer_description>(rows)),
                       doctest::Contains("no energy model"), qnas::invalid_argument);
  nn::sequential se(nn::image(4, 4, 8));
  se.emplace<nn::squeeze_excite_layer>();
  CHECK_THROWS_WITH_AS(nn::describe_network(se),
                       "qnas::nn::describe_network (layer 0, squeeze_excite): has no energy model: its description's op "
                       "is unpriced (priced ops: conv2d, depthwise_conv2d, dense, max_pool, avg_pool, global_avg_pool, "
                       "activation, flatten, batch_norm, residual, sequential)",
                       qnas::invalid_argument);
}
