// Defaults that follow the declared trial budget: evolution's population and tournament size and
// REINFORCE's learning rate follow the documented rules, explicit options win, the derived values
// are saved and restored (a resumed search is the same search), and expect_trials() declares the
// budget after construction only while nothing was asked or told.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "qnas/search/random_search.hpp"
#include "qnas/search/regularized_evolution.hpp"
#include "qnas/search/reinforce.hpp"
#include "qnas/search/runner.hpp"

using namespace qnas;
using namespace qnas::search;

namespace {

space_description test_space() {
  return space_description({{"a", decision_kind::categorical, 5, {}},
                            {"b", decision_kind::ordinal, 4, {}},
                            {"c", decision_kind::categorical, 3, {}},
                            {"d", decision_kind::categorical, 6, {}}});
}

double reward_of(const candidate& c) { return 1.0 * c[0] - 0.5 * c[1] + (c[2] == 1) + 0.25 * c[3]; }

template <class S>
std::vector<candidate> run_steps(S& s, int n) {
  std::vector<candidate> out;
  for (int i = 0; i < n; ++i) {
    auto c = s.ask();
    s.tell(c, reward_of(c));
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

TEST_CASE("evolution's default population and tournament follow the budget rule") {
  using evo = regularized_evolution;
  // P = clamp(B / 20, 10, 100), P = 10 when B is unknown; S = min(5, P).
  CHECK(evo::default_population_size(0) == 10);
  CHECK(evo::default_population_size(1) == 10);
  CHECK(evo::default_population_size(50) == 10);
  CHECK(evo::default_population_size(219) == 10);
  CHECK(evo::default_population_size(300) == 15);
  CHECK(evo::default_population_size(1000) == 50);
  CHECK(evo::default_population_size(2000) == 100);
  CHECK(evo::default_population_size(1000000) == 100);
  CHECK(evo::default_sample_size(10) == 5);
  CHECK(evo::default_sample_size(100) == 5);
  CHECK(evo::default_sample_size(3) == 3);
  CHECK(evo::default_sample_size(1) == 1);

  const auto space = test_space();
  const evo unknown(space, 1);
  CHECK(unknown.population_size() == 10);
  CHECK(unknown.sample_size() == 5);
  CHECK(unknown.get_options().expected_trials == 0);
  const evo declared(space, {.expected_trials = 1000}, 1);
  CHECK(declared.population_size() == 50);
  CHECK(declared.sample_size() == 5);
  // Explicit values win; the unset one is still derived.
  const evo explicit_p(space, {.population_size = 20, .expected_trials = 1000}, 1);
  CHECK(explicit_p.population_size() == 20);
  CHECK(explicit_p.sample_size() == 5);
  const evo small_p(space, {.population_size = 3}, 1);
  CHECK(small_p.sample_size() == 3);
  const evo explicit_s(space, {.sample_size = 2, .expected_trials = 300}, 1);
  CHECK(explicit_s.population_size() == 15);
  CHECK(explicit_s.sample_size() == 2);
  // Options written positionally before expected_trials existed keep their meaning.
  const evo positional(space, evo::options{8, 3, true}, 1);
  CHECK(positional.population_size() == 8);
  CHECK(positional.sample_size() == 3);
  CHECK(positional.get_options().expected_trials == 0);
  // An explicit S above the derived P is refused, and the message says where P came from.
  CHECK_THROWS_WITH_AS(evo(space, {.sample_size = 25}, 1),
                       doctest::Contains("sample_size (25) must not exceed population_size (10, derived from "
                                         "expected_trials = 0)"),
                       qnas::invalid_argument);

  // Derived values run the same search as the same values written out.
  evo derived(space, {.expected_trials = 300}, 7);
  evo written(space, {.population_size = 15, .sample_size = 5}, 7);
  CHECK(run_steps(derived, 60) == run_steps(written, 60));
}

TEST_CASE("REINFORCE's default learning rate follows the budget rule") {
  // lr = min(0.2, 1 / sqrt(max(1, B - delay))), lr = 0.1 when B is unknown.
  CHECK(reinforce::default_learning_rate(0) == 0.1);
  CHECK(reinforce::default_learning_rate(1) == 0.2);
  CHECK(reinforce::default_learning_rate(25) == 0.2);
  CHECK(reinforce::default_learning_rate(100) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(reinforce::default_learning_rate(400) == doctest::Approx(0.05).epsilon(1e-15));
  CHECK(reinforce::default_learning_rate(10000) == doctest::Approx(0.01).epsilon(1e-15));
  CHECK(reinforce::default_learning_rate(500, 100) == doctest::Approx(0.05).epsilon(1e-15));  // 400 updates
  CHECK(reinforce::default_learning_rate(50, 100) == 0.2);  // no update at all: the cap

  const auto space = test_space();
  CHECK(reinforce(space, 1).learning_rate() == 0.1);
  CHECK(reinforce(space, {.expected_trials = 400}, 1).learning_rate() == doctest::Approx(0.05).epsilon(1e-15));
  CHECK(reinforce(space, {.learning_rate = 0.3, .expected_trials = 400}, 1).learning_rate() == 0.3);
  CHECK(reinforce(space, {.delay = 100, .expected_trials = 500}, 1).learning_rate() ==
        doctest::Approx(0.05).epsilon(1e-15));

  reinforce derived(space, {.expected_trials = 400}, 7);
  reinforce written(space, {.learning_rate = reinforce::default_learning_rate(400)}, 7);
  CHECK(run_steps(derived, 80) == run_steps(written, 80));
}

TEST_CASE("derived defaults are saved, and a resumed search continues exactly") {
  const auto space = test_space();
  SUBCASE("regularized_evolution") {
    regularized_evolution a(space, {.expected_trials = 400}, 3);
    (void)run_steps(a, 30);
    const auto j = a.save();
    CHECK(j["options"]["population_size"] == 20);
    CHECK(j["options"]["sample_size"] == 5);
    CHECK(j["options"]["expected_trials"] == 400);
    // A fresh strategy with other options (and another budget) takes the saved values.
    regularized_evolution b(space, {.expected_trials = 50}, 99);
    b.load(j);
    CHECK(b.population_size() == 20);
    CHECK(b.sample_size() == 5);
    CHECK(b.get_options().expected_trials == 400);
    CHECK(run_steps(a, 40) == run_steps(b, 40));
    // A state written before expected_trials existed still loads, as an undeclared budget.
    auto old = j;
    old["options"].erase("expected_trials");
    regularized_evolution c(space, 5);
    c.load(old);
    CHECK(c.get_options().expected_trials == 0);
    CHECK(c.population_size() == 20);
    regularized_evolution d(space, 5);
    d.load(j);
    CHECK(run_steps(c, 20) == run_steps(d, 20));
    // A state saved with explicit options loads unchanged.
    regularized_evolution e(space, {.population_size = 8, .sample_size = 3}, 4);
    (void)run_steps(e, 12);
    regularized_evolution f(space, 4);
    f.load(e.save());
    CHECK(f.population_size() == 8);
    CHECK(f.sample_size() == 3);
    CHECK(run_steps(e, 20) == run_steps(f, 20));
  }
  SUBCASE("reinforce") {
    reinforce a(space, {.expected_trials = 400}, 3);
    (void)run_steps(a, 30);
    const auto j = a.save();
    CHECK(j["options"]["learning_rate"].get<double>() == a.learning_rate());
    CHECK(j["options"]["expected_trials"] == 400);
    reinforce b(space, {.expected_trials = 50}, 99);
    b.load(j);
    CHECK(b.learning_rate() == a.learning_rate());
    CHECK(b.get_options().expected_trials == 400);
    CHECK(run_steps(a, 40) == run_steps(b, 40));
    auto old = j;
    old["options"].erase("expected_trials");
    reinforce c(space, 5);
    c.load(old);
    CHECK(c.get_options().expected_trials == 0);
    CHECK(c.learning_rate() == a.learning_rate());
  }
}

TEST_CASE("expect_trials declares the budget before the search starts, never overriding explicit options") {
  const auto space = test_space();
  static_assert(budget_aware<regularized_evolution>);
  static_assert(budget_aware<reinforce>);
  static_assert(budget_aware<any_strategy>);
  static_assert(!budget_aware<random_search>);

  regularized_evolution e(space, 7);
  expect_trials(e, 1000);
  CHECK(e.population_size() == 50);
  CHECK(e.sample_size() == 5);
  CHECK(e.get_options().expected_trials == 1000);
  regularized_evolution declared(space, {.expected_trials = 1000}, 7);
  CHECK(run_steps(e, 80) == run_steps(declared, 80));
  // After the first ask the budget can no longer change the search.
  CHECK_THROWS_WITH_AS(e.expect_trials(300), doctest::Contains("before the first ask"), qnas::invalid_argument);

  regularized_evolution explicit_p(space, {.population_size = 12}, 7);
  explicit_p.expect_trials(1000);
  CHECK(explicit_p.population_size() == 12);
  CHECK(explicit_p.sample_size() == 5);
  regularized_evolution explicit_budget(space, {.expected_trials = 300}, 7);
  explicit_budget.expect_trials(1000);  // the caller's own declaration wins
  CHECK(explicit_budget.population_size() == 15);
  // An explicit S is checked against the P the budget derives.
  regularized_evolution big_s(space, {.sample_size = 40, .expected_trials = 1000}, 7);
  CHECK(big_s.population_size() == 50);
  CHECK_THROWS_AS(regularized_evolution(space, {.sample_size = 40}, 7), qnas::invalid_argument);

  reinforce r(space, 7);
  any_strategy a(reinforce(space, 7));
  a.expect_trials(400);
  r.expect_trials(400);
  CHECK(r.learning_rate() == doctest::Approx(0.05).epsilon(1e-15));
  CHECK(run_steps(r, 50) == run_steps(a, 50));
  CHECK_THROWS_WITH_AS(r.expect_trials(100), doctest::Contains("before the first tell"), qnas::invalid_argument);
  reinforce explicit_lr(space, {.learning_rate = 0.3}, 7);
  explicit_lr.expect_trials(400);
  CHECK(explicit_lr.learning_rate() == 0.3);

  // A loaded state keeps its saved values.
  regularized_evolution saved(space, {.expected_trials = 300}, 2);
  regularized_evolution loaded(space, 2);
  loaded.load(saved.save());
  loaded.expect_trials(1000);
  CHECK(loaded.population_size() == 15);

  // Random search has no budget-dependent setting: the free function does nothing.
  random_search rs(space, 1);
  expect_trials(rs, 100);
  any_strategy ars(random_search(space, 1));
  ars.expect_trials(100);
}

TEST_CASE("the runner declares max_trials to a fresh search; a resumed one keeps its saved values") {
  const auto eval = [](const candidate& c) { return metrics{{"accuracy", reward_of(c)}}; };
  runner_options o;
  o.max_trials = 1000;
  o.pareto_axes = {};
  regularized_evolution e(test_space(), 3);
  (void)run_search(e, eval, maximize_metric{}, o);
  CHECK(e.population_size() == 50);  // clamp(1000 / 20, 10, 100)
  CHECK(e.sample_size() == 5);

  reinforce r(test_space(), 3);
  o.max_trials = 400;
  (void)run_search(r, eval, maximize_metric{}, o);
  CHECK(r.learning_rate() == doctest::Approx(1.0 / 20.0));  // 1 / sqrt(400 - 0 delay)

  regularized_evolution fixed(test_space(), regularized_evolution::options{.population_size = 12}, 3);
  (void)run_search(fixed, eval, maximize_metric{}, o);
  CHECK(fixed.population_size() == 12);  // the caller's value wins

  // The same object again, without a checkpoint: it has asked, so it cannot start afresh.
  CHECK_THROWS_WITH_AS((void)run_search(e, eval, maximize_metric{}, o),
                       doctest::Contains("cannot start a fresh search with this strategy"), invalid_argument);
}
