// onnx/export: networks exported to ONNX have the expected operators, exact integer weights and scales; each case is written with an input batch and qnas's output for onnx.checker and onnxruntime (check_models.py, run_models.js).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/formats/binary.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/scaled.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/pooling.hpp"
#include "qnas/nn/residual.hpp"
#include "qnas/onnx/export.hpp"
#include "onnx_cases.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::nn;
using namespace qnas::onnx_tests;

namespace {

fs::path models_dir() {
  const char* d = std::getenv("QNAS_ONNX_MODELS");
  return d != nullptr ? fs::path(d) : fs::path("onnx_models");
}

/// Writes models/<name>/: model.onnx, input.bin (float32 NHWC), expected.bin (qnas's output),
/// case.json (shapes and the check run_models.js applies).
struct written_case {
  onnx_export_summary summary;
  xt::xarray<float> input, expected;
};
written_case write_case(const std::string& name, sequential& net, std::size_t batch, const nlohmann::json& check,
                        const onnx_export_options& opt = {}, const std::function<void()>& before_expected = {}) {
  const fs::path dir = models_dir() / name;
  fs::create_directories(dir);
  written_case w;
  w.summary = export_onnx(net, dir / "model.onnx", opt);
  w.input = random_batch(batch, net.input_shape(), std::hash<std::string>{}(name), 2.0f);
  if (before_expected) before_expected();
  w.expected = net.forward(w.input, false);
  nlohmann::json j = check;
  if (opt.expose_quantized_activations) {  // qnas's output of every exposed layer, run layer by layer
    j["activations"] = nlohmann::json::array();
    xt::xarray<float> a = w.input;
    for (std::size_t i = 0; i < net.size(); ++i) {
      xt::xarray<float> y = net[i].forward(a, false);
      const quantizer& q = net[i].output_quantizer();
      if (!q.is_identity() && activation_qdq_of(q).ok()) {
        const std::string file = "layers_" + std::to_string(i) + ".bin";
        write_floats(dir / file, y);
        j["activations"].push_back({{"output", "layers[" + std::to_string(i) + "]:quantized"},
                                    {"file", file},
                                    {"step", activation_qdq_of(q).grid.step}});
      }
      a = std::move(y);
    }
  }
  write_case_files(dir, name, w.input, w.expected, std::move(j));
  return w;
}

const onnx::TensorProto* initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return &t;
  return nullptr;
}
float scalar_of(const onnx::ModelProto& m, const std::string& name) {
  const onnx::TensorProto* t = initializer(m, name);
  REQUIRE(t != nullptr);
  REQUIRE(t->raw_data().size() == sizeof(float));
  float v = 0;
  std::memcpy(&v, t->raw_data().data(), sizeof v);
  return v;
}
std::string metadata(const onnx::ModelProto& m, const std::string& key) {
  for (const auto& p : m.metadata_props())
    if (p.key() == key) return p.value();
  return {};
}

std::unique_ptr<sequential> float_cnn() {
  auto net = std::make_unique<sequential>(image(8, 8, 3));
  net->emplace<conv2d_layer>(8, 3, 1, padding::same);
  net->emplace<batch_norm_layer>(0.9f, 1e-3f);
  net->emplace<relu_layer>();
  net->emplace<pool_layer>(pool_layer::mode::max, 2, 2);
  net->emplace<conv2d_layer>(6, 3, 2, padding::same);
  net->emplace<swish_layer>();
  net->emplace<pool_layer>(pool_layer::mode::average, 3, 1, padding::same);
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(16);
  net->emplace<sigmoid_layer>();
  net->emplace<dense_layer>(10);
  net->emplace<softmax_layer>();
  std::mt19937_64 e(1);
  net->initialize(e);
  randomize_batch_norms(*net, e);
  return net;
}

std::unique_ptr<sequential> depthwise_residual_net() {
  auto net = std::make_unique<sequential>(image(9, 9, 4));
  net->emplace<conv2d_layer>(8, 3, 2, padding::same);  // 9x9 -> 5x5
  net->emplace<relu6_layer>();
  net->emplace<pool_layer>(pool_layer::mode::average, 2, 2, padding::same);  // 5x5 -> 3x3, pads 0 before, 1 after
  auto body = std::make_unique<sequential>(image(3, 3, 8));
  body->emplace<depthwise_conv2d_layer>(3, 1, padding::same);
  body->emplace<batch_norm_layer>();
  body->emplace<relu6_layer>();
  body->emplace<conv2d_layer>(8, 1, 1, padding::same);
  net->add(std::make_unique<residual_layer>(std::move(body)));
  net->add(make_inverted_bottleneck(image(3, 3, 8), {2, 3, 8, 1, true, block_activation::swish, {}}));
  net->emplace<pool_layer>(pool_layer::mode::max, 3, 2, padding::same);  // 3x3 -> 2x2, pads 1 and 1
  net->emplace<global_avg_pool_layer>();
  net->emplace<dense_layer>(5);
  std::mt19937_64 e(2);
  net->initialize(e);
  randomize_batch_norms(*net, e);
  return net;
}

using a8 = fixed_point<8, 4>;   // step 2^-3, codes [-128, 127]: QuantizeLinear int8 without Clip
using r8 = fixed_relu<8, 3>;    // step 2^-5, [0, 255]: uint8 without Clip
using r4 = fixed_relu<4, 2>;    // step 2^-2, [0, 15]: Clip(0, 3.75) + uint8
using w4 = fixed_point<4, 1>;   // weights: step 2^-2, codes [-8, 7]
using b8 = fixed_point<8, 3>;   // biases: step 2^-4
using wt = ternary<-2, 0.125>;  // {-0.25, 0, 0.25}
using wb = binary<-3>;          // {-0.125, 0.125}

std::unique_ptr<sequential> qdq_net() {
  auto net = std::make_unique<sequential>(image(8, 8, 2));
  net->emplace<conv2d_layer>(6, 3, 1, padding::same,
                             layer_formats{quantizer::of<w4>(), quantizer::of<b8>(), quantizer::of<r8>()});
  net->emplace<pool_layer>(pool_layer::mode::max, 2, 2);
  net->emplace<depthwise_conv2d_layer>(3, 1, padding::same,
                                       layer_formats{quantizer::of<wt>(), quantizer::of<b8>(), quantizer::of<a8>()});
  net->emplace<relu_layer>().set_output_quantizer(quantizer::of<r4>());
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(10, layer_formats{quantizer::of<wb>(), quantizer::of<b8>(), quantizer::of<a8>()});
  std::mt19937_64 e(3);
  net->initialize(e);
  return net;
}

/// Quantized activations through a residual add, a depthwise convolution and a global average
/// pool over 36 positions (a division that is not a power of two).
std::unique_ptr<sequential> qdq_residual_net() {
  auto net = std::make_unique<sequential>(image(12, 12, 3));
  net->emplace<conv2d_layer>(6, 3, 2, padding::same, layer_formats{quantizer::of<w4>(), quantizer::of<b8>(), quantizer::of<a8>()});
  auto body = std::make_unique<sequential>(image(6, 6, 6));
  body->emplace<depthwise_conv2d_layer>(3, 1, padding::same, layer_formats{quantizer::of<wt>(), {}, quantizer::of<a8>()});
  body->emplace<relu_layer>().set_output_quantizer(quantizer::of<r8>());
  body->emplace<conv2d_layer>(6, 1, 1, padding::same, layer_formats{quantizer::of<w4>(), quantizer::of<b8>(), quantizer::of<a8>()});
  auto& res = net->add(std::make_unique<residual_layer>(std::move(body)));
  res.set_output_quantizer(quantizer::of<a8>());
  net->emplace<global_avg_pool_layer>().set_output_quantizer(quantizer::of<a8>());
  net->emplace<dense_layer>(10, layer_formats{quantizer::of<fixed_point<8, 1>>(), quantizer::of<b8>(), quantizer::of<a8>()});
  std::mt19937_64 e(6);
  net->initialize(e);
  return net;
}

using wlsq = lsq<fixed_point<4, 3, true, true>>;                  // codes [-7, 7], a learned step per channel
using wlsq_t = lsq<fixed_point<8, 7, true, true>, per_tensor>;  // codes [-127, 127], one learned step

std::unique_ptr<sequential> lsq_net() {
  auto net = std::make_unique<sequential>(image(6, 6, 3));
  net->emplace<conv2d_layer>(5, 3, 2, padding::same, layer_formats{quantizer::of<wlsq>(), {}, quantizer::of<a8>()});
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(4, layer_formats{quantizer::of<wlsq_t>(), quantizer::of<b8>(), quantizer::of<a8>()});
  std::mt19937_64 e(5);
  net->initialize(e);
  return net;
}

using ws_t = scaled<ternary<0>, alpha_auto>;                              // a float scale per channel
using ws_f = scaled<fixed_point<8, 0, true, true>, alpha_auto_po2<>>;     // a power-of-two scale per channel
using ws_c = scaled<fixed_point<4, 0, true, true>, alpha_auto, per_tensor>;  // one float scale

std::unique_ptr<sequential> scaled_net() {
  auto net = std::make_unique<sequential>(image(6, 6, 3));
  net->emplace<conv2d_layer>(5, 3, 1, padding::same, layer_formats{quantizer::of<ws_t>(), {}, quantizer::of<a8>()});
  net->emplace<depthwise_conv2d_layer>(3, 2, padding::same, layer_formats{quantizer::of<ws_c>(), {}, quantizer::of<a8>()});
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(4, layer_formats{quantizer::of<ws_f>(), {}, quantizer::of<a8>()});
  std::mt19937_64 e(7);
  net->initialize(e);
  return net;
}

using wpo2 = po2<4, 2.0>;
using afp8 = fp8_e4m3;

std::unique_ptr<sequential> non_integer_net() {
  auto net = std::make_unique<sequential>(image(6, 6, 2));
  net->emplace<conv2d_layer>(4, 3, 1, padding::same, layer_formats{quantizer::of<wpo2>(), {}, quantizer::of<afp8>()});
  net->emplace<relu_layer>();
  net->emplace<global_avg_pool_layer>();
  net->emplace<dense_layer>(3, layer_formats{quantizer::of<fixed_point<8, 1, true, false, nearest_away>>(), {}, {}});
  std::mt19937_64 e(4);
  net->initialize(e);
  return net;
}

}  // namespace

TEST_CASE("activation_qdq_of proves fixed point with round-half-even exact and refuses the others") {
  const auto a = activation_qdq_of(quantizer::of<a8>());
  CHECK(a.ok());
  CHECK(a.grid.type == onnx_integer_type::int8);
  CHECK(a.grid.step == 0.125f);
  CHECK_FALSE(a.clip);
  CHECK(a.probed > 4000);
  const auto r = activation_qdq_of(quantizer::of<r4>());
  CHECK(r.ok());
  CHECK(r.grid.type == onnx_integer_type::uint8);
  CHECK(r.clip);
  CHECK(r.clip_min == 0.0f);
  CHECK(r.clip_max == 3.75f);
  const auto s = activation_qdq_of(quantizer::of<fixed_point<8, 1, true, true>>());  // symmetric: Clip at -127 steps
  CHECK(s.ok());
  CHECK(s.clip);
  CHECK(s.clip_min == -127.0f / 64.0f);  // step 2^-6
  // half away from zero differs at the half-way points; toward zero everywhere between codes
  CHECK_FALSE(activation_qdq_of(quantizer::of<fixed_point<8, 3, true, false, nearest_away>>()).ok());
  CHECK_FALSE(activation_qdq_of(quantizer::of<fixed_point<8, 3, true, false, toward_zero>>()).ok());
  CHECK_FALSE(activation_qdq_of(quantizer::of<fixed_point<8, 3, true, false, stochastic>>()).ok());
  CHECK_FALSE(activation_qdq_of(quantizer::of<fixed_point<12, 3>>()).ok());  // wider than int8
  CHECK_FALSE(activation_qdq_of(quantizer::of<afp8>()).ok());
  CHECK_FALSE(activation_qdq_of(quantizer::of<wpo2>()).ok());
  CHECK_FALSE(activation_qdq_of(quantizer::of<wt>()).ok());  // ternary activations: a dead zone, no QDQ
}

TEST_CASE("the activation probe in onnxruntime: QuantizeLinear/DequantizeLinear give qnas's values bit for bit") {
  // One sample holding every probe input (each code, the half-way points and their neighbours,
  // infinities, ...) through an identity layer with the format as its output quantizer:
  // run_models.js requires the runtime's output to equal qnas's bit for bit.
  const auto probe = [](const std::string& name, const quantizer& q) {
    const onnx_activation_qdq a = activation_qdq_of(q);
    REQUIRE(a.ok());
    write_probe_case(models_dir(), name, q, qnas::detail::activation_probe_inputs(a.grid),
                     [](sequential& net, const fs::path& file) { export_onnx(net, file); });
  };
  probe("probe_fixed_point_8_4", quantizer::of<a8>());
  probe("probe_fixed_relu_8_3", quantizer::of<r8>());
  probe("probe_fixed_relu_4_2", quantizer::of<r4>());  // Clip first
  probe("probe_fixed_point_8_1_symmetric", quantizer::of<fixed_point<8, 1, true, true>>());
  probe("probe_int4", quantizer::of<int4>());
}

TEST_CASE("integer_grid_of: fixed point, ternary and binary are grids; po2 and minifloats are not") {
  CHECK(integer_grid_of(info_of<w4>()).type == onnx_integer_type::int8);
  CHECK(integer_grid_of(info_of<w4>()).step == 0.25f);
  CHECK(integer_grid_of(info_of<uint8>()).type == onnx_integer_type::uint8);
  CHECK(integer_grid_of(info_of<wt>()).step == 0.25f);
  CHECK(integer_grid_of(info_of<wb>()).lo == -1);
  CHECK_FALSE(integer_grid_of(info_of<wpo2>()).ok());
  CHECK_FALSE(integer_grid_of(info_of<afp8>()).ok());
  CHECK_FALSE(integer_grid_of(info_of<fixed_point<16, 4>>()).ok());
  const float vals[] = {0.25f, -0.5f, 0.0f, 1.75f};
  CHECK(exact_codes(vals, integer_grid_of(info_of<w4>())) == std::vector<std::int32_t>{1, -2, 0, 7});
  const float off[] = {0.3f};
  CHECK(exact_codes(off, integer_grid_of(info_of<w4>())).empty());
  const float negzero[] = {-0.0f};
  CHECK(exact_codes(negzero, integer_grid_of(info_of<w4>())).empty());
}

TEST_CASE("a float CNN: Conv, BatchNormalization, pools, Flatten in NHWC order, Gemm, Softmax") {
  auto net = float_cnn();
  const onnx::ModelProto m = to_onnx(*net);
  CHECK(m.ir_version() == onnx_ir_version);
  CHECK(m.opset_import(0).version() == 13);
  auto ops = op_counts(m);
  CHECK(ops["Conv"] == 2);
  CHECK(ops["BatchNormalization"] == 1);
  CHECK(ops["MaxPool"] == 1);
  CHECK(ops["AveragePool"] == 1);
  CHECK(ops["Gemm"] == 2);
  CHECK(ops["Softmax"] == 1);
  CHECK(ops["Sigmoid"] == 2);  // swish and sigmoid
  CHECK(ops["Transpose"] == 2);  // the input to NCHW, the flatten back to NHWC order
  CHECK(ops["QuantizeLinear"] == 0);
  for (const auto& n : m.graph().node())
    if (n.op_type() == "BatchNormalization") CHECK(n.attribute(0).f() == 1e-3f);
  const auto w = write_case("float_cnn", *net, 4, {{"check", "float"}, {"tolerance", 1e-5}});
  CHECK(w.summary.float_weights == 8);  // four weights, four biases
  CHECK(w.summary.qdq_weights == 0);
}

TEST_CASE("depthwise, residual, squeeze-excite, global average pool and asymmetric same padding") {
  auto net = depthwise_residual_net();
  const onnx::ModelProto m = to_onnx(*net);
  auto ops = op_counts(m);
  CHECK(ops["Add"] == 2);  // two residual blocks
  CHECK(ops["GlobalAveragePool"] == 2);  // squeeze-excite's and the network's
  CHECK(ops["Unsqueeze"] == 1);
  bool depthwise = false, asymmetric = false;
  for (const auto& n : m.graph().node())
    for (const auto& a : n.attribute()) {
      if (n.op_type() == "Conv" && a.name() == "group" && a.i() > 1) depthwise = true;
      if (n.op_type() == "AveragePool" && a.name() == "pads")
        asymmetric = a.ints(0) == 0 && a.ints(1) == 0 && a.ints(2) == 1 && a.ints(3) == 1;
    }
  CHECK(depthwise);
  CHECK(asymmetric);
  write_case("depthwise_residual", *net, 3, {{"check", "float"}, {"tolerance", 1e-5}});
}

TEST_CASE("QDQ: fixed-point, ternary and binary weights as int8 codes; fixed-point activations as Q/DQ pairs") {
  auto net = qdq_net();
  onnx_export_summary sum;
  const onnx::ModelProto m = to_onnx(*net, {}, builtin_onnx_ops(), &sum);
  CHECK(sum.qdq_weights == 6);  // three weights, three biases
  CHECK(sum.float_weights == 0);
  CHECK(sum.qdq_activations == 4);
  auto ops = op_counts(m);
  CHECK(ops["QuantizeLinear"] == 4);
  CHECK(ops["DequantizeLinear"] == 10);
  CHECK(ops["Clip"] == 1);  // fixed_relu<4, 2> is narrower than uint8
  const onnx::TensorProto* codes = initializer(m, "layers[0].weights_codes");
  REQUIRE(codes != nullptr);
  CHECK(codes->data_type() == onnx::TensorProto::INT8);
  CHECK(scalar_of(m, "layers[0].weights_scale") == 0.25f);
  CHECK(scalar_of(m, "layers[2].weights_scale") == 0.25f);   // ternary<-2>
  CHECK(scalar_of(m, "layers[5].weights_scale") == 0.125f);  // binary<-3>
  CHECK(scalar_of(m, "layers[0].output_scale") == 1.0f / 32);
  CHECK(initializer(m, "layers[0].output_zero_point")->data_type() == onnx::TensorProto::UINT8);
  // the codes times the scale are the weights qnas computes with, bit for bit
  auto& conv = dynamic_cast<conv2d_layer&>((*net)[0]);
  const xt::xarray<float> wq = qnas::detail::exact_weights(conv, "conv");
  const xt::xarray<float> oihw = xt::transpose(wq, {3, 2, 0, 1});
  REQUIRE(codes->raw_data().size() == oihw.size());
  for (std::size_t i = 0; i < oihw.size(); ++i)
    CHECK(static_cast<float>(static_cast<std::int8_t>(codes->raw_data()[i])) * 0.25f == oihw.data()[i]);
  // the output format's step bounds the difference a float accumulation order can make
  write_case("qdq_fixed_point", *net, 64, {{"check", "quantized"}, {"output_step", 0.125}});
}

TEST_CASE("QDQ through a residual add, depthwise convolution and global average pool") {
  auto net = qdq_residual_net();
  onnx_export_summary sum;
  const onnx::ModelProto m = to_onnx(*net, {}, builtin_onnx_ops(), &sum);
  CHECK(sum.float_weights == 1);  // the depthwise bias (float32)
  CHECK(sum.qdq_activations == 7);
  CHECK(op_counts(m)["Add"] == 1);
  onnx_export_options opt;
  opt.expose_quantized_activations = true;
  const onnx::ModelProto exposed = to_onnx(*net, opt);
  REQUIRE(exposed.graph().output_size() == 5);  // the output, then conv, residual, pool and dense
  CHECK(exposed.graph().output(0).name() == "output");
  CHECK(exposed.graph().output(2).name() == "layers[1]:quantized");
  write_case("qdq_residual", *net, 64, {{"check", "quantized"}, {"output_step", 0.125}}, opt);
}

TEST_CASE("lsq weights: codes + DequantizeLinear with the learned steps as per-axis scales") {
  auto net = lsq_net();
  onnx_export_summary sum;
  const onnx::ModelProto m = to_onnx(*net, {}, builtin_onnx_ops(), &sum);
  CHECK(sum.qdq_weights == 3);  // both weights and the dense bias
  CHECK(sum.float_weights == 1);  // the conv's float bias
  const onnx::TensorProto* scale = initializer(m, "layers[0].weights_scale");
  REQUIRE(scale != nullptr);
  CHECK(scale->dims_size() == 1);
  CHECK(scale->dims(0) == 5);
  auto& conv = dynamic_cast<conv2d_layer&>((*net)[0]);
  for (int c = 0; c < 5; ++c) {
    float v = 0;
    std::memcpy(&v, scale->raw_data().data() + c * sizeof(float), sizeof v);
    CHECK(v == conv.weight_steps().value(c));
  }
  for (const auto& n : m.graph().node())
    if (n.op_type() == "DequantizeLinear" && n.output(0) == "layers[0].weights") {
      REQUIRE(n.attribute_size() == 1);
      CHECK(n.attribute(0).name() == "axis");
      CHECK(n.attribute(0).i() == 0);
    }
  CHECK(initializer(m, "layers[2].weights_scale")->dims_size() == 0);  // per tensor: a scalar
  write_case("lsq_per_channel", *net, 8, {{"check", "quantized"}, {"output_step", 0.125}});
}

TEST_CASE("scales from the data: codes + DequantizeLinear with a scale per output channel found from the values") {
  auto net = scaled_net();
  onnx_export_summary sum;
  const onnx::ModelProto m = to_onnx(*net, {}, builtin_onnx_ops(), &sum);
  CHECK(sum.qdq_weights == 3);
  CHECK(sum.float_weights == 3);  // the float32 biases
  CHECK(initializer(m, "layers[0].weights_scale")->dims(0) == 5);
  CHECK(initializer(m, "layers[1].weights_scale")->dims(0) == 5);  // per tensor in qnas, one per channel here
  CHECK(initializer(m, "layers[3].weights_scale")->dims(0) == 4);
  // codes times their channel's scale are the weights qnas computes with, bit for bit
  auto& conv = dynamic_cast<conv2d_layer&>((*net)[0]);
  const xt::xarray<float> oihw = xt::transpose(qnas::detail::exact_weights(conv, "conv"), {3, 2, 0, 1});
  const onnx::TensorProto* c = initializer(m, "layers[0].weights_codes");
  const onnx::TensorProto* sc = initializer(m, "layers[0].weights_scale");
  REQUIRE(c->raw_data().size() == oihw.size());
  const std::size_t per_channel = oihw.size() / 5;
  for (std::size_t i = 0; i < oihw.size(); ++i) {
    float scale = 0;
    std::memcpy(&scale, sc->raw_data().data() + (i / per_channel) * sizeof(float), sizeof scale);
    const float v = static_cast<float>(static_cast<std::int8_t>(c->raw_data()[i])) * scale;
    CHECK(std::bit_cast<std::uint32_t>(v) == std::bit_cast<std::uint32_t>(oihw.data()[i]));
  }
  // values that are not multiples of one scale (below 128 codes) are refused: they stay float
  std::vector<float> scales;
  std::vector<std::int32_t> codes;
  const float odd[] = {1.0f, std::nextafter(1.0f, 2.0f)};
  CHECK_FALSE(channel_grid(odd, 1, 2, true, 127, scales, codes));
  const float fine[] = {0.75f, -0.25f, 0.0f, 0.5f};
  REQUIRE(channel_grid(fine, 2, 1, true, 127, scales, codes));  // channels alternate: {0.75, 0}, {-0.25, 0.5}
  CHECK(scales == std::vector<float>{0.75f, 0.25f});
  CHECK(codes == std::vector<std::int32_t>{1, -1, 0, 2});
  write_case("scaled_per_channel", *net, 8, {{"check", "quantized"}, {"output_step", 0.125}});
}

TEST_CASE("a format without an integer grid: float weights with metadata; activations refused or left out") {
  auto net = non_integer_net();
  try {
    (void)to_onnx(*net);
    FAIL("expected a refusal");
  } catch (const invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("layers[0] (conv2d)") != std::string::npos);
    CHECK(what.find(quantizer::of<afp8>().name()) != std::string::npos);
    CHECK(what.find("float_fallback") != std::string::npos);
  }
  onnx_export_options opt;
  opt.activations = onnx_activation_policy::float_fallback;
  const onnx::ModelProto m = to_onnx(*net, opt);
  CHECK(metadata(m, "qnas.layers[0].weights").find(quantizer::of<wpo2>().name()) == 0);
  CHECK(metadata(m, "qnas.layers[0].output").find("left out") != std::string::npos);
  // fixed point rounding half away from zero: the weights are exact grid values all the same
  CHECK(metadata(m, "qnas.layers[3].weights").empty());
  CHECK(op_counts(m)["QuantizeLinear"] == 0);
  // the fallback graph computes the network without the quantizer it left out
  write_case("float_fallback", *net, 4, {{"check", "float"}, {"tolerance", 1e-5}}, opt,
             [&] { (*net)[0].set_output_quantizer({}); });
}

TEST_CASE("errors name the layer: no emitter, stochastic weights") {
  struct odd_layer : with_buffers<layer> {
    explicit odd_layer(tensor_shape in) : with_buffers<layer>("odd", in, in) {}
    const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override { return x; }
    const xt::xarray<float>& backward_impl(const xt::xarray<float>& d, bool) override { return d; }
  };
  sequential net(image(4, 4, 1));
  net.emplace<relu_layer>();
  net.emplace<odd_layer>();
  CHECK_THROWS_WITH_AS((void)to_onnx(net), doctest::Contains("layers[1] (odd): no ONNX emitter"), invalid_argument);
  // a user's layer gets an emitter of its own
  onnx_op_registry ops = builtin_onnx_ops();
  ops.add<odd_layer>([](onnx_graph& g, layer&, const layer_description&, const std::string& x, const std::string& path) {
    return onnx_graph::out(g.node("Identity", {x}, path));
  });
  CHECK(op_counts(to_onnx(net, {}, ops))["Identity"] == 1);

  sequential s(flat(4));
  s.emplace<dense_layer>(2, layer_formats{quantizer::of<fixed_point<8, 1, true, false, stochastic>>(), {}, {}});
  CHECK_THROWS_WITH_AS((void)to_onnx(s), doctest::Contains("layers[0] (dense): the weight format"), invalid_argument);
}
