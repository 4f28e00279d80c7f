// Supernet: masked slices equal standalone layers bit for bit (forward and gradients: the
// branches run the nn layers' kernels); compile-time checked specs; rematerialization.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/search/supernet.hpp"
#include "qnas/train/loss.hpp"

using namespace qnas;

namespace {
struct residual_block {
  static std::string name() { return "residual_block"; }
};

using test_space = space<choice<"s0.filters", 4, 8>, choice<"s0.kernel", 3, 5>,
                         type_choice<"s0.w", fixed_point<8, 1>, fixed_point<4, 1>, po2<4, 1.0>, ternary<-2, 0.125>>,
                         optional<"s1.block", residual_block>, choice<"s2.filters", 4, 6>, choice<"s2.kernel", 3, 5>,
                         type_choice<"s2.w", fixed_point<8, 1>, ternary<-2, 0.125>>, type_choice<"head.w", fixed_point<8, 2>, po2<4, 1.0>>,
                         type_choice<"s0.a", fixed_relu<8, 3>, fixed_relu<4, 2>>>;

supernet_spec_for<test_space> test_spec(bool global_pool = false) {
  supernet_spec_for<test_space> s(nn::image(9, 9, 2), 3);
  s.global_pool = global_pool;
  s.conv<"s0.filters", "s0.kernel", "s0.w", "s0.a">(1)
      .skippable<"s1.block", "s0.w">(3)
      .conv<"s2.filters", "s2.kernel", "s2.w">(2, quantizer::of<fixed_relu<8, 3>>())
      .head<"head.w">();
  return s;
}

// The same supernet described with run-time names (checked when the supernet is built).
supernet_spec test_spec_by_strings() {
  supernet_spec s;
  s.input = nn::image(9, 9, 2);
  s.classes = 3;
  s.stages.push_back(supernet_stage::conv("s0.filters", "s0.kernel", "s0.w", 1));
  s.stages.back().activations = "s0.a";
  s.stages.push_back(supernet_stage::skippable("s1.block", "s0.w", 3));
  s.stages.push_back(supernet_stage::conv("s2.filters", "s2.kernel", "s2.w", 2, quantizer::of<fixed_relu<8, 3>>()));
  s.head_weights = "head.w";
  return s;
}

xt::xarray<float> random_batch(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 e(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  xt::xarray<float> x = xt::zeros<float>({n, std::size_t{9}, std::size_t{9}, std::size_t{2}});
  for (auto& v : x) v = u(e);
  return x;
}

std::vector<data::label_t> random_labels(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 e(seed);
  std::vector<data::label_t> y(n);
  for (auto& v : y) v = static_cast<data::label_t>(e() % 3);
  return y;
}

void collect(nn::layer& l, std::vector<nn::layer*>& out) {
  auto ch = l.children();
  if (ch.empty()) out.push_back(&l);
  for (auto* c : ch) collect(*c, out);
}

double max_abs_diff(const float* a, const float* b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}
}  // namespace

TEST_CASE("format_table_of lists one quantizer per alternative of every format decision") {
  const auto t = format_table_of<test_space>();
  CHECK(t.size() == 4);
  CHECK(t.at("s0.w").size() == 4);
  CHECK(t.at("s0.w")[3].name() == quantizer::of<ternary<-2, 0.125>>().name());
}

TEST_CASE("supernet_spec_for checks names at compile time and builds the spec the strings describe") {
  const supernet_spec_for<test_space> typed = test_spec();
  const supernet_spec plain = test_spec_by_strings();
  REQUIRE(typed.stages.size() == plain.stages.size());
  for (std::size_t i = 0; i < plain.stages.size(); ++i) {
    CAPTURE(i);
    const auto &a = typed.stages[i], &b = plain.stages[i];
    CHECK(a.filters == b.filters);
    CHECK(a.fixed_filters == b.fixed_filters);
    CHECK(a.kernel == b.kernel);
    CHECK(a.fixed_kernel == b.fixed_kernel);
    CHECK(a.weights == b.weights);
    CHECK(a.skip == b.skip);
    CHECK(a.stride == b.stride);
    CHECK(a.activation.name() == b.activation.name());
    CHECK(a.activations == b.activations);
  }
  CHECK(typed.input == plain.input);
  CHECK(typed.classes == plain.classes);
  CHECK(typed.head_weights == plain.head_weights);
  CHECK(typed.global_pool == plain.global_pool);
  // Both build the same supernet: equal logits for a seed.
  supernet a = make_supernet(typed, 3);
  supernet b = make_supernet<test_space>(plain, 3);
  const auto x = random_batch(2, 5);
  const auto c = candidate({1, 0, 2, 1, 1, 1, 0, 1, 0});
  const auto ya = a.forward(x, a.setting_of(c));
  const auto& yb = b.forward(x, b.setting_of(c));
  CHECK(ya == yb);
}

TEST_CASE("a masked supernet step equals the standalone network of the selected sizes bit for bit") {
  const candidate cands[] = {candidate({0, 0, 0, 0, 0, 0, 0, 0, 0}), candidate({1, 1, 1, 1, 1, 1, 1, 1, 1}),
                             candidate({0, 1, 2, 1, 1, 0, 0, 1, 1}), candidate({1, 0, 3, 0, 0, 1, 1, 0, 0})};
  for (const bool global_pool : {false, true})
  for (const auto& c : cands) {
    CAPTURE(c.choices);
    CAPTURE(global_pool);
    supernet net = make_supernet<test_space>(test_spec(global_pool), 7);
    // Make the BN shifts and scales non-trivial so that they are really compared.
    std::mt19937_64 e(3);
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    for (auto* p : net.parameters())
      if (p->name.find("gamma") != std::string::npos || p->name.find("beta") != std::string::npos)
        for (auto& v : p->value) v = u(e) - (p->name.find("beta") != std::string::npos ? 1.0f : 0.0f);
    std::mt19937_64 init(11);
    auto standalone = net.build_standalone(c, /*inherit=*/true, init);

    const auto x = random_batch(5, 1);
    const auto y = random_labels(5, 2);
    const auto setting = net.setting_of(c);
    xt::xarray<float> g1, g2;
    const auto& l1 = net.forward(x, setting);
    train::softmax_cross_entropy(l1, y, g1);
    const auto& l2 = standalone->forward(x, true);
    train::softmax_cross_entropy(l2, y, g2);
    REQUIRE(l1.size() == l2.size());
    CHECK(max_abs_diff(l1.data(), l2.data(), l1.size()) == 0.0);

    net.zero_grad();
    standalone->zero_grad();
    net.backward(g1);
    standalone->backward(g2, false);

    // Compare each standalone weight gradient with the active slice of the supernet gradient,
    // and check that the inactive entries received nothing.
    std::vector<nn::layer*> leaves;
    collect(*standalone, leaves);
    auto params = net.parameters();
    std::size_t cin = 2;
    std::size_t li = 0;
    auto next = [&](const std::string& kind) -> nn::layer& {
      while (leaves[li]->kind() != kind) ++li;
      return *leaves[li++];
    };
    for (std::size_t s = 0; s < 3; ++s) {
      const auto& ss = setting.stages[s];
      if (s == 1 && ss.branches[0] == 0) continue;
      const std::size_t branch = s == 1 ? 0 : ss.branches[0];
      const std::size_t base = s == 0 ? 0 : (s == 1 ? 6 : 9);  // 3 params per branch: w, gamma, beta
      nn::parameter& w = *params[base + 3 * branch];
      nn::parameter& gamma = *params[base + 3 * branch + 1];
      auto& conv = static_cast<nn::conv2d_layer&>(next("conv2d"));
      const std::size_t k = w.value.shape()[0], cin_max = w.value.shape()[2], cout_max = w.value.shape()[3];
      std::vector<float> slice(k * k * cin * ss.filters);
      supernet::gather(w.grad.data(), k, cin_max, cout_max, cin, ss.filters, slice.data());
      CHECK(max_abs_diff(slice.data(), conv.weights().grad.data(), slice.size()) == 0.0);
      double outside = 0;  // everything beyond the prefix must be untouched
      for (std::size_t t = 0; t < k * k; ++t)
        for (std::size_t i = 0; i < cin_max; ++i)
          for (std::size_t j = 0; j < cout_max; ++j)
            if (i >= cin || j >= ss.filters) outside += std::abs(w.grad.data()[(t * cin_max + i) * cout_max + j]);
      CHECK(outside == 0.0);
      auto& bn = static_cast<nn::batch_norm_layer&>(next("batch_norm"));
      CHECK(max_abs_diff(gamma.grad.data(), bn.gamma().grad.data(), ss.filters) == 0.0);
      cin = ss.filters;
    }
    auto& dense = static_cast<nn::dense_layer&>(next("dense"));
    nn::parameter& hw = *params[params.size() - 2];
    const std::size_t positions = global_pool ? 1 : 25;  // 9x9 -> stride 2 -> 5x5
    const std::size_t cmax = 6;
    std::vector<float> rows;
    for (std::size_t p = 0; p < positions; ++p)
      rows.insert(rows.end(), hw.grad.data() + p * cmax * 3, hw.grad.data() + (p * cmax + cin) * 3);
    REQUIRE(rows.size() == dense.weights().grad.size());
    CHECK(max_abs_diff(rows.data(), dense.weights().grad.data(), rows.size()) == 0.0);
    CHECK(max_abs_diff(params.back()->grad.data(), dense.bias().grad.data(), 3) == 0.0);
  }
}

TEST_CASE("the energy of a candidate grows with its filters and falls with narrower formats") {
  supernet net = make_supernet<test_space>(test_spec(), 1);
  const double small = net.energy_pj(candidate({0, 0, 1, 0, 0, 0, 1, 1, 0}));
  const double wide = net.energy_pj(candidate({1, 0, 1, 0, 1, 0, 1, 1, 0}));
  const double wide8 = net.energy_pj(candidate({1, 0, 0, 0, 1, 0, 0, 0, 0}));
  const double with_block = net.energy_pj(candidate({1, 0, 0, 1, 1, 0, 0, 0, 0}));
  CHECK(small < wide);
  CHECK(wide < wide8);
  CHECK(wide8 < with_block);
  // 4-bit instead of 8-bit output activations of stage 0: cheaper reads and MACs downstream.
  CHECK(net.energy_pj(candidate({1, 0, 0, 1, 1, 0, 0, 0, 1})) < with_block);
}

TEST_CASE("rematerialized backward equals the plain backward with several branches active") {
  supernet plain = make_supernet<test_space>(test_spec(), 5);
  supernet remat = make_supernet<test_space>(test_spec(), 5);
  plain.set_rematerialize(false);
  remat.set_rematerialize(true);
  supernet_setting st = plain.setting_of(candidate({1, 0, 1, 0, 1, 0, 0, 1, 0}));
  st.stages[0].branches = {0, 1};  // op warm-up on every op decision
  st.stages[1].branches = {0, 1};
  st.stages[1].filters = st.stages[0].filters;
  st.stages[2].branches = {0, 1};
  const auto x = random_batch(4, 9);
  const auto y = random_labels(4, 10);
  for (int repeat = 0; repeat < 2; ++repeat) {  // the second pass runs on warm (reused) buffers
    xt::xarray<float> g1, g2;
    const auto& l1 = plain.forward(x, st);
    train::softmax_cross_entropy(l1, y, g1);
    const auto& l2 = remat.forward(x, st);
    train::softmax_cross_entropy(l2, y, g2);
    CHECK(max_abs_diff(l1.data(), l2.data(), l1.size()) == 0.0);
    plain.zero_grad();
    remat.zero_grad();
    plain.backward(g1);
    remat.backward(g2);
    auto p1 = plain.parameters(), p2 = remat.parameters();
    for (std::size_t i = 0; i < p1.size(); ++i) {
      CAPTURE(p1[i]->name);
      CHECK(max_abs_diff(p1[i]->grad.data(), p2[i]->grad.data(), p1[i]->grad.size()) == 0.0);
    }
  }
  // Plain mode keeps one workspace per branch, rematerialization one per stage.
  CHECK(remat.workspace_bytes() < plain.workspace_bytes());
}

TEST_CASE("bad settings and specs throw invalid_argument naming the problem") {
  supernet net = make_supernet<test_space>(test_spec(), 1);
  auto st = net.setting_of(candidate({0, 0, 0, 0, 0, 0, 0, 0, 0}));
  st.stages[0].filters = 9;
  const auto x = random_batch(2, 1);
  CHECK_THROWS_WITH_AS(net.forward(x, st), doctest::Contains("stage 0 has 9 filters"), qnas::invalid_argument);
  auto spec = test_spec();
  spec.stages[0].kernel = "nope";
  CHECK_THROWS_WITH_AS(make_supernet<test_space>(spec), doctest::Contains("no decision named 'nope'"),
                       qnas::invalid_argument);
  spec = test_spec();
  spec.stages[0].weights = "s0.kernel";
  CHECK_THROWS_WITH_AS(make_supernet<test_space>(spec), doctest::Contains("not a format decision"),
                       qnas::invalid_argument);
}
