// The minimal archetype of every customization point (docs/extending.md quotes each one from
// this file, between its markers, and the last test case checks that the page and this file
// agree): each is checked against its concept and its conformance check, and used where the
// library uses it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <xtensor/xarray.hpp>

#include "qnas/energy/estimate.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/ops.hpp"
#include "qnas/nn/activations.hpp"
#include "qnas/nn/dense.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/nn/sequential.hpp"
#include "qnas/search/runner.hpp"
#include "qnas/testing/check_format.hpp"
#include "qnas/testing/check_layer.hpp"
#include "qnas/train/trainer.hpp"

// [archetype: number_format]
// Three values {-1, 0, +1} in a 2-bit code (0 -> 0, 1 -> +1, 2 -> -1; 3 is unused).
struct trit {
  using rounding = qnas::nearest_even;  // |x| = 0.5 goes to 0
  static constexpr qnas::format_family family = qnas::format_family::ternary;
  static constexpr qnas::bit_tuple tuple{1, 0, 1};
  static constexpr int bits = 2;
  static constexpr int block_size = 1;
  static constexpr int scale_bits = 0;
  static constexpr double max_value = 1.0;
  static constexpr double min_value = -1.0;
  static constexpr bool has_zero = true;
  static constexpr bool has_nan = false;
  static std::string name() { return "trit"; }

  template <class R>
  static std::uint32_t encode_one(float x, R&) {
    return x > 0.5f ? 1u : x < -0.5f ? 2u : 0u;
  }
  static float decode_one(std::uint32_t code) { return code == 1 ? 1.0f : code == 2 ? -1.0f : 0.0f; }
  template <class R>
  static float quantize_one(float x, R& round) {
    return x != x ? x : decode_one(encode_one(x, round));  // NaN propagates
  }
};
// [/archetype]

// [archetype: cost_table]
// Counts bit operations instead of picojoules: a b-bit add costs b, a multiply of a w-bit by an
// a-bit operand costs w * a (the energy model passes gate bits sqrt(w * a)), memory is free.
struct bit_operations {
  static constexpr std::string_view name = "bit_operations";
  static constexpr double add_pj(double bits) { return bits; }
  static constexpr double mul_pj(double bits) { return bits * bits; }
  static constexpr double float_add_pj(int bits) { return bits; }
  static constexpr double float_mul_pj(int bits) { return static_cast<double>(bits) * bits; }
  static constexpr int sram_word_bits = 64;
  static constexpr double sram_access_pj(double) { return 0.0; }
  static constexpr double dram_pj_per_bit = 0.0;
};
// [/archetype]

// [archetype: layer]
// y = a * x with one trainable scalar a, on any input shape.
class scale_layer : public qnas::nn::layer {
 public:
  explicit scale_layer(qnas::nn::tensor_shape in) : layer("scale", in, in) {
    a_.name = "scale.a";
    a_.value = xt::xarray<float>({1.0f});
    a_.grad = xt::xarray<float>({0.0f});
    a_.decay = false;
  }
  std::vector<qnas::nn::parameter*> parameters() override { return {&a_}; }
  [[nodiscard]] qnas::nn::layer_description describe() const override {
    qnas::nn::layer_description d = layer::describe();  // kind, shapes, output format
    d.op = qnas::nn::layer_op::activation;              // element-wise, shape kept
    d.params = 1;
    return d;
  }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool /*training*/) override {
    check_input(x);
    x_ = &x;  // forward's contract: x stays alive until backward
    y_ = a_.value(0) * x;
    return y_;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_input_grad) override {
    a_.grad(0) += xt::sum(dy * *x_)();
    if (!need_input_grad) return empty_;
    dx_ = a_.value(0) * dy;
    return dx_;
  }

 private:
  qnas::nn::parameter a_;
  const xt::xarray<float>* x_ = nullptr;
  xt::xarray<float> y_, dx_;
};
// [/archetype]

// [archetype: strategy]
// Visits the space in index order (an odometer over the decisions); its state is the next one.
class sweep {
 public:
  explicit sweep(qnas::space_description space) : space_(std::move(space)) {
    next_.choices.assign(space_.num_decisions(), 0);
  }
  qnas::candidate ask() {
    qnas::candidate c = next_;
    for (std::size_t i = 0; i < next_.size(); ++i) {  // advance, wrapping around
      if (++next_[i] < space_.cardinality(i)) break;
      next_[i] = 0;
    }
    return c;
  }
  void tell(const qnas::candidate& c, double reward) {
    qnas::check_candidate(c, space_, "sweep::tell");
    if (!std::isfinite(reward)) throw qnas::invalid_argument("sweep::tell", "the reward is not finite");
  }
  [[nodiscard]] nlohmann::json save() const {
    return {{"strategy", name()}, {"space", space_.fingerprint_hex()}, {"next", next_.choices}};
  }
  void load(const nlohmann::json& j) {
    if (j.value("strategy", "") != name() || j.value("space", "") != space_.fingerprint_hex())
      throw qnas::invalid_argument("sweep::load", "the state was saved by another strategy or for another space");
    qnas::candidate next(j.at("next").get<std::vector<std::uint32_t>>());
    qnas::check_candidate(next, space_, "sweep::load");
    next_ = std::move(next);
  }
  [[nodiscard]] std::string name() const { return "sweep"; }
  [[nodiscard]] const qnas::space_description& space() const { return space_; }

 private:
  qnas::space_description space_;
  qnas::candidate next_;
};
// [/archetype]

// [archetype: evaluator]
// Measures without training: accuracy grows with decision 0, energy with decision 1. It is
// const and keeps no state, so the runner may call it from several threads at once.
struct index_evaluator {
  qnas::search::metrics operator()(const qnas::candidate& c, const qnas::search::evaluation_context&) const {
    return {{"accuracy", 0.5 + 0.1 * c[0]}, {"energy_pj", 100.0 * (1 + c[1])}};
  }
};
// [/archetype]

// [archetype: objective]
// Reward = accuracy minus a price per picojoule.
struct accuracy_minus_energy {
  double per_pj = 1e-3;
  double operator()(const qnas::search::metrics& m) const { return m.at("accuracy") - per_pj * m.at("energy_pj"); }
};
// [/archetype]

// [archetype: search_callback]
// Stops the search after `limit` trials (on_trial_end returns true to stop).
struct stop_after {
  std::size_t limit = 1;
  std::size_t seen = 0;
  bool on_trial_end(const qnas::search::trial_record&) { return ++seen >= limit; }
};
// [/archetype]

// [archetype: optimizer]
// Plain gradient descent: value -= learning_rate * grad. It keeps no per-parameter state.
class plain_sgd {
 public:
  explicit plain_sgd(float learning_rate) : lr_(learning_rate) {}
  void step(std::span<qnas::nn::parameter* const> params) {
    for (qnas::nn::parameter* p : params) p->value -= lr_ * p->grad;
  }
  void set_learning_rate(float lr) { lr_ = lr; }
  [[nodiscard]] float learning_rate() const { return lr_; }
  void reset() {}  // nothing to forget

 private:
  float lr_;
};
// [/archetype]

// [archetype: lr_schedule]
// Halves the learning rate every `period` optimizer steps.
struct halving {
  float base = 0.1f;
  std::size_t period = 10;
  float operator()(std::size_t step) const { return std::ldexp(base, -static_cast<int>(step / period)); }
};
// [/archetype]

// [archetype: loss]
// Squared error against one-hot labels, summed over classes, averaged over the batch.
struct one_hot_squared_error {
  float operator()(const xt::xarray<float>& logits, std::span<const qnas::data::label_t> labels,
                   xt::xarray<float>& dlogits) const {
    const std::size_t n = logits.shape()[0], k = logits.shape()[1];
    dlogits.resize(std::vector<std::size_t>{n, k});
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < k; ++j) {
        const float d = logits(i, j) - (static_cast<std::size_t>(labels[i]) == j ? 1.0f : 0.0f);
        sum += static_cast<double>(d) * d;
        dlogits(i, j) = 2.0f * d / static_cast<float>(n);
      }
    return static_cast<float>(sum / static_cast<double>(n));
  }
};
// [/archetype]

// [archetype: train_callback]
// Records the training loss of every epoch.
struct loss_log {
  std::vector<double> losses;
  void on_epoch_end(const qnas::train::epoch_stats& s) { losses.push_back(s.train_loss); }
};
// [/archetype]

using namespace qnas;

// Each archetype models its concept, and the entry-point checks accept it.
static_assert(number_format<trit> && scalar_format<trit> && check_number_format<trit>());
static_assert(energy::cost_table<bit_operations> && energy::check_cost_table<bit_operations>());
static_assert(search::strategy<sweep> && search::check_strategy<sweep>());
static_assert(search::evaluator<index_evaluator> && search::check_evaluator<index_evaluator>());
static_assert(search::objective<accuracy_minus_energy> && search::check_objective<accuracy_minus_energy>());
static_assert(search::search_callback<stop_after>);
static_assert(train::optimizer<plain_sgd> && train::check_optimizer<plain_sgd>());
static_assert(train::lr_schedule<halving> && train::check_lr_schedule<halving>());
static_assert(train::loss_function<one_hot_squared_error> && train::check_loss_function<one_hot_squared_error>());
static_assert(train::train_callback<loss_log>);
// ... and the built-in ones pass the same checks.
static_assert(check_number_format<int8>() && search::check_objective<search::maximize_metric>());
static_assert(train::check_lr_schedule<train::cosine_schedule>() && train::check_loss_function<train::cross_entropy_loss>());
// Types that are not what the concept asks for are refused quietly by the concept (the entry
// points' static_asserts are what name the missing member; tests/fail checks those messages).
static_assert(!number_format<float> && !search::strategy<index_evaluator> && !search::evaluator<sweep>);
static_assert(!search::objective<sweep> && !train::optimizer<halving> && !search::search_callback<plain_sgd>);

namespace {

space_description two_decisions() {
  return space_description({{"width", decision_kind::ordinal, 3, {}}, {"depth", decision_kind::ordinal, 2, {}}});
}

}  // namespace

TEST_CASE("number_format archetype: obeys the laws and quantizes like a built-in format") {
  const auto report = testing::check_format<trit>();
  INFO(report);
  CHECK(static_cast<bool>(report));
  CHECK(values<trit>() == std::vector<float>{-1.0f, 0.0f, 1.0f});
  const xt::xarray<float> x = {0.7f, -0.2f, -3.0f, 0.5f};
  const xt::xarray<float> expected = {1.0f, 0.0f, -1.0f, 0.0f};
  CHECK(quantize<trit>(x) == expected);
  CHECK(decode(encode<trit>(x)) == expected);
}

TEST_CASE("cost_table archetype: prices a layer's multiply-accumulates as bit operations") {
  constexpr format_info i8 = info_of<int8>(), i4 = info_of<fixed_point<4, 0>>();
  // dense 16 -> 4 without bias: 64 MACs of a 4-bit weight by an 8-bit input = 32 bit operations each
  constexpr auto l = energy::dense("fc", {1, 1, 16}, 4, false).with_formats(i4, i4, i8, i8);
  constexpr energy::layer_energy e = energy::price_layer<bit_operations>(l);
  static_assert(e.macs == 64);
  CHECK(e.accumulator_bits > 0);
  CHECK(e.op == doctest::Approx(64.0 * (4 * 8 + e.accumulator_bits)));
  CHECK(e.inputs == 0.0);  // memory is free in this table
  CHECK(e.parameters == 0.0);
}

TEST_CASE("layer archetype: forward and backward by hand, trained inside a sequential network") {
  scale_layer l(nn::flat(3));
  const xt::xarray<float> x = {{1.0f, -2.0f, 0.5f}};
  CHECK(l.forward(x, true) == x);  // a = 1
  l.parameters()[0]->value(0) = 2.0f;
  CHECK(l.forward(x, true) == xt::xarray<float>({{2.0f, -4.0f, 1.0f}}));
  const xt::xarray<float> dy = {{1.0f, 1.0f, 2.0f}};
  CHECK(l.backward(dy) == xt::xarray<float>({{2.0f, 2.0f, 4.0f}}));  // dx = a * dy
  CHECK(l.parameters()[0]->grad(0) == doctest::Approx(1.0 - 2.0 + 1.0));  // da = sum(dy * x)
  // Every check but export: a layer is exported once nn::layer_registry knows how to read it back.
  testing::layer_check_options opt;
  opt.skipping(testing::layer_check::export_reload);
  const auto report = testing::check_layer([] { return std::make_unique<scale_layer>(nn::image(2, 3, 2)); }, opt);
  INFO(report);
  CHECK(static_cast<bool>(report));
  const auto d = l.describe();
  CHECK(d.params == 1);
  CHECK(d.op == nn::layer_op::activation);
  CHECK(d.input == nn::flat(3));

  // In a network: the scale learns to map x to 3x.
  nn::sequential net(nn::flat(1));
  auto& s = net.emplace<scale_layer>();
  xt::xarray<float> in = xt::zeros<float>({2, 1});
  in(0, 0) = 1.0f;
  in(1, 0) = 2.0f;
  for (int step = 0; step < 200; ++step) {
    net.zero_grad();
    const auto& y = net.forward(in, true);
    net.backward(xt::xarray<float>(y - 3.0f * in), false);  // d(0.5 * |y - 3x|^2) / dy
    s.parameters()[0]->value -= 0.05f * s.parameters()[0]->grad;
  }
  CHECK(s.parameters()[0]->value(0) == doctest::Approx(3.0f).epsilon(1e-4));
}

TEST_CASE("strategy, evaluator, objective and search_callback archetypes run a search") {
  // Both searches pass a stop_after, so that the runner is instantiated once (a second set of
  // argument types would compile the whole runner again); this one's limit is never reached.
  sweep strategy(two_decisions());
  search::runner_options o;
  o.max_trials = 6;
  o.threads = 2;
  stop_after never{o.max_trials + 1};
  const auto r = search::run_search(strategy, index_evaluator{}, accuracy_minus_energy{}, o, never);
  REQUIRE(r.history.size() == 6);
  CHECK(r.reason == search::stop_reason::max_trials);
  CHECK(never.seen == 6);  // the callback saw every trial
  std::set<std::vector<std::uint32_t>> seen;
  for (const auto& t : r.history) seen.insert(t.cand.choices);
  CHECK(seen.size() == 6);  // the sweep visits the whole space once
  // best: width 2 (accuracy 0.7), depth 0 (100 pJ) -> 0.7 - 0.1
  CHECK(r.best_trial().cand.choices == std::vector<std::uint32_t>{2, 0});
  CHECK(*r.best_trial().reward == doctest::Approx(0.6));

  // save / load continue exactly; a state for another strategy is refused
  sweep a(two_decisions()), b(two_decisions());
  (void)a.ask();
  b.load(a.save());
  CHECK(a.ask() == b.ask());
  CHECK_THROWS_AS(b.load({{"strategy", "other"}}), qnas::invalid_argument);
  CHECK_THROWS_AS(a.tell(a.ask(), std::nan("")), qnas::invalid_argument);

  // the callback stops the search after 2 trials
  sweep again(two_decisions());
  stop_after stop{2};
  const auto stopped = search::run_search(again, index_evaluator{}, accuracy_minus_energy{}, o, stop);
  CHECK(stopped.history.size() == 2);
  CHECK(stopped.reason == search::stop_reason::callback);
}

TEST_CASE("optimizer, lr_schedule, loss and train_callback archetypes train a network") {
  // Two classes on a line: x < 0 is class 0, x > 0 class 1.
  data::dataset d;
  d.classes = 2;
  d.images = xt::zeros<float>({8, 1, 1, 1});
  d.labels.resize(8);
  for (std::size_t i = 0; i < 8; ++i) {
    d.images(i, 0, 0, 0) = static_cast<float>(i) - 3.5f;
    d.labels[i] = static_cast<data::label_t>(i >= 4);
  }
  nn::sequential net(nn::image(1, 1, 1));
  net.emplace<nn::flatten_layer>();
  net.emplace<nn::dense_layer>(2);
  std::mt19937_64 e(3);
  net.initialize(e);
  plain_sgd opt(0.05f);
  train::trainer t(net, opt, halving{0.05f, 8}, one_hot_squared_error{});
  loss_log log;
  t.fit(d, nullptr, {.epochs = 8, .batch_size = 4}, log);
  REQUIRE(log.losses.size() == 8);
  CHECK(log.losses.back() < log.losses.front());
  CHECK(opt.learning_rate() == doctest::Approx(0.05f / 2));  // steps 8..15 run at base / 2
  CHECK(train::evaluate(net, d).accuracy == doctest::Approx(1.0));
}

namespace {

// The archetypes in `text` (each between its begin and end marker lines), by name.
std::map<std::string, std::string> archetypes_in_source(const std::string& text) {
  std::map<std::string, std::string> out;
  // built in two pieces, so that these lines are not taken for markers themselves
  const std::string open = std::string("\n// [arche") + "type: ", close = std::string("\n// [/arche") + "type]\n";
  for (std::size_t at = text.find(open); at != std::string::npos; at = text.find(open, at + 1)) {
    const std::size_t name_end = text.find("]\n", at);
    const std::size_t body = name_end + 2, end = text.find(close, body - 1);
    REQUIRE(end != std::string::npos);
    out[text.substr(at + open.size(), name_end - at - open.size())] = text.substr(body, end + 1 - body);
  }
  return out;
}

// The code blocks that follow `<!-- archetype: NAME -->` in the page, by name.
std::map<std::string, std::string> archetypes_in_doc(const std::string& text) {
  std::map<std::string, std::string> out;
  const std::string open = "<!-- archetype: ", fence = "```cpp\n", close = "```\n";
  for (std::size_t at = text.find(open); at != std::string::npos; at = text.find(open, at + 1)) {
    const std::size_t name_end = text.find(" -->\n", at);
    REQUIRE(name_end != std::string::npos);
    const std::size_t body = name_end + 5;
    REQUIRE(text.compare(body, fence.size(), fence) == 0);
    const std::size_t end = text.find(close, body + fence.size());
    REQUIRE(end != std::string::npos);
    out[text.substr(at + open.size(), name_end - at - open.size())] =
        text.substr(body + fence.size(), end - body - fence.size());
  }
  return out;
}

std::string read_text(const char* path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read ", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("docs/extending.md quotes every archetype of this file verbatim") {
  const auto source = archetypes_in_source(read_text(QNAS_EXTENDING_TEST_SOURCE));
  const auto doc = archetypes_in_doc(read_text(QNAS_EXTENDING_DOC));
  const std::set<std::string> points = {"number_format", "cost_table", "layer", "strategy",
                                        "evaluator", "objective", "search_callback", "optimizer",
                                        "lr_schedule", "loss", "train_callback"};
  std::set<std::string> in_source, in_doc;
  for (const auto& [name, code] : source) in_source.insert(name);
  for (const auto& [name, code] : doc) in_doc.insert(name);
  CHECK(in_source == points);
  CHECK(in_doc == points);
  for (const auto& [name, code] : source) {
    INFO("archetype ", name);
    const auto it = doc.find(name);
    REQUIRE(it != doc.end());
    CHECK(it->second == code);
  }
}
