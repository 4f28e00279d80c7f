// onnx/qonnx: export_qonnx writes Quant / BipolarQuant / FloatQuant nodes that compute qnas's formats (proved on probes), with the right attributes; each case is written with an input batch and qnas's output for onnx.checker and the numpy QONNX evaluator (run_qonnx.py).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>

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
#include "qnas/onnx/qonnx.hpp"
#include "onnx_cases.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::nn;
using namespace qnas::onnx_tests;

namespace {

fs::path qonnx_dir() {
  const char* d = std::getenv("QNAS_QONNX_MODELS");
  return d != nullptr ? fs::path(d) : fs::path("qonnx_models");
}

/// A batch whose values lie on the grid of step 2^-4 in [-2, 2): products with grid weights and
/// their sums are then exact in float32, in any order.
xt::xarray<float> grid_batch(std::size_t n, const tensor_shape& s, std::uint64_t seed) {
  std::mt19937_64 e(seed);
  std::uniform_int_distribution<int> u(-32, 31);
  xt::xarray<float> x = xt::empty<float>(qnas::nn::detail::batch_shape(n, s));
  for (auto& v : x) v = static_cast<float>(u(e)) / 16.0f;
  return x;
}

/// Writes <qonnx_dir>/<name>/: model.onnx (QONNX), input.bin, expected.bin, case.json.
onnx_export_summary write_case(const std::string& name, sequential& net, std::size_t batch, const nlohmann::json& check,
                               const qonnx_export_options& opt = {}, const std::function<void()>& before_expected = {}) {
  const fs::path dir = qonnx_dir() / name;
  fs::create_directories(dir);
  const onnx_export_summary sum = export_qonnx(net, dir / "model.onnx", opt);
  const xt::xarray<float> x = grid_batch(batch, net.input_shape(), std::hash<std::string>{}(name));
  if (before_expected) before_expected();
  const xt::xarray<float> y = net.forward(x, false);
  write_case_files(dir, name, x, y, check);
  return sum;
}

const onnx::NodeProto* node_named(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& n : m.graph().node())
    if (n.name() == name) return &n;
  return nullptr;
}
std::string attr_s(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.s();
  return "?";
}
std::int64_t attr_i(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.i();
  return -1;
}
float scalar_of(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) {
      REQUIRE(t.raw_data().size() == sizeof(float));
      float v = 0;
      std::memcpy(&v, t.raw_data().data(), sizeof v);
      return v;
    }
  FAIL("no initializer " << name);
  return 0;
}
std::string metadata(const onnx::ModelProto& m, const std::string& key) {
  for (const auto& p : m.metadata_props())
    if (p.key() == key) return p.value();
  return {};
}

using w4 = fixed_point<4, 1>;   // weights: step 2^-2, codes [-8, 7]
using b8 = fixed_point<8, 3>;   // biases: step 2^-4
using a8 = fixed_point<8, 4>;   // step 2^-3
using r8 = fixed_relu<8, 3>;    // step 2^-5, [0, 255]
using r4 = fixed_relu<4, 2>;    // step 2^-2, [0, 15]
using wt = ternary<-2, 0.125>;  // {-0.25, 0, 0.25}, ties away from zero
using wb = binary<-3>;          // {-0.125, 0.125}
using away8 = fixed_point<8, 3, true, false, nearest_away>;
using zero8 = fixed_point<8, 3, true, false, toward_zero>;
using sym8 = fixed_point<8, 1, true, true>;

/// Every path integer: grid weights, grid inputs, fixed-point outputs of three rounding modes.
std::unique_ptr<sequential> integer_net() {
  auto net = std::make_unique<sequential>(image(8, 8, 2));
  net->emplace<conv2d_layer>(6, 3, 1, padding::same, layer_formats{quantizer::of<w4>(), quantizer::of<b8>(), quantizer::of<r8>()});
  net->emplace<pool_layer>(pool_layer::mode::max, 2, 2);
  net->emplace<depthwise_conv2d_layer>(3, 1, padding::same, layer_formats{quantizer::of<wt>(), quantizer::of<b8>(), quantizer::of<away8>()});
  net->emplace<relu_layer>().set_output_quantizer(quantizer::of<r4>());
  auto body = std::make_unique<sequential>(image(4, 4, 6));
  body->emplace<conv2d_layer>(6, 1, 1, padding::same, layer_formats{quantizer::of<sym8>(), quantizer::of<b8>(), quantizer::of<zero8>()});
  auto& res = net->add(std::make_unique<residual_layer>(std::move(body)));
  res.set_output_quantizer(quantizer::of<a8>());
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(10, layer_formats{quantizer::of<wb>(), quantizer::of<b8>(), quantizer::of<fixed_point<16, 8>>()});
  std::mt19937_64 e(3);
  net->initialize(e);
  return net;
}

}  // namespace

TEST_CASE("qonnx_quantizer_of: fixed point by its rounding policy, ternary, binary, minifloats; the rest refused") {
  const auto q8 = qonnx_quantizer_of(quantizer::of<b8>());
  CHECK(q8.op == qonnx_op::quant);
  CHECK(q8.exact);
  CHECK(q8.bits == 8);
  CHECK(q8.is_signed);
  CHECK_FALSE(q8.narrow);
  CHECK(q8.scale == 0.0625f);
  CHECK(q8.rounding == grid_rounding::half_even);
  CHECK(q8.probed > 1000);
  CHECK(qonnx_quantizer_of(quantizer::of<away8>()).rounding == grid_rounding::half_away);
  CHECK(qonnx_quantizer_of(quantizer::of<zero8>()).rounding == grid_rounding::toward_zero);
  const auto s8 = qonnx_quantizer_of(quantizer::of<sym8>());
  CHECK(s8.exact);
  CHECK(s8.narrow);
  CHECK(s8.lo == -127);
  const auto u8 = qonnx_quantizer_of(quantizer::of<r8>());
  CHECK(u8.exact);
  CHECK_FALSE(u8.is_signed);
  CHECK(u8.hi == 255);
  const auto wide = qonnx_quantizer_of(quantizer::of<fixed_point<16, 8>>());
  CHECK(wide.exact);
  CHECK(wide.bits == 16);
  const auto st = qonnx_quantizer_of(quantizer::of<fixed_point<8, 3, true, false, stochastic>>());
  CHECK(st.op == qonnx_op::quant);
  CHECK_FALSE(st.exact);
  CHECK(st.why.find("stochastically") != std::string::npos);

  const auto t = qonnx_quantizer_of(quantizer::of<wt>());
  CHECK(t.op == qonnx_op::quant);
  CHECK(t.bits == 2);
  CHECK(t.narrow);
  CHECK(t.exact);
  CHECK(t.rounding == grid_rounding::half_away);
  const auto dz = qonnx_quantizer_of(quantizer::of<ternary<>>());  // threshold 0.33 of s = 1: a dead zone
  CHECK(dz.op == qonnx_op::quant);
  CHECK_FALSE(dz.exact);
  MESSAGE("ternary<>: " << dz.why);
  const auto b = qonnx_quantizer_of(quantizer::of<wb>());
  CHECK(b.op == qonnx_op::bipolar_quant);
  CHECK(b.exact);

  const auto f8 = qonnx_quantizer_of(quantizer::of<fp8_e4m3>());
  CHECK(f8.op == qonnx_op::float_quant);
  CHECK(f8.exponent_bits == 4);
  CHECK(f8.mantissa_bits == 3);
  CHECK(f8.exponent_bias == 7);
  CHECK(f8.max_val == 448.0f);
  CHECK(f8.has_nan);
  CHECK_FALSE(f8.has_inf);
  CHECK(f8.exact);
  CHECK(f8.saturation);
  const auto h = qonnx_quantizer_of(quantizer::of<fp16>());
  CHECK(h.has_inf);
  CHECK(h.exact);
  CHECK_FALSE(h.saturation);  // IEEE: overflow to +-inf
  // bf16 reaches below 2^-124, where FloatQuant's exponent floor(log2(|x| + 2^-126)) is not x's
  const auto bf = qonnx_quantizer_of(quantizer::of<bf16>());
  CHECK(bf.op == qonnx_op::float_quant);
  CHECK_FALSE(bf.exact);
  MESSAGE("bf16: " << bf.why);

  CHECK_FALSE(qonnx_quantizer_of(quantizer::of<po2<4, 2.0>>()).ok());
  CHECK_FALSE(qonnx_quantizer_of(quantizer::of<scaled<fixed_point<8, 0, true, true>, alpha_auto>>()).exact);
}

TEST_CASE("the reference of each node: Quant rounding modes, BipolarQuant, FloatQuant with subnormals and overflow") {
  qonnx_quantizer n;
  n.op = qonnx_op::quant;
  n.lo = -128, n.hi = 127, n.scale = 1.0f;
  // the rounding table of QONNX's quant_op.md: 2.5, -2.5, 1.6, -1.1
  struct row {
    grid_rounding r;
    float want[4];
  };
  const row table[] = {{grid_rounding::half_even, {2, -2, 2, -1}},        {grid_rounding::half_away, {3, -3, 2, -1}},
                       {grid_rounding::half_toward_zero, {2, -2, 2, -1}}, {grid_rounding::away, {3, -3, 2, -2}},
                       {grid_rounding::toward_zero, {2, -2, 1, -1}},      {grid_rounding::ceil, {3, -2, 2, -1}},
                       {grid_rounding::floor, {2, -3, 1, -2}}};
  for (const auto& [r, want] : table) {
    n.rounding = r;
    CHECK(n.reference(2.5f, 1.0f) == want[0]);
    CHECK(n.reference(-2.5f, 1.0f) == want[1]);
    CHECK(n.reference(1.6f, 1.0f) == want[2]);
    CHECK(n.reference(-1.1f, 1.0f) == want[3]);
  }
  n.rounding = grid_rounding::half_even;
  CHECK(n.reference(1000.0f, 0.5f) == 63.5f);  // clamped to 127 steps
  n.op = qonnx_op::bipolar_quant;
  CHECK(n.reference(0.0f, 0.25f) == 0.25f);
  CHECK(n.reference(-1e-30f, 0.25f) == -0.25f);
  qonnx_quantizer f = qonnx_quantizer_of(quantizer::of<fp8_e4m3>());
  CHECK(f.reference(464.0f, 1.0f) == 448.0f);          // the tie goes to 448 (even mantissa)
  CHECK(f.reference(std::ldexp(1.0f, -9), 1.0f) == std::ldexp(1.0f, -9));  // the smallest subnormal
  CHECK(f.reference(std::ldexp(1.0f, -11), 1.0f) == 0.0f);                // a quarter of it
  CHECK(f.reference(0.3f, 1.0f) == 0.3125f);
  f.saturation = true;
  CHECK(f.reference(1e6f, 1.0f) == 448.0f);
}

TEST_CASE("QONNX: integer network; weights as Quant / BipolarQuant on exact values, outputs as Quant with their rounding") {
  auto net = integer_net();
  onnx_export_summary sum;
  const onnx::ModelProto m = to_qonnx(*net, {}, builtin_onnx_ops(), &sum);
  REQUIRE(m.opset_import_size() == 2);
  CHECK(m.opset_import(1).domain() == "qonnx.custom_op.general");
  CHECK(m.opset_import(1).version() == 1);
  CHECK(sum.qdq_weights == 8);      // 4 weights + 4 biases
  CHECK(sum.float_weights == 0);
  CHECK(sum.qdq_activations == 6);  // r8, away8, r4, zero8, a8, fixed_point<16, 8>
  const auto ops = op_counts(m);
  CHECK(ops.at("Quant") == 13);
  CHECK(ops.at("BipolarQuant") == 1);
  CHECK(ops.count("QuantizeLinear") == 0);
  CHECK(ops.count("DequantizeLinear") == 0);
  for (const auto& n : m.graph().node())
    if (n.op_type() == "Quant" || n.op_type() == "BipolarQuant") CHECK(n.domain() == qonnx_domain);

  const onnx::NodeProto* w = node_named(m, "layers[0].weights/Quant");
  REQUIRE(w != nullptr);
  CHECK(attr_i(*w, "signed") == 1);
  CHECK(attr_i(*w, "narrow") == 0);
  CHECK(scalar_of(m, w->input(1)) == 0.25f);
  CHECK(scalar_of(m, w->input(3)) == 4.0f);
  const onnx::NodeProto* o0 = node_named(m, "layers[0].output/Quant");
  REQUIRE(o0 != nullptr);
  CHECK(attr_i(*o0, "signed") == 0);
  CHECK(attr_s(*o0, "rounding_mode") == "ROUND");
  CHECK(scalar_of(m, o0->input(1)) == 0.03125f);
  REQUIRE(node_named(m, "layers[2].output/Quant") != nullptr);
  CHECK(attr_s(*node_named(m, "layers[2].output/Quant"), "rounding_mode") == "HALF_UP");
  const onnx::NodeProto* t = node_named(m, "layers[2].weights/Quant");
  REQUIRE(t != nullptr);
  CHECK(attr_i(*t, "narrow") == 1);
  CHECK(scalar_of(m, t->input(3)) == 2.0f);
  const onnx::NodeProto* body = node_named(m, "layers[4].body[0].output/Quant");
  REQUIRE(body != nullptr);
  CHECK(attr_s(*body, "rounding_mode") == "DOWN");
  REQUIRE(node_named(m, "layers[4].body[0].weights/Quant") != nullptr);
  CHECK(attr_i(*node_named(m, "layers[4].body[0].weights/Quant"), "narrow") == 1);
  CHECK(node_named(m, "layers[6].weights/BipolarQuant") != nullptr);
  REQUIRE(node_named(m, "layers[6].output/Quant") != nullptr);
  CHECK(scalar_of(m, node_named(m, "layers[6].output/Quant")->input(3)) == 16.0f);
  write_case("qonnx_integer", *net, 16, {{"check", "exact"}});
}

TEST_CASE("QONNX: minifloat weights and outputs as FloatQuant") {
  auto net = std::make_unique<sequential>(image(6, 6, 2));
  net->emplace<conv2d_layer>(4, 3, 1, padding::same, layer_formats{quantizer::of<fp8_e4m3>(), {}, quantizer::of<fp8_e4m3>()});
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(5, layer_formats{quantizer::of<fp16>(), quantizer::of<fp6_e3m2>(), quantizer::of<fp16>()});
  std::mt19937_64 e(8);
  net->initialize(e);
  onnx_export_summary sum;
  const onnx::ModelProto m = to_qonnx(*net, {}, builtin_onnx_ops(), &sum);
  CHECK(sum.qdq_weights == 3);
  CHECK(sum.qdq_activations == 2);
  CHECK(op_counts(m).at("FloatQuant") == 5);
  const onnx::NodeProto* f = node_named(m, "layers[0].output/FloatQuant");
  REQUIRE(f != nullptr);
  CHECK(scalar_of(m, f->input(2)) == 4.0f);    // exponent bits
  CHECK(scalar_of(m, f->input(3)) == 3.0f);    // mantissa bits
  CHECK(scalar_of(m, f->input(4)) == 7.0f);    // exponent bias
  CHECK(scalar_of(m, f->input(5)) == 448.0f);  // max_val
  CHECK(attr_i(*f, "has_subnormal") == 1);
  write_case("qonnx_minifloat", *net, 8, {{"check", "float"}, {"tolerance", 1e-5}});
}

TEST_CASE("QONNX: learned and data-dependent scales as per-channel Quant scales") {
  auto net = std::make_unique<sequential>(image(6, 6, 3));
  net->emplace<conv2d_layer>(5, 3, 2, padding::same,
                             layer_formats{quantizer::of<lsq<fixed_point<4, 3, true, true>>>(), {}, quantizer::of<a8>()});
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(4, layer_formats{quantizer::of<scaled<fixed_point<8, 0, true, true>, alpha_auto_po2<>>>(),
                                             quantizer::of<b8>(), quantizer::of<a8>()});
  std::mt19937_64 e(5);
  net->initialize(e);
  onnx_export_summary sum;
  const onnx::ModelProto m = to_qonnx(*net, {}, builtin_onnx_ops(), &sum);
  CHECK(sum.qdq_weights == 3);  // two weights, the dense bias
  CHECK(sum.float_weights == 1);  // the conv's float bias
  for (const std::string name : {"layers[0].weights/Quant", "layers[2].weights/Quant"}) {
    const onnx::NodeProto* n = node_named(m, name);
    for (const auto& p : m.metadata_props()) MESSAGE(p.key() << ": " << p.value());
    REQUIRE_MESSAGE(n != nullptr, name);
    for (const auto& t : m.graph().initializer())
      if (t.name() == n->input(1)) CHECK(t.dims_size() >= 2);  // [C,1,1,1] or [1,C]
  }
  write_case("qonnx_scales", *net, 8, {{"check", "float"}, {"tolerance", 1e-5}});
}

TEST_CASE("QONNX: formats without a node: float weights + metadata, activations refused or left out") {
  auto make = [] {
    auto net = std::make_unique<sequential>(image(6, 6, 2));
    net->emplace<conv2d_layer>(4, 3, 1, padding::same, layer_formats{quantizer::of<po2<4, 2.0>>(), {}, quantizer::of<po2<4, 2.0>>()});
    net->emplace<flatten_layer>();
    net->emplace<dense_layer>(3, layer_formats{quantizer::of<fixed_point<8, 1, true, false, stochastic>>(), {}, {}});
    std::mt19937_64 e(4);
    net->initialize(e);
    return net;
  };
  auto net = make();
  CHECK_THROWS_WITH_AS((void)to_qonnx(*net),
                       doctest::Contains("qnas::export_qonnx: layers[0] (conv2d): the output format po2"), invalid_argument);
  qonnx_export_options opt;
  opt.activations = onnx_activation_policy::float_fallback;
  CHECK_THROWS_WITH_AS((void)to_qonnx(*net, opt),
                       doctest::Contains("qnas::export_qonnx: layers[2] (dense): the weight format fixed_point<8,1,stochastic> rounds stochastically"),
                       invalid_argument);

  auto net2 = std::make_unique<sequential>(image(6, 6, 2));
  net2->emplace<conv2d_layer>(4, 3, 1, padding::same, layer_formats{quantizer::of<po2<4, 2.0>>(), {}, quantizer::of<po2<4, 2.0>>()});
  net2->emplace<relu_layer>();
  net2->emplace<flatten_layer>();
  net2->emplace<dense_layer>(3, layer_formats{quantizer::of<ternary<>>(), {}, quantizer::of<ternary<>>()});
  std::mt19937_64 e(9);
  net2->initialize(e);
  onnx_export_summary sum;
  const onnx::ModelProto m = to_qonnx(*net2, opt, builtin_onnx_ops(), &sum);
  CHECK(metadata(m, "qnas.layers[0].weights").find("po2") != std::string::npos);
  CHECK(metadata(m, "qnas.layers[0].output").find("left out") != std::string::npos);
  CHECK(metadata(m, "qnas.layers[3].output").find("left out") != std::string::npos);  // the dead zone
  CHECK(node_named(m, "layers[3].weights/Quant") != nullptr);  // ternary weights: exact values
  CHECK(sum.float_fallbacks == 2);
  write_case("qonnx_fallback", *net2, 4, {{"check", "float"}, {"tolerance", 1e-5}}, opt, [&] {
    (*net2)[0].set_output_quantizer({});
    (*net2)[3].set_output_quantizer({});
  });
}

TEST_CASE("the probes through the QONNX evaluator: every exact format's node gives qnas's values on every probe input") {
  // One sample holding every probe input through a flatten layer with the format as its output
  // quantizer; run_qonnx.py computes the node from QONNX's documented formula and must give
  // qnas's values exactly (-0 equal to +0).
  const auto probe = [](const std::string& name, const quantizer& q) {
    const qonnx_quantizer n = qonnx_quantizer_of(q);
    REQUIRE_MESSAGE(n.exact, name << ": " << n.why);
    const std::vector<float> xs = n.op == qonnx_op::float_quant ? qnas::detail::float_probe_inputs(n)
                                                                : qnas::detail::grid_probe_inputs(n.scale, n.lo, n.hi);
    write_probe_case(qonnx_dir(), name, q, xs, [](sequential& net, const fs::path& file) { export_qonnx(net, file); });
  };
  probe("probe_fixed_point_8_3", quantizer::of<b8>());
  probe("probe_fixed_point_8_3_nearest_away", quantizer::of<away8>());
  probe("probe_fixed_point_8_3_toward_zero", quantizer::of<zero8>());
  probe("probe_fixed_point_8_1_symmetric", quantizer::of<sym8>());
  probe("probe_fixed_relu_4_2", quantizer::of<r4>());
  probe("probe_fixed_point_16_8", quantizer::of<fixed_point<16, 8>>());
  probe("probe_ternary_s2", quantizer::of<wt>());
  probe("probe_binary", quantizer::of<wb>());
  probe("probe_binary01", quantizer::of<binary01<0>>());
  probe("probe_fp8_e4m3", quantizer::of<fp8_e4m3>());
  probe("probe_fp8_e5m2", quantizer::of<fp8_e5m2>());
  probe("probe_fp6_e3m2", quantizer::of<fp6_e3m2>());
  probe("probe_fp4_e2m1", quantizer::of<fp4_e2m1>());
  probe("probe_fp16", quantizer::of<fp16>());
}
