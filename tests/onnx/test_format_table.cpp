// onnx/formats: what the ONNX (QDQ), QONNX and hls4ml exports make of every built-in format, as weights and as an output quantizer; the table in docs/onnx.md must say the same (this test writes the table and checks each row is in the page).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/bfp_nonuniform.hpp"
#include "qnas/formats/bfp_outlier.hpp"
#include "qnas/formats/binary.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/scaled.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/onnx/hls4ml.hpp"
#include "qnas/onnx/qonnx.hpp"

namespace fs = std::filesystem;
using namespace qnas;

namespace {

std::string number(float x) {
  int e = 0;
  if (x > 0.0f && std::frexp(x, &e) == 0.5f) return "2^" + std::to_string(e - 1);
  std::ostringstream os;
  os.precision(9);
  os << x;
  return os.str();
}

template <number_format F>
std::string weights_text() {
  const quantizer q = quantizer::of<F>();
  if (q.needs_engine()) return "refused: rounds stochastically, so inference has no fixed weights";
  if (q.learned())
    return F::bits <= 8 ? "int8 codes + DequantizeLinear, the layer's learned steps as per-axis scales"
                        : "float initializer (exact values) + metadata: its codes do not fit int8 or uint8";
  const onnx_integer_grid g = integer_grid_of(q.info());
  if (g.ok()) return std::string(to_string(g.type)) + " codes + DequantizeLinear, scale " + number(g.step);
  const format_info& f = q.info();
  const bool grid_family = f.family == format_family::fixed_point || f.family == format_family::ternary ||
                           f.family == format_family::binary || f.family == format_family::binary01;
  if (q.whole_tensor() && grid_family && f.bits <= 8 && f.block_size == 1)
    return std::string(f.min_value < 0 ? "int8" : "uint8") +
           " codes + DequantizeLinear, a scale per output channel found from the values (float + metadata where none gives "
           "every value back)";
  return "float initializer (exact values) + metadata: " + g.why;
}

template <number_format F>
std::string activations_text() {
  const quantizer q = quantizer::of<F>();
  if (q.learned()) return "not an output format (qnas keeps learned steps for weights only)";
  const onnx_activation_qdq a = activation_qdq_of(q);
  if (!a.ok()) return "refused (float_fallback: left out): " + a.why;
  std::string s = a.clip ? "Clip(" + number(a.clip_min) + ", " + number(a.clip_max) + ") + " : "";
  return s + "QuantizeLinear + DequantizeLinear, " + to_string(a.grid.type) + ", scale " + number(a.grid.step);
}

std::string qonnx_node_text(const qonnx_quantizer& n, bool with_rounding) {
  switch (n.op) {
    case qonnx_op::quant:
      return "Quant(" + std::to_string(n.bits) + (n.bits == 1 ? " bit, " : " bits, ") + (n.is_signed ? "signed" : "unsigned") +
             (n.narrow ? ", narrow" : "") + (with_rounding ? std::string(", ") + qonnx_rounding_mode(n.rounding) : "") + ")";
    case qonnx_op::bipolar_quant: return "BipolarQuant";
    case qonnx_op::float_quant:
      return "FloatQuant(E" + std::to_string(n.exponent_bits) + "M" + std::to_string(n.mantissa_bits) + ", bias " +
             std::to_string(n.exponent_bias) + ", max_val " + number(n.max_val) + (n.has_inf ? ", has_infinity" : "") +
             (n.has_nan ? ", has_nan" : "") + (n.saturation ? ", saturating" : ", not saturating") + ")";
    case qonnx_op::none: break;
  }
  return "?";
}

template <number_format F>
std::string qonnx_weights_text() {
  const quantizer q = quantizer::of<F>();
  if (q.needs_engine()) return "refused: rounds stochastically, so inference has no fixed weights";
  const qonnx_quantizer n = qonnx_quantizer_of(q);
  if (!n.ok() || (n.op == qonnx_op::float_quant && !n.exact)) return "float initializer (exact values) + metadata: " + n.why;
  if (q.learned()) return qonnx_node_text(n, false) + ", the layer's learned steps as the scale (per output channel, or one)";
  if (q.whole_tensor())
    return qonnx_node_text(n, false) + ", a scale per output channel found from the values (float + metadata where none "
                                       "gives every value back)";
  if (n.op == qonnx_op::float_quant) return qonnx_node_text(n, false);
  return qonnx_node_text(n, false) + ", scale " + number(n.scale);
}

template <number_format F>
std::string qonnx_activations_text() {
  const quantizer q = quantizer::of<F>();
  if (q.learned()) return "not an output format";
  const qonnx_quantizer n = qonnx_quantizer_of(q);
  if (!n.exact) return "refused (float_fallback: left out): " + n.why;
  return qonnx_node_text(n, true) + (n.op == qonnx_op::float_quant ? "" : ", scale " + number(n.scale));
}

template <number_format F>
std::string hls4ml_text() {
  const quantizer q = quantizer::of<F>();
  const hls4ml_type w = hls4ml_type_of(q.info());
  std::string s = w.ok() ? "`" + w.type + "`" : "refused: " + w.why;
  if (q.learned() || !w.ok()) return s;
  const hls4ml_type o = hls4ml_output_type_of(q);
  return s + "; output " + (o.ok() ? "`" + o.type + "`" : "refused: " + o.why);
}

template <number_format F>
std::string row() {
  return "| `" + F::name() + "` | " + weights_text<F>() + " | " + activations_text<F>() + " | " + qonnx_weights_text<F>() +
         " | " + qonnx_activations_text<F>() + " | " + hls4ml_text<F>() + " |";
}

template <number_format... F>
std::vector<std::string> rows() {
  return {row<F>()...};
}

}  // namespace

TEST_CASE("docs/onnx.md lists what the ONNX, QONNX and hls4ml exports make of every built-in format") {
  const std::vector<std::string> table = rows<
      // fixed point (QKeras quantized_bits / quantized_relu)
      fixed_point<8, 3>, int8, int4, uint8, fixed_relu<4, 2>, fixed_point<8, 1, true, true>,
      fixed_point<8, 3, true, false, nearest_away>, fixed_point<8, 3, true, false, toward_zero>,
      fixed_point<8, 3, true, false, stochastic>, fixed_point<16, 8>,
      // ternary and binary
      ternary<-2, 0.125>, ternary<>, binary<-3>, binary01<0>, binary_use01<0>,
      // powers of two
      po2<4, 2.0>, relu_po2<4>, po2_quadratic<4>,
      // minifloats
      fp16, bf16, fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4_e2m1,
      // block formats
      msfp12, msfp16, bfp_nonuniform<4, 16>, bfp_outlier<4, 16, 1, 4>, mxint8, mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2,
      mxfp6_e2m3, mxfp4,
      // scales from the data or learned
      scaled<fixed_point<8, 0, true, true>, alpha_auto>, scaled<fixed_point<4, 0, true, true>, alpha_auto_po2<>>,
      scaled<ternary<0>, alpha_auto>, scaled<binary<0>, alpha_const<0.5>>, lsq<fixed_point<4, 3, true, true>>,
      lsq<fixed_point<8, 7, true, true>, per_tensor>, lsq<fixed_point<12, 11, true, true>>>();
  std::string text =
      "| format | ONNX weights | ONNX activations (output quantizer) | QONNX weights | QONNX activations | hls4ml "
      "(weight, bias / output type) |\n|---|---|---|---|---|---|\n";
  for (const auto& r : table) text += r + "\n";
  const char* out = std::getenv("QNAS_ONNX_MODELS");
  const fs::path dir = out != nullptr ? fs::path(out) : fs::path("onnx_models");
  fs::create_directories(dir);
  std::ofstream(dir / "format_table.md") << text;

  const char* src = std::getenv("QNAS_SOURCE_DIR");
  REQUIRE_MESSAGE(src != nullptr, "QNAS_SOURCE_DIR names the source tree (set by tests/onnx/CMakeLists.txt)");
  std::ifstream f(fs::path(src) / "docs" / "onnx.md");
  REQUIRE_MESSAGE(f.good(), "docs/onnx.md is missing");
  std::stringstream doc;
  doc << f.rdbuf();
  for (const auto& r : table) CHECK_MESSAGE(doc.str().find(r) != std::string::npos, "docs/onnx.md lacks the row\n" << r);
}
