// Example 11: a layer qnas does not have, written by a user, used everywhere a built-in layer is.
//
// `grouped_conv2d` (a 3x3 convolution whose channels are split into independent groups, as in
// ResNeXt and ShuffleNet) is written here against the public layer interface: forward, backward,
// parameters (inherited from nn::weighted_layer, which also quantizes the weights) and its
// description. Then the program
//   1. checks it with qnas::testing::check_layer (gradients against finite differences, shapes,
//      description, pricing, export and reload), float and quantized;
//   2. prices it with the energy model: its description says `conv2d` with `groups`, so the
//      bridge charges k*k*(c_in/groups) MACs per output, and the check below compares that with
//      a direct count;
//   3. searches its group count and weight format with the runner (random search, training
//      every candidate on synthetic images and scoring accuracy against energy);
//   4. exports the best network with a layer registry that knows the new kind, reads it back
//      and compares the logits bit for bit.
// It exits non-zero when any of these fails.
//
// Usage: 11_custom_layer        (no options; ~10 s)
#include <qnas/data/synthetic.hpp>
#include <qnas/energy/horowitz_45nm.hpp>
#include <qnas/formats/fixed_point.hpp>
#include <qnas/nn.hpp>
#include <qnas/nn/export.hpp>
#include <qnas/search/random_search.hpp>
#include <qnas/search/runner.hpp>
#include <qnas/search/train_evaluator.hpp>
#include <qnas/testing/check_layer.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <span>
#include <vector>

#include <xtensor/xview.hpp>

#include "search_cli.hpp"

namespace nn = qnas::nn;
namespace qs = qnas::search;

namespace {

// ---- the user's layer --------------------------------------------------------------------------

/// y[n, y, x, o] = b[o] + sum over the 3x3 window and the c_in/groups input channels of o's group
/// of x[n, y+dy-1, x+dx-1, g*cg + i] * w[dy, dx, i, o]: stride 1, "same" padding.
/// Weights [3, 3, c_in/groups, filters]; output channel o belongs to group o / (filters/groups).
class grouped_conv2d final : public nn::with_buffers<nn::weighted_layer> {
 public:
  grouped_conv2d(qnas::tensor_shape in, std::size_t filters, std::size_t groups, nn::layer_formats f = {})
      : with_buffers("grouped_conv2d", in, qnas::image(in.h, in.w, filters), std::move(f)), groups_(groups) {
    if (!in.is_image() || groups == 0 || in.c % groups != 0 || filters == 0 || filters % groups != 0)
      throw qnas::invalid_argument("grouped_conv2d", "needs an image input, and groups dividing its channels and the filters");
    init_params({k, k, in.c / groups, filters}, filters, true);
  }
  [[nodiscard]] std::size_t groups() const { return groups_; }
  void initialize(std::mt19937_64& e) override { he_normal(e, k * k * input_shape().c / groups_); }
  [[nodiscard]] nn::layer_description describe() const override {
    nn::layer_description d = weighted_layer::describe();
    d.op = nn::layer_op::conv2d;  // priced, checked and exported as a convolution with groups
    d.window = {k, 1, qnas::padding::same, groups_};
    d.macs = output_shape().size() * k * k * (input_shape().c / groups_);
    d.config = std::to_string(out_c()) + " 3x3 groups " + std::to_string(groups_);
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override {
    x_ = &x;
    nn::detail::ensure_batch(y_, check_input(x), output_shape());
    quantize_params();
    for_each_product(x.shape()[0], [&](std::size_t xi, std::size_t wi, std::size_t yi) { y_.data()[yi] += x.data()[xi] * wq()[wi]; },
                     [&](std::size_t yi, std::size_t o) { y_.data()[yi] = bq()[o]; });
    return y_;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool) override {
    nn::detail::ensure_batch(dx_, dy.shape()[0], input_shape());
    std::fill(dx_.begin(), dx_.end(), 0.0f);
    float* gw = weight_grad_scratch();  // gradient w.r.t. the quantized weights
    std::fill(gw, gw + weights().value.size(), 0.0f);
    for_each_product(dy.shape()[0], [&](std::size_t xi, std::size_t wi, std::size_t yi) {
      gw[wi] += x_->data()[xi] * dy.data()[yi];
      dx_.data()[xi] += wq()[wi] * dy.data()[yi];
    }, [](std::size_t, std::size_t) {});
    accumulate_weight_scratch();  // through the straight-through estimator to the float weights
    accumulate_bias_grad_from_rows(dy.data(), dy.size() / out_c());
    return dx_;
  }

 private:
  static constexpr std::size_t k = 3;
  /// For every output yi (channel o): first(yi, o), then product(xi, wi, yi) for each input and
  /// weight index whose product it sums.
  template <class Product, class First>
  void for_each_product(std::size_t n, Product product, First first) const {
    const std::size_t h = input_shape().h, w = input_shape().w, c = input_shape().c, f = out_c();
    const std::size_t cg = c / groups_, fg = f / groups_;
    for (std::size_t b = 0; b < n; ++b)
      for (std::size_t oy = 0; oy < h; ++oy)
        for (std::size_t ox = 0; ox < w; ++ox)
          for (std::size_t o = 0; o < f; ++o) {
            const std::size_t yi = ((b * h + oy) * w + ox) * f + o, c0 = o / fg * cg;
            first(yi, o);
            for (std::size_t dy = 0; dy < k; ++dy)
              for (std::size_t dx = 0; dx < k; ++dx) {
                if (oy + dy < 1 || ox + dx < 1 || oy + dy > h || ox + dx > w) continue;  // the zero padding
                const std::size_t xrow = ((b * h + oy + dy - 1) * w + ox + dx - 1) * c + c0;
                for (std::size_t i = 0; i < cg; ++i) product(xrow + i, ((dy * k + dx) * cg + i) * f + o, yi);
              }
          }
  }
  std::size_t groups_;
  const xt::xarray<float>* x_ = nullptr;
};

/// The layer kinds this program writes and reads: the built-ins and grouped_conv2d, rebuilt from
/// the fields the exporter wrote from its description (filters, groups).
nn::layer_registry layer_kinds() {
  nn::layer_registry r = nn::layer_registry::builtin();
  r.add("grouped_conv2d", [](const nn::layer_record& e) {
    const std::size_t filters = e.count("filters"), groups = e.count("groups", 1);
    e.reserve({3, 3, e.input.c, filters});
    return std::make_unique<grouped_conv2d>(e.input, filters, groups);
  });
  return r;
}

// ---- a search space around it -------------------------------------------------------------------

using w8 = qnas::fixed_point<8, 1>;
using w4 = qnas::fixed_point<4, 1>;
using a8 = qnas::fixed_relu<8, 3>;
constexpr std::size_t group_choices[] = {1, 2, 4};

qnas::space_description make_space() {
  return qnas::space_description(std::vector<qnas::decision_info>{
      {"block.groups", qnas::decision_kind::ordinal, 3, {"1", "2", "4"}},
      {"block.weights", qnas::decision_kind::categorical, 2, {w8::name(), w4::name()}}});
}

/// 14x14 images -> conv 8 -> grouped conv 16 (the searched block) -> pool -> dense 10.
std::unique_ptr<nn::sequential> build(const qnas::candidate& c) {
  const qnas::quantizer w = c[1] == 0 ? qnas::quantizer::of<w8>() : qnas::quantizer::of<w4>();
  auto net = std::make_unique<nn::sequential>(qnas::image(14, 14, 1));
  net->emplace<nn::conv2d_layer>(8, 3, 2, qnas::padding::same, nn::layer_formats{w, {}, qnas::quantizer::of<a8>()});
  net->emplace<nn::relu_layer>();
  net->emplace<grouped_conv2d>(16, group_choices[c[0]], nn::layer_formats{w, {}, qnas::quantizer::of<a8>()});
  net->emplace<nn::relu_layer>();
  net->emplace<nn::global_avg_pool_layer>();
  net->emplace<nn::dense_layer>(10, nn::layer_formats{w, {}, {}});
  return net;
}

int run() {
  // 1. The conformance kit, on the float layer and a quantized one.
  qnas::testing::layer_check_options check;
  check.formats = nn::format_registry::of<w8, w4, a8>();
  check.layers = layer_kinds();
  for (const std::size_t g : group_choices) {
    const auto report = qnas::testing::check_layer(
        [g] { return std::make_unique<grouped_conv2d>(qnas::image(5, 4, 4), 8, g, nn::layer_formats{qnas::quantizer::of<w4>(), {}, {}}); },
        check);
    std::cout << report << "\n";
    if (!report) return 1;
  }

  // 2. The energy model prices it as a convolution over c_in/groups channels.
  grouped_conv2d probe(qnas::image(7, 7, 8), 16, 4);
  const auto desc = nn::describe_network(std::span<const nn::layer_description>(std::vector{probe.describe()}));
  const long long direct = 7 * 7 * 16 * 3 * 3 * (8 / 4);
  std::printf("grouped_conv2d 16 3x3 groups 4 on [7,7,8]: %lld MACs priced (direct count %lld)\n", desc[0].macs(), direct);
  if (desc[0].macs() != direct) return 1;

  // 3. Search groups and weight format: accuracy on synthetic images against energy.
  auto all = qnas::data::make_synthetic({.size = 1500, .height = 14, .width = 14, .seed = 3});
  auto [train, val] = qnas::data::split(all, 300, 1);
  qs::train_evaluator_options eo;
  eo.training = {.epochs = 4, .batch_size = 32, .learning_rate = 1e-2f};
  const qs::train_evaluator<qnas::energy::horowitz_45nm> eval(make_space(), build, std::move(train), std::move(val), eo);
  const double reference = eval.estimate(qnas::candidate(std::vector<std::uint32_t>{0, 0})).at("energy_pj");
  const qs::forgiving_factor_score score{.reference = reference, .delta_p = 8.0, .delta_n = 8.0, .rate = 2.0, .stress = 1.0};
  qs::runner_options ro;
  ro.max_trials = 6;
  qs::random_search strategy(eval.space(), 11);
  const qs::search_result res = qs::run_search(strategy, eval, score, ro);
  res.print_report(std::cout);
  const qnas::candidate& best = res.best_trial().cand;

  // 4. Export the best network with the user's layer kind, read it back, compare bit for bit.
  auto net = eval.build(best);
  std::mt19937_64 init(5);
  net->initialize(init);
  qnas::train::adam adam({.learning_rate = 1e-2f});
  qnas::train::trainer(*net, adam).fit(eval.training_set(), nullptr, {.epochs = 4, .batch_size = 32, .seed = 1});
  const double accuracy = qnas::train::evaluate(*net, eval.validation_set(), 256, 1).accuracy;
  std::printf("best network trained again: validation accuracy %.3f (chance: 0.1)\n", accuracy);
  if (accuracy < 0.15) return 1;  // it learned nothing: the layer's training path is broken
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "qnas_example_11";
  std::filesystem::create_directories(dir);
  nn::export_model(*net, dir / "best.json", check.formats, check.layers);
  auto back = nn::load_model(dir / "best.json", check.formats, check.layers);
  const xt::xarray<float> x = xt::view(eval.validation_set().images, xt::range(0, 64));
  const xt::xarray<float> y0 = net->forward(x, false);
  const xt::xarray<float>& y1 = back->forward(x, false);
  const bool same = y0.shape() == y1.shape() && std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) == 0;
  std::printf("best {%s}: exported and reloaded, logits of 64 images %s\n", qnas::to_string(best, eval.space()).c_str(),
              same ? "identical bit for bit" : "DIFFER");
  std::filesystem::remove_all(dir);
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("11_custom_layer", [&] {
    qnas::examples::parse_cli(argc, argv, {"11_custom_layer", "11_custom_layer"}, {});
    return run();
  });
}
