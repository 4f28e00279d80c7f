// testing/check_layer: every built-in layer kind passes; a wrong backward, a wrong description, a wrong forward shape and an unexportable layer are caught, naming the layer and the check.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/nn.hpp"
#include "qnas/testing/check_layer.hpp"

using namespace qnas;
using qnas::testing::check_layer;
using qnas::testing::layer_check;
using qnas::testing::layer_check_options;
using qnas::testing::layer_check_report;
using nn::flat;
using nn::image;
using nn::padding;
using nn::unquantized;

namespace {

using w8 = fixed_point<8, 1>;
using w4 = fixed_point<4, 1>;
using a8 = fixed_relu<8, 3>;
using wp = po2<4, 2.0>;
using l4 = lsq<fixed_point<4, 0, true, true>>;

layer_check_options with_formats() {
  layer_check_options o;
  o.formats = nn::format_registry::of<w8, w4, a8, wp, l4>();
  return o;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// Every check ran, compared something, and passed.
void require_all_pass(const layer_check_report& r) {
  CHECK_MESSAGE(static_cast<bool>(r), r.text());
  for (const auto& c : r.results) {
    CHECK_MESSAGE(c.ran, r.layer << ": " << qnas::testing::to_string(c.check) << " did not run");
    CHECK_MESSAGE(c.comparisons > 0, r.layer << ": " << qnas::testing::to_string(c.check) << " compared nothing");
  }
}

/// check_layer<L, In> as a plain function pointer. The built-in kinds are checked in one loop over
/// these: called through a pointer, the 28 wrappers are not inlined into the test case together
/// with 28 constructions and destructions of the options and reports, which made this file take
/// a third longer to compile.
using spec_check = layer_check_report (*)(const layer_check_options&);
template <class L, nn::tensor_shape In>
constexpr spec_check spec = &check_layer<L, In>;

/// A fully connected layer written the way a user writes one (plain loops, no library helpers),
/// with an optional deliberate fault.
enum class fault { none, weight_grad_doubled, input_grad_term_dropped, macs_wrong, params_wrong, forward_shape_wrong };

class toy_dense : public nn::layer {
 public:
  toy_dense(nn::tensor_shape in, std::size_t units, fault f = fault::none)
      : nn::layer("toy_dense", in, flat(units)), n_in_(in.size()), units_(units), fault_(f) {
    w_ = {"toy_dense.weights", xt::zeros<float>({n_in_, units_}), xt::zeros<float>({n_in_, units_}), true};
    b_ = {"toy_dense.bias", xt::zeros<float>({units_}), xt::zeros<float>({units_}), false};
  }
  std::vector<nn::parameter*> parameters() override { return {&w_, &b_}; }
  void initialize(std::mt19937_64& e) override {
    qnas::detail::fill_normal(std::span<float>(w_.value.data(), w_.value.size()), std::sqrt(2.0 / n_in_), e);
    std::fill(b_.value.begin(), b_.value.end(), 0.0f);
  }
  [[nodiscard]] nn::layer_description describe() const override {
    nn::layer_description d = layer::describe();
    d.op = nn::layer_op::dense;
    d.config = std::to_string(units_);
    d.params = n_in_ * units_ + units_ + (fault_ == fault::params_wrong ? 1 : 0);
    d.macs = n_in_ * units_ + (fault_ == fault::macs_wrong ? units_ : 0);
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override {
    const std::size_t n = check_input(x);
    const std::size_t cols = units_ + (fault_ == fault::forward_shape_wrong ? 1 : 0);
    x_ = &x;
    y_ = xt::zeros<float>({n, cols});
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t j = 0; j < cols; ++j) {
        float s = j < units_ ? b_.value(j) : 0.0f;
        for (std::size_t i = 0; i < n_in_ && j < units_; ++i) s += x.data()[b * n_in_ + i] * w_.value(i, j);
        y_(b, j) = s;
      }
    return y_;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    const std::size_t n = dy.shape()[0];
    const float scale = fault_ == fault::weight_grad_doubled ? 2.0f : 1.0f;
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t j = 0; j < units_; ++j) {
        const float g = dy.data()[b * dy.shape()[1] + j];
        b_.grad(j) += g;
        for (std::size_t i = 0; i < n_in_; ++i) w_.grad(i, j) += scale * x_->data()[b * n_in_ + i] * g;
      }
    if (!need_dx) return empty_;
    dx_ = xt::zeros<float>({n, n_in_});
    // The faulty variant forgets the last unit's contribution to the input gradient.
    const std::size_t used = fault_ == fault::input_grad_term_dropped ? units_ - 1 : units_;
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t i = 0; i < n_in_; ++i) {
        float s = 0;
        for (std::size_t j = 0; j < used; ++j) s += dy.data()[b * dy.shape()[1] + j] * w_.value(i, j);
        dx_(b, i) = s;
      }
    return dx_;
  }

 private:
  std::size_t n_in_, units_;
  fault fault_;
  nn::parameter w_, b_;
  const xt::xarray<float>* x_ = nullptr;
  xt::xarray<float> y_, dx_;
};

std::unique_ptr<nn::layer> toy(fault f) { return std::make_unique<toy_dense>(flat(7), 5, f); }

/// A spec whose macs() disagrees with the layer it makes.
struct miscounting_dense : nn::dense<5> {
  static constexpr std::size_t macs(nn::tensor_shape in) { return in.size() * 5 + 1; }
};

}  // namespace

TEST_CASE("check_layer passes every built-in layer kind, float and quantized") {
  const layer_check_options o = with_formats();
  const spec_check specs[] = {
      spec<nn::dense<5>, flat(7)>,
      spec<nn::dense<4, unquantized, unquantized, unquantized, false>, flat(6)>,
      spec<nn::dense<5, w8, w8, a8>, flat(7)>,
      spec<nn::dense<4, l4>, flat(6)>,
      spec<nn::conv2d<4, 3, 2>, image(7, 6, 3)>,  // same padding, stride 2: the extra row/column at the end
      spec<nn::conv2d<3, 3, 1, padding::valid>, image(5, 5, 2)>,
      spec<nn::conv2d<6, 1>, image(4, 3, 5)>,  // pointwise: no im2col
      spec<nn::conv2d<3, 5, 2, padding::same, unquantized, unquantized, unquantized, false>, image(6, 6, 2)>,
      spec<nn::conv2d<4, 3, 1, padding::same, wp, w8, a8>, image(5, 5, 3)>,
      spec<nn::depthwise_conv2d<3, 2>, image(6, 5, 4)>,
      spec<nn::depthwise_conv2d<3, 1, padding::valid, w4>, image(5, 5, 3)>,
      spec<nn::max_pool<2, 2, padding::same>, image(5, 5, 2)>,
      spec<nn::max_pool<3, 2>, image(6, 6, 2)>,
      spec<nn::avg_pool<2, 2, padding::same>, image(5, 5, 3)>,
      spec<nn::avg_pool<2>, image(4, 4, 2)>,
      spec<nn::global_avg_pool, image(3, 4, 5)>,
      spec<nn::relu, image(3, 3, 4)>,
      spec<nn::relu6, flat(9)>,
      spec<nn::swish, image(2, 3, 4)>,
      spec<nn::sigmoid, flat(8)>,
      spec<nn::softmax, flat(6)>,
      spec<nn::flatten, image(3, 2, 4)>,
      spec<nn::batch_norm, image(3, 3, 4)>,
      spec<nn::batch_norm, flat(5)>,
      spec<nn::quantized<nn::relu, a8>, image(3, 3, 4)>,
      spec<nn::residual<nn::conv2d<4, 3>, nn::batch_norm, nn::relu, nn::conv2d<4, 3>>, image(5, 5, 4)>,
      spec<nn::inverted_bottleneck<2, 3, 4>, image(5, 5, 4)>,              // a residual block
      spec<nn::inverted_bottleneck<2, 3, 6, false, 2, w8, a8>, image(6, 6, 3)>,  // a sequential, quantized
  };
  for (const spec_check check : specs) require_all_pass(check(o));  // its failures name the layer
}

TEST_CASE("check_layer passes a run-time sequential network and squeeze-excite") {
  require_all_pass(check_layer(
      [] {
        auto s = std::make_unique<nn::sequential>(image(6, 6, 2));
        s->emplace<nn::conv2d_layer>(3, 3, 1, padding::same, nn::layer_formats{quantizer::of<w8>(), {}, {}});
        s->emplace<nn::batch_norm_layer>();
        s->emplace<nn::relu_layer>();
        s->emplace<nn::pool_layer>(nn::pool_layer::mode::max, 2, 2);
        s->emplace<nn::flatten_layer>();
        s->emplace<nn::dense_layer>(4);
        s->emplace<nn::softmax_layer>();
        return s;
      },
      with_formats()));

  // Squeeze-excite computes a per-channel product the energy model has no rule for (its op is
  // unpriced) and export_model does not know it: those two checks fail by design, the others pass.
  const auto se = [] { return std::make_unique<nn::squeeze_excite_layer>(image(3, 3, 8), 4); };
  const layer_check_report all = check_layer(se);
  CHECK_FALSE(all.passed(layer_check::energy));
  CHECK_FALSE(all.passed(layer_check::export_reload));
  CHECK(contains(all[layer_check::energy].failures.at(0), "squeeze_excite"));
  CHECK(contains(all[layer_check::export_reload].failures.at(0), "not exportable"));
  layer_check_options o;
  o.skipping(layer_check::energy).skipping(layer_check::export_reload);
  const layer_check_report rest = check_layer(se, o);
  CHECK_MESSAGE(static_cast<bool>(rest), rest.text());
  CHECK_FALSE(rest[layer_check::energy].ran);
  CHECK(rest[layer_check::gradient].comparisons > 100);
}

TEST_CASE("a user layer passes every check but export, which says it is not exportable") {
  const layer_check_report r = check_layer(toy(fault::none));
  for (layer_check c : {layer_check::description, layer_check::shape, layer_check::energy, layer_check::gradient})
    CHECK_MESSAGE(r.passed(c), r.text());
  REQUIRE_FALSE(r.passed(layer_check::export_reload));
  const std::string f = r[layer_check::export_reload].failures.at(0);
  CHECK(contains(f, "toy_dense 5 on [7]: export_reload: not exportable"));
}

TEST_CASE("a wrong backward fails the gradient check, naming the layer, the check and the tensor") {
  layer_check_options o;
  o.skipping(layer_check::export_reload);
  SUBCASE("weight gradient doubled") {
    const layer_check_report r = check_layer(toy(fault::weight_grad_doubled), o);
    CHECK_FALSE(r);
    CHECK(r.passed(layer_check::description));
    CHECK(r.passed(layer_check::shape));
    CHECK(r.passed(layer_check::energy));
    const auto& g = r[layer_check::gradient];
    REQUIRE(g.failures.size() == 1);  // the weights only: the bias and input gradients are right
    CHECK(contains(g.failures[0], "toy_dense 5 on [7]: gradient: toy_dense.weights: "));
    CHECK(contains(g.failures[0], "disagree with central differences"));
  }
  SUBCASE("a term of the input gradient dropped") {
    const layer_check_report r = check_layer(toy(fault::input_grad_term_dropped), o);
    const auto& g = r[layer_check::gradient];
    REQUIRE(g.failures.size() == 1);
    CHECK(contains(g.failures[0], "toy_dense 5 on [7]: gradient: the input gradient"));
  }
  SUBCASE("the throwing form") {
    CHECK_THROWS_WITH_AS(check_layer(toy(fault::weight_grad_doubled), o).throw_if_failed(),
                         doctest::Contains("toy_dense.weights"), qnas::invalid_argument);
    CHECK_NOTHROW(check_layer(toy(fault::none), o).throw_if_failed());
  }
}

TEST_CASE("a wrong backward inside a block, behind batch norm and ReLU, is caught and named") {
  layer_check_options o;
  o.skipping(layer_check::export_reload);
  const layer_check_report r = check_layer(
      [] {
        auto s = std::make_unique<nn::sequential>(flat(6));
        s->emplace<nn::dense_layer>(7);
        s->emplace<nn::batch_norm_layer>();
        s->emplace<nn::relu_layer>();
        s->add(std::make_unique<toy_dense>(flat(7), 5, fault::weight_grad_doubled));
        return s;
      },
      o);
  CHECK(r.passed(layer_check::description));
  const auto& g = r[layer_check::gradient];
  REQUIRE(g.failures.size() == 1);
  CHECK(contains(g.failures[0], "sequential 4 layers on [6]: gradient: toy_dense.weights: "));
}

TEST_CASE("a wrong description fails the description check") {
  layer_check_options o;
  o.skipping(layer_check::export_reload);
  SUBCASE("MACs") {
    const layer_check_report r = check_layer(toy(fault::macs_wrong), o);
    REQUIRE_FALSE(r.passed(layer_check::description));
    CHECK(contains(r[layer_check::description].failures.at(0),
                   "toy_dense 5 on [7]: description: describe().macs is 40 but inputs*units gives 35 (5 too many)"));
    CHECK(r.passed(layer_check::gradient));
    CHECK_FALSE(r.passed(layer_check::energy));  // the energy model counts the MACs of the geometry
  }
  SUBCASE("parameters") {
    const layer_check_report r = check_layer(toy(fault::params_wrong), o);
    REQUIRE_FALSE(r.passed(layer_check::description));
    CHECK(contains(r[layer_check::description].failures.at(0),
                   "describe().params is 41 but parameters() hold 40 (toy_dense.weights 35 + toy_dense.bias 5)"));
  }
  SUBCASE("a spec that miscounts") {
    const layer_check_report r = check_layer<miscounting_dense, flat(7)>();
    REQUIRE_FALSE(r.passed(layer_check::description));
    CHECK(contains(r[layer_check::description].failures.at(0), "the spec's macs([7]) is 36 but the layer it makes describes 35"));
  }
}

TEST_CASE("a forward that gives another shape than output_shape() fails the shape check") {
  layer_check_options o;
  o.skipping(layer_check::export_reload);
  const layer_check_report r = check_layer(toy(fault::forward_shape_wrong), o);
  REQUIRE_FALSE(r.passed(layer_check::shape));
  CHECK(contains(r[layer_check::shape].failures.at(0),
                 "toy_dense 5 on [7]: shape: forward (inference) on a batch of 1 gives [1,6] but output_shape() [5] says [1,5]"));
  CHECK_FALSE(r.passed(layer_check::gradient));
}

TEST_CASE("export needs the layer's formats in the registry") {
  const layer_check_report r = check_layer<nn::dense<5, w8>, flat(7)>();
  REQUIRE_FALSE(r.passed(layer_check::export_reload));
  CHECK(contains(r[layer_check::export_reload].failures.at(0), "registry"));
  CHECK(r.passed(layer_check::gradient));
}

TEST_CASE("misuse throws") {
  CHECK_THROWS_WITH_AS(check_layer(std::unique_ptr<nn::layer>()), doctest::Contains("the layer is null"),
                       qnas::invalid_argument);
  layer_check_options o;
  o.batch = 1;
  CHECK_THROWS_WITH_AS(check_layer(toy(fault::none), o), doctest::Contains("layer_check_options::batch is 1"),
                       qnas::invalid_argument);
  o = {};
  o.step = 0;
  CHECK_THROWS_WITH_AS(check_layer(toy(fault::none), o), doctest::Contains("layer_check_options::step"),
                       qnas::invalid_argument);
}
