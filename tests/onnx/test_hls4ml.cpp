// onnx/hls4ml: the hls4ml precision configuration: ap types of qnas formats from a hand-derived table, accumulators from the energy model's MAC rule, node names of the QONNX file, refusals naming the layer and format.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "qnas/formats/binary.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/scaled.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/nn/conv2d.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/onnx/hls4ml.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::nn;

namespace {

template <number_format F>
std::string type_of() {
  const hls4ml_type t = hls4ml_type_of(info_of<F>());
  return t.ok() ? t.type : "refused: " + t.why;
}
template <number_format F>
std::string output_type_of() {
  const hls4ml_type t = hls4ml_output_type_of(quantizer::of<F>());
  return t.ok() ? t.type : "refused: " + t.why;
}

using w4 = fixed_point<4, 1>;   // step 2^-2
using b8 = fixed_point<8, 3>;   // step 2^-4
using r8 = fixed_relu<8, 3>;    // step 2^-5, unsigned
using w6 = fixed_point<6, 2>;   // step 2^-3
using a8 = fixed_point<8, 4>;   // step 2^-3

std::unique_ptr<sequential> small_net() {
  auto net = std::make_unique<sequential>(image(4, 4, 1));
  net->emplace<conv2d_layer>(2, 3, 1, padding::same, layer_formats{quantizer::of<w4>(), quantizer::of<b8>(), quantizer::of<r8>()});
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(3, layer_formats{quantizer::of<w6>(), quantizer::of<b8>(), quantizer::of<a8>()});
  std::mt19937_64 e(1);
  net->initialize(e);
  return net;
}

}  // namespace

TEST_CASE("hls4ml types of fixed point: I counts the sign bit (a hand-derived table)") {
  // qnas fixed_point<W, I> has I integer bits besides the sign: step 2^(I - W + 1), so hls4ml's
  // integer part (with the sign) is I + 1; unsigned fixed_relu<W, I>: step 2^(I - W), integer part I.
  CHECK(type_of<fixed_point<8, 3>>() == "ap_fixed<8,4>");
  CHECK(type_of<fixed_point<4, 1>>() == "ap_fixed<4,2>");
  CHECK(type_of<fixed_point<8, 0>>() == "ap_fixed<8,1>");
  CHECK(type_of<fixed_point<16, 8>>() == "ap_fixed<16,9>");
  CHECK(type_of<fixed_point<8, 1, true, true>>() == "ap_fixed<8,2>");  // symmetric: the values fit
  CHECK(type_of<fixed_relu<8, 3>>() == "ap_ufixed<8,3>");
  CHECK(type_of<fixed_relu<4, 2>>() == "ap_ufixed<4,2>");
  CHECK(type_of<fixed_relu<8, 0>>() == "ap_ufixed<8,0>");
  CHECK(type_of<int8>() == "ap_int<8>");
  CHECK(type_of<int4>() == "ap_int<4>");
  CHECK(type_of<uint8>() == "ap_uint<8>");
  CHECK(type_of<ternary<0>>() == "ap_int<2>");
  CHECK(type_of<ternary<-2, 0.125>>() == "ap_fixed<2,0>");  // {-0.25, 0, 0.25}: step 2^-2
  CHECK(type_of<binary<0>>() == "ap_int<2>");               // {-1, 1}
  CHECK(type_of<binary01<0>>() == "ap_uint<1>");
  CHECK(type_of<fp8_e4m3>().find("refused: the floating family") == 0);
  CHECK(type_of<po2<4, 2.0>>().find("refused: the po2 family") == 0);
  CHECK(type_of<scaled<fixed_point<8, 0, true, true>, alpha_auto>>().find("refused: its scales follow the data") == 0);

  CHECK(output_type_of<fixed_point<8, 3>>() == "ap_fixed<8,4,AP_RND_CONV,AP_SAT>");
  CHECK(output_type_of<fixed_point<8, 3, true, false, nearest_away>>() == "ap_fixed<8,4,AP_RND_INF,AP_SAT>");
  CHECK(output_type_of<fixed_point<8, 3, true, false, toward_zero>>() == "ap_fixed<8,4,AP_TRN_ZERO,AP_SAT>");
  CHECK(output_type_of<fixed_point<8, 1, true, true>>() == "ap_fixed<8,2,AP_RND_CONV,AP_SAT_SYM>");
  CHECK(output_type_of<fixed_relu<8, 3>>() == "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>");
  CHECK(output_type_of<int8>() == "ap_fixed<8,8,AP_RND_CONV,AP_SAT>");
  CHECK(output_type_of<fixed_point<8, 3, true, false, stochastic>>() == "refused: it rounds stochastically");
  CHECK(output_type_of<binary<0>>().find("refused: its values are +-s without zero") == 0);
}

TEST_CASE("hls4ml config of a small network: the hand-derived file") {
  auto net = small_net();
  hls4ml_options o;
  o.input_format = info_of<fixed_point<8, 3>>();  // step 2^-4: ap_fixed<8,4>
  // conv: 4-bit x 8-bit multiplier, 12-bit products, fan-in 3*3*1 + bias = 10 -> 12 + 4 = 16
  // bits; fraction bits 2 + 4 = 6. dense: 6-bit x 8-bit (r8), 14-bit products, fan-in
  // 4*4*2 + 1 = 33 -> 14 + 6 = 20 bits; fraction bits 3 + 5 = 8.
  const nlohmann::json want = nlohmann::json::parse(R"({
    "Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1},
    "LayerName": {
      "input": {"Precision": {"result": "ap_fixed<8,4>"}},
      "layers[0]/Conv": {"Precision": {"weight": "ap_fixed<4,2>", "bias": "ap_fixed<8,4>",
                                       "accum": "ap_fixed<16,10>", "result": "ap_fixed<16,10>"}},
      "layers[0].output/Quant": {"Precision": {"result": "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>"}},
      "layers[2]/Gemm": {"Precision": {"weight": "ap_fixed<6,3>", "bias": "ap_fixed<8,4>",
                                       "accum": "ap_fixed<20,12>", "result": "ap_fixed<20,12>"}},
      "layers[2].output/Quant": {"Precision": {"result": "ap_fixed<8,5,AP_RND_CONV,AP_SAT>"}}
    }})");
  hls4ml_summary sum;
  const nlohmann::json got = hls4ml_config(*net, o, &sum);
  CHECK_MESSAGE(got == want, got.dump(2));
  CHECK(sum.layers == 5);
  CHECK(sum.notes.empty());
  // every name is a node of the QONNX file
  const onnx::ModelProto m = to_qonnx(*net);
  for (const auto& [name, entry] : got["LayerName"].items()) {
    if (name == "input") continue;
    bool found = false;
    for (const auto& n : m.graph().node()) found = found || n.name() == name;
    CHECK_MESSAGE(found, name);
  }
  // the file parses back to the same value
  const char* dir = std::getenv("QNAS_QONNX_MODELS");
  const fs::path out = fs::path(dir != nullptr ? dir : "qonnx_models") / "hls4ml_small.json";
  fs::create_directories(out.parent_path());
  o.reuse_factor = 4;
  export_hls4ml_config(*net, out, o);
  std::ifstream f(out);
  const nlohmann::json back = nlohmann::json::parse(f);
  CHECK(back["Model"]["ReuseFactor"] == 4);
  CHECK(back["LayerName"] == want["LayerName"]);
}

TEST_CASE("hls4ml: formats without an ap type are refused naming the layer, or left at the model precision") {
  auto net = small_net();
  // a float input: the first accumulator is a float
  CHECK_THROWS_WITH_AS((void)hls4ml_config(*net),
                       doctest::Contains("qnas::export_hls4ml_config: layers[0] (conv2d): the accum format"), invalid_argument);
  sequential s(flat(4));
  s.emplace<dense_layer>(2, layer_formats{quantizer::of<po2<4, 2.0>>(), {}, quantizer::of<fixed_point<8, 3>>()});
  std::mt19937_64 e(2);
  s.initialize(e);
  hls4ml_options o;
  o.input_format = info_of<fixed_point<8, 3>>();
  CHECK_THROWS_WITH_AS((void)hls4ml_config(s, o),
                       doctest::Contains("layers[0] (dense): the weight format po2"), invalid_argument);
  o.unsupported = hls4ml_policy::model_default;
  hls4ml_summary sum;
  const nlohmann::json c = hls4ml_config(s, o, &sum);
  CHECK(sum.notes.size() == 4);  // weight, bias (float32), accum, result
  CHECK(c["LayerName"].contains("layers[0].output/Quant"));
  CHECK_FALSE(c["LayerName"].contains("layers[0]/Gemm"));
  o.reuse_factor = 0;
  CHECK_THROWS_AS((void)hls4ml_config(s, o), invalid_argument);
}
