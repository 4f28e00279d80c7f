// Rescaling the outputs of a layer whose weights (or input) carry a scale outside the element
// codes (scaled<>, lsq<>): a float scale costs one float32 multiply per output, a power-of-two
// scale is a shift and costs nothing (qtools adds no operator for alpha='auto_po2'). The MACs
// are priced on the unit codes either way. Hand-derived numbers under horowitz_45nm; qtools
// itself charges no rescale, and qtools_compat follows it (charges_rescale = false).
#include <doctest/doctest.h>

#include <memory>
#include <tuple>
#include <utility>

#include "qnas/energy.hpp"
#include "qnas/nn/energy.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/formats/scaled.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/nn.hpp"

using namespace qnas;
namespace en = qnas::energy;

namespace {
constexpr bool near(double a, double b, double tol = 1e-9) { return (a > b ? a - b : b - a) <= tol; }

using unit4 = fixed_point<4, 0, true, true>;
using w_auto = scaled<unit4, alpha_auto>;
using w_po2 = scaled<unit4, alpha_auto_po2<>>;
using w_lsq = lsq<unit4>;
using w_quarter = scaled<unit4, alpha_const<0.25>>;  // 2^-2: a shift
using w_tenth = scaled<unit4, alpha_const<0.1>>;     // not a power of two: a multiply

// ---- what each format declares --------------------------------------------------------------
static_assert(info_of<unit4>().group_scale == scale_kind::none);
static_assert(info_of<int8>().group_scale == scale_kind::none);
static_assert(float32_info.group_scale == scale_kind::none);
static_assert(info_of<w_auto>().group_scale == scale_kind::floating);
static_assert(info_of<scaled<unit4, alpha_auto, per_tensor>>().group_scale == scale_kind::floating);
static_assert(info_of<scaled<ternary<>, alpha_auto>>().group_scale == scale_kind::floating);
static_assert(info_of<w_po2>().group_scale == scale_kind::power_of_two);
static_assert(info_of<scaled<unit4, alpha_auto_po2<-4, 4>>>().group_scale == scale_kind::power_of_two);
static_assert(info_of<w_lsq>().group_scale == scale_kind::floating);
static_assert(info_of<w_quarter>().group_scale == scale_kind::power_of_two);
static_assert(info_of<scaled<unit4, alpha_const<1.0>>>().group_scale == scale_kind::power_of_two);
static_assert(info_of<scaled<unit4, alpha_const<8.0>>>().group_scale == scale_kind::power_of_two);
static_assert(info_of<w_tenth>().group_scale == scale_kind::floating);
static_assert(info_of<scaled<unit4, alpha_const<3.0>>>().group_scale == scale_kind::floating);
// The MAC operands are the unit codes: the same format_info as the unit apart from range and scale.
static_assert(info_of<w_auto>().bits == 4 && info_of<w_auto>().family == format_family::fixed_point);

constexpr format_info i8 = info_of<int8>();
constexpr format_info acc16 = info_of<fixed_point<16, 15>>();

// dense 16 -> 8, no bias: 128 MACs, 8 outputs. 4-bit x 8-bit multiplier: gate bits sqrt(32),
// mul_pj = a*32 + b*sqrt(32) = 0.0958333.. + 0.0058925.. = 0.1017259 pJ; product 12 bits,
// accumulator 12 + ceil(log2 16) = 16 bits, add_pj(16) = 0.05 pJ.
//   op(fixed 4-bit) = 128 * (0.1017259 + 0.05)       = 19.4209139 pJ
//   op(float scale) = 19.4209139 + 8 * 3.7 (fp32 mul) = 49.0209139 pJ
constexpr en::layer_desc dense_with(const format_info& w, const format_info& x = i8) {
  return en::dense("fc", {1, 1, 16}, 8, false).with_formats(w, float32_info, x, acc16);
}
// conv2d 8x8x3 -> 4 filters, 3x3, stride 1, same, no bias: 256 outputs, fan-in 27,
// 6912 MACs; accumulator 12 + ceil(log2 27) = 17 bits, add_pj(17) = 0.053125 pJ.
//   op(fixed 4-bit) = 6912 * (0.1017259 + 0.053125)    = 1070.3293506 pJ
//   op(float scale) = 1070.3293506 + 256 * 3.7         = 2017.5293506 pJ
constexpr en::layer_desc conv_with(const format_info& w, const format_info& x = i8) {
  return en::conv2d("conv", {8, 8, 3}, 4, 3, 1, en::padding::same, false).with_formats(w, float32_info, x, acc16);
}
constexpr double dense_fixed_op = 19.420913899932316, dense_scaled_op = 49.02091389993232;
constexpr double conv_fixed_op = 1070.3293505963452, conv_scaled_op = 2017.5293505963452;

template <class T = en::horowitz_45nm>
constexpr en::layer_energy price(const en::layer_desc& l) {
  return en::price_layer<T>(l);
}

// The compile-time path: the same numbers in a constant expression.
static_assert(near(price(dense_with(info_of<unit4>())).op, dense_fixed_op));
static_assert(near(price(dense_with(info_of<w_auto>())).op, dense_scaled_op));
static_assert(price(dense_with(info_of<w_auto>())).rescales == 8);
static_assert(near(price(conv_with(info_of<w_auto>())).op, conv_scaled_op, 1e-7));
static_assert(price(dense_with(info_of<w_po2>())).op == price(dense_with(info_of<unit4>())).op);
static_assert(price(dense_with(info_of<w_po2>())).rescales == 0);
static_assert(en::rescale_pj<en::horowitz_45nm>() == 3.7 && en::rescale_pj<en::qtools_compat>() == 3.7);
}  // namespace

TEST_CASE("rescale: a float alpha_auto weight scale costs one fp32 multiply per output") {
  for (const auto& [fixed, scaled_l, fixed_op, scaled_op, outputs] :
       {std::tuple{dense_with(info_of<unit4>()), dense_with(info_of<w_auto>()), dense_fixed_op, dense_scaled_op, 8LL},
        std::tuple{conv_with(info_of<unit4>()), conv_with(info_of<w_auto>()), conv_fixed_op, conv_scaled_op, 256LL}}) {
    const en::layer_energy f = price(fixed), s = price(scaled_l);
    CHECK(near(f.op, fixed_op, 1e-7));
    CHECK(near(s.op, scaled_op, 1e-7));
    CHECK(near(s.op - f.op, static_cast<double>(outputs) * 3.7, 1e-7));
    CHECK(s.rescales == outputs);
    CHECK(f.rescales == 0);
    // Everything else is the unit format's: operator, accumulator, MACs, parameter and input reads.
    CHECK(s.mac == f.mac);
    CHECK(s.accumulator_bits == f.accumulator_bits);
    CHECK(s.macs == f.macs);
    CHECK(s.parameters == f.parameters);
    CHECK(s.inputs == f.inputs);
  }
}

TEST_CASE("rescale: an alpha_auto_po2 scale is a shift and costs nothing") {
  for (const auto& [fixed, po2_l] : {std::pair{dense_with(info_of<unit4>()), dense_with(info_of<w_po2>())},
                                     std::pair{conv_with(info_of<unit4>()), conv_with(info_of<w_po2>())}}) {
    const en::layer_energy f = price(fixed), p = price(po2_l);
    CHECK(p.all() == f.all());
    CHECK(p.op == f.op);
    CHECK(p.rescales == 0);
  }
  CHECK(near(price(dense_with(info_of<w_po2>())).op, dense_fixed_op));
  CHECK(near(price(conv_with(info_of<w_po2>())).op, conv_fixed_op, 1e-7));
}

TEST_CASE("rescale: lsq's learned float step costs one fp32 multiply per output") {
  CHECK(near(price(dense_with(info_of<w_lsq>())).op, dense_scaled_op));
  CHECK(near(price(conv_with(info_of<w_lsq>())).op, conv_scaled_op, 1e-7));
  CHECK(price(conv_with(info_of<w_lsq>())).rescales == 256);
}

TEST_CASE("rescale: a constant alpha is free when it is a power of two, a multiply otherwise") {
  CHECK(near(price(dense_with(info_of<w_quarter>())).op, dense_fixed_op));
  CHECK(near(price(conv_with(info_of<w_quarter>())).op, conv_fixed_op, 1e-7));
  CHECK(near(price(dense_with(info_of<scaled<unit4, alpha_const<1.0>>>())).op, dense_fixed_op));
  CHECK(near(price(dense_with(info_of<w_tenth>())).op, dense_scaled_op));
  CHECK(near(price(conv_with(info_of<w_tenth>())).op, conv_scaled_op, 1e-7));
}

TEST_CASE("rescale: a float-scaled input also needs one multiply per output, and only one") {
  // unit4 weights reading lsq activations: one multiply applies the input's step.
  CHECK(near(price(dense_with(info_of<unit4>(), info_of<lsq<fixed_point<8, 7, true, true>>>())).op -
                 price(dense_with(info_of<unit4>(), info_of<fixed_point<8, 7, true, true>>())).op,
             8 * 3.7, 1e-9));
  // Both scaled: the product of the two scales is applied by the same single multiply.
  CHECK(price(dense_with(info_of<w_auto>(), info_of<lsq<fixed_point<8, 7, true, true>>>())).rescales == 8);
  // po2 weights and a float input: the input's scale still costs the multiply.
  CHECK(price(dense_with(info_of<w_po2>(), info_of<lsq<fixed_point<8, 7, true, true>>>())).rescales == 8);
}

TEST_CASE("rescale: qtools_compat charges none, as qtools (which ignores a quantizer's alpha)") {
  for (const auto& l : {dense_with(info_of<w_auto>()), dense_with(info_of<w_lsq>()), dense_with(info_of<w_tenth>()),
                        conv_with(info_of<w_auto>())}) {
    en::layer_desc f = l;
    f.weights = info_of<unit4>();
    const en::layer_energy s = price<en::qtools_compat>(l), u = price<en::qtools_compat>(f);
    CHECK(s.op == u.op);
    CHECK(s.rescales == 0);
  }
}

TEST_CASE("rescale through the nn -> energy bridge: conv2d and dense layers with scaled or lsq weights") {
  // conv2d 12x12x1 -> 8 filters 3x3/2 same (6x6x8 = 288 outputs), relu, flatten, dense 10
  // (10 outputs). A float weight scale adds (288 + 10) * 3.7 = 1102.6 pJ of op cost.
  const auto make = [](const quantizer& w) {
    auto net = std::make_unique<nn::sequential>(nn::image(12, 12, 1));
    net->emplace<nn::conv2d_layer>(8, 3, 2, nn::padding::same, nn::layer_formats{.weights = w});
    net->emplace<nn::relu_layer>();
    net->emplace<nn::flatten_layer>();
    net->emplace<nn::dense_layer>(10, nn::layer_formats{.weights = w});
    return net;
  };
  const nn::bridge_options bo{.input_format = info_of<uint8>(), .accumulator_bits = 16};
  const auto priced = [&](const quantizer& w) {
    auto net = make(w);
    return en::price_model<en::horowitz_45nm>(nn::describe_network(*net, bo));
  };
  const auto layer = [&](const quantizer& w, std::size_t i) {
    auto net = make(w);
    const en::network_desc d = nn::describe_network(*net, bo);
    return en::price_layer<en::horowitz_45nm>(d[i], {}, en::role_of(i, d.size()));
  };
  const en::model_energy fixed = priced(quantizer::of<unit4>());
  const double extra = (288 + 10) * 3.7;
  CHECK(near(priced(quantizer::of<w_auto>()).op - fixed.op, extra, 1e-6));
  CHECK(near(priced(quantizer::of<w_auto>()).total_pj - fixed.total_pj, extra, 1e-6));
  CHECK(near(priced(quantizer::of<w_lsq>()).total_pj - fixed.total_pj, extra, 1e-6));
  CHECK(near(priced(quantizer::of<w_tenth>()).total_pj - fixed.total_pj, extra, 1e-6));
  CHECK(priced(quantizer::of<w_po2>()).total_pj == fixed.total_pj);
  CHECK(priced(quantizer::of<w_quarter>()).total_pj == fixed.total_pj);
  // Per layer: the conv (layer 0) and the dense (layer 3) each pay their own outputs.
  CHECK(layer(quantizer::of<w_auto>(), 0).rescales == 288);
  CHECK(layer(quantizer::of<w_auto>(), 3).rescales == 10);
  CHECK(layer(quantizer::of<w_po2>(), 0).rescales == 0);
  // qtools_compat: the qtools figure, unchanged by a float scale.
  auto a = make(quantizer::of<w_auto>()), u = make(quantizer::of<unit4>());
  CHECK(en::price_model<en::qtools_compat>(nn::describe_network(*a, bo)).total_pj ==
        en::price_model<en::qtools_compat>(nn::describe_network(*u, bo)).total_pj);
}
