// train_evaluator on a tiny proxy task (12x12 synthetic images, 2 conv filters sizes x 2 weight
// formats): deterministic by seed, independent of the runner's thread count, constraint
// rejection before training through the runner, and clear errors for unbuildable candidates.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>

#include "qnas/data/dataset.hpp"
#include "qnas/data/synthetic.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/nn.hpp"
#include "qnas/search/random_search.hpp"
#include "qnas/search/runner.hpp"
#include "qnas/search/train_evaluator.hpp"
#include "qnas/space.hpp"

using namespace qnas;
namespace qs = qnas::search;

namespace {
using tiny_space = space<choice<"filters", 4, 8, 16>, type_choice<"w", fixed_point<8, 0>, fixed_point<2, 0>>>;

std::unique_ptr<nn::sequential> build_tiny(const candidate& c) {
  const tiny_space s;
  const std::size_t filters = static_cast<std::size_t>(get<"filters">(s, c));
  const quantizer w = quantizer_of<"w">(s, c);
  auto net = std::make_unique<nn::sequential>(nn::image(12, 12, 1));
  net->emplace<nn::conv2d_layer>(filters, 3, 2, nn::padding::same, nn::layer_formats{w, w, {}});
  net->emplace<nn::relu_layer>().set_output_quantizer(quantizer::of<fixed_relu<8, 3>>());
  net->emplace<nn::flatten_layer>();
  net->emplace<nn::dense_layer>(10, nn::layer_formats{w, w, {}});
  return net;
}

qs::train_evaluator<> tiny_evaluator(qs::network_builder b = build_tiny) {
  const auto all = data::make_synthetic({.size = 400, .height = 12, .width = 12, .seed = 5});
  auto parts = data::split(all, 100, 1);
  qs::train_evaluator_options o;
  o.training = {.epochs = 1, .batch_size = 32, .learning_rate = 3e-3f};
  o.bridge = {.input_format = info_of<uint8>(), .max_accumulator_bits = 16};
  return qs::train_evaluator<>(describe<tiny_space>(), std::move(b), std::move(parts.train),
                               std::move(parts.validation), o);
}

qs::metrics without_time(qs::metrics m) {
  qs::metrics out;
  for (const auto& [k, v] : m.values())
    if (k != "train_s") out.set(k, v);
  return out;
}
}  // namespace

TEST_CASE("train_evaluator: same seed, same metrics; the costs follow the candidate") {
  const auto ev = tiny_evaluator();
  const candidate c({1, 0});
  const auto a = ev(c, {.trial = 0, .seed = 42});
  const auto b = ev(c, {.trial = 7, .seed = 42});  // the trial number plays no part, the seed does
  CHECK(without_time(a) == without_time(b));
  CHECK(a.at("accuracy") > 0.1);  // better than chance after one epoch (10 classes)
  CHECK(a.at("accuracy") <= 1.0);
  CHECK(a.at("train_s") > 0);
  // conv 3x3/2 8 on 12x12x1 -> 6x6x8: 36*9*8 = 2,592 MACs; dense 288 -> 10: 2,880.
  CHECK(a.at("macs") == 2592 + 2880);
  CHECK(a.at("params") == 9 * 8 + 8 + 2880 + 10);
  // bits: params at 8 bits + the 8-bit input (144) + the 8-bit relu output (288).
  CHECK(a.at("parameter_bits") == 8.0 * (9 * 8 + 8 + 2880 + 10));
  CHECK(a.at("activation_bits") == 8.0 * (144 + 288));
  CHECK(a.at("bits") == a.at("parameter_bits") + a.at("activation_bits"));
  // The estimate is the same pricing without training.
  const auto e = ev.estimate(c);
  CHECK(e.at("energy_pj") == a.at("energy_pj"));
  CHECK(!e.has("accuracy"));
  CHECK(ev.estimate(candidate({1, 1})).at("energy_pj") < e.at("energy_pj"));  // 2-bit weights
  CHECK(ev.estimate(candidate({2, 0})).at("energy_pj") > e.at("energy_pj"));  // more filters
}

TEST_CASE("train_evaluator: a search gives the same log on 1 and 2 runner threads") {
  auto run = [](std::size_t threads) {
    const auto ev = tiny_evaluator();
    qs::random_search rs(describe<tiny_space>(), 9);
    qs::runner_options o;
    o.max_trials = 4;
    o.threads = threads;
    o.batch_size = 2;
    o.evaluation_seed = 3;
    return qs::run_search(rs, ev, qs::maximize_metric{}, o);
  };
  const auto one = run(1), two = run(2);
  REQUIRE(one.history.size() == 4);
  REQUIRE(two.history.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(one.history[i].cand == two.history[i].cand);
    CHECK(without_time(one.history[i].values) == without_time(two.history[i].values));
    CHECK(one.history[i].reward == two.history[i].reward);
  }
}

TEST_CASE("train_evaluator: the estimate rejects candidates before training, through the runner") {
  std::atomic<int> builds{0};
  const auto ev = tiny_evaluator([&builds](const candidate& c) {
    ++builds;
    return build_tiny(c);
  });
  // Cap between the 8-filter and 16-filter networks with 8-bit weights.
  const double cap = 0.5 * (ev.estimate(candidate({1, 0})).at("energy_pj") + ev.estimate(candidate({2, 0})).at("energy_pj"));
  builds = 0;
  qs::random_search rs(describe<tiny_space>(), {.deduplicate = true}, 1);
  qs::runner_options o;
  o.max_trials = 6;  // the whole space
  o.estimate = ev.estimator();
  o.constraints.at_most("energy_pj", cap);
  const auto res = qs::run_search(rs, ev, qs::maximize_metric{}, o);
  REQUIRE(res.history.size() == 6);
  CHECK(res.rejected == 1);  // only {16 filters, 8-bit}
  for (const auto& r : res.history) {
    const bool big = r.cand == candidate({2, 0});
    CHECK(r.was_rejected() == big);
    CHECK(r.values.has("accuracy") == !big);  // rejected: never trained
    CHECK(r.values.has("energy_pj"));
    if (big) CHECK(r.rejected->constraint.find("energy_pj") != std::string::npos);
  }
  CHECK(builds == 6 + 5);  // one build per estimate, one per training of an accepted candidate
}

TEST_CASE("train_evaluator: unbuildable candidates are refused with a clear error") {
  // A builder that refuses 2-bit weights with 4 filters (e.g. a hardware rule).
  const auto ev = tiny_evaluator([](const candidate& c) {
    if (c[0] == 0 && c[1] == 1) throw invalid_argument("build_tiny", "2-bit weights need at least 8 filters");
    return build_tiny(c);
  });
  CHECK_THROWS_WITH_AS(ev.estimate(candidate({0, 1})),
                       doctest::Contains("candidate {filters=4 w=fixed_point<2,0>}: build_tiny: 2-bit weights"),
                       qnas::invalid_argument);
  CHECK_THROWS_WITH_AS(ev(candidate({0, 1}), {}), doctest::Contains("2-bit weights need at least 8 filters"),
                       qnas::invalid_argument);
  // Not a candidate of the space: a decision missing, an index out of range.
  CHECK_THROWS_AS(ev.estimate(candidate({1})), qnas::invalid_argument);
  CHECK_THROWS_AS(ev.estimate(candidate({3, 0})), qnas::invalid_argument);
  // A network that does not fit the data.
  const auto wrong = tiny_evaluator([](const candidate&) {
    auto net = std::make_unique<nn::sequential>(nn::image(12, 12, 1));
    net->emplace<nn::flatten_layer>();
    net->emplace<nn::dense_layer>(7);
    return net;
  });
  CHECK_THROWS_WITH_AS(wrong.estimate(candidate({0, 0})), doctest::Contains("outputs [7] but there are 10 classes"),
                       qnas::invalid_argument);
  const auto null = tiny_evaluator([](const candidate&) { return std::unique_ptr<nn::sequential>(); });
  CHECK_THROWS_WITH_AS(null.estimate(candidate({0, 0})), doctest::Contains("returned no network"),
                       qnas::invalid_argument);
}
