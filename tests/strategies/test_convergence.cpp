// Every strategy finds the known optimum of synthetic objectives within a stated budget, over
// several seeds; the learned strategies do so far faster than random search could.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "qnas/search/lstm_controller.hpp"
#include "qnas/search/random_search.hpp"
#include "qnas/search/regularized_evolution.hpp"
#include "qnas/search/reinforce.hpp"

using namespace qnas;
using namespace qnas::search;

namespace {

// 12 decisions x 4 alternatives: 4^12 = 16.8 million candidates. Random search needs ~16.8M
// draws on average to hit the optimum, so finding it within a few thousand evaluations can only
// come from learning.
space_description big_space(decision_kind kind) {
  std::vector<decision_info> ds;
  for (int i = 0; i < 12; ++i) ds.push_back({"d" + std::to_string(i), kind, 4, {}});
  return space_description(ds);
}

// The optimum: target[i] = (3 * i + 1) % 4.
candidate target_of(const space_description& s) {
  candidate t;
  for (std::size_t i = 0; i < s.num_decisions(); ++i) t.choices.push_back(static_cast<std::uint32_t>((3 * i + 1) % 4));
  return t;
}

// Separable reward: number of decisions matching the target (max 12).
double matches(const candidate& c, const candidate& t) {
  double r = 0;
  for (std::size_t i = 0; i < c.size(); ++i) r += c[i] == t[i];
  return r;
}

// Ordinal reward: minus the L1 distance to the target; neighbour moves climb it.
double neg_l1(const candidate& c, const candidate& t) {
  double r = 0;
  for (std::size_t i = 0; i < c.size(); ++i) r -= std::abs(static_cast<int>(c[i]) - static_cast<int>(t[i]));
  return r;
}

// Runs until the optimum is asked; returns the number of evaluations, or budget + 1.
template <class S, class R>
int evaluations_to_optimum(S& s, const candidate& target, R reward, int budget) {
  for (int n = 1; n <= budget; ++n) {
    const auto c = s.ask();
    if (c == target) return n;
    s.tell(c, reward(c, target));
  }
  return budget + 1;
}

}  // namespace

TEST_CASE("random_search finds the optimum of a 60-candidate space within 60 asks (de-duplicated)") {
  const space_description space({{"a", decision_kind::categorical, 3, {}},
                                 {"b", decision_kind::categorical, 4, {}},
                                 {"c", decision_kind::ordinal, 5, {}}});
  const candidate target({2, 1, 4});
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    random_search s(space, {.deduplicate = true}, seed);
    CHECK(evaluations_to_optimum(s, target, matches, 60) <= 60);
  }
}

TEST_CASE("regularized_evolution finds the optimum of 4^12 candidates within 3000 evaluations (5 seeds)") {
  const auto space = big_space(decision_kind::categorical);
  const auto target = target_of(space);
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    regularized_evolution s(space, {.population_size = 50, .sample_size = 10}, seed);
    const int n = evaluations_to_optimum(s, target, matches, 3000);
    CAPTURE(seed);
    CHECK(n <= 3000);
  }
}

TEST_CASE("regularized_evolution climbs an ordinal objective by neighbour steps") {
  const auto space = big_space(decision_kind::ordinal);
  const auto target = target_of(space);
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    regularized_evolution s(space, {.population_size = 50, .sample_size = 10}, seed);
    CAPTURE(seed);
    CHECK(evaluations_to_optimum(s, target, neg_l1, 3000) <= 3000);
  }
}

TEST_CASE("one_plus_one_evolution finds the optimum within 1000 evaluations (5 seeds)") {
  const auto space = big_space(decision_kind::categorical);
  const auto target = target_of(space);
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    one_plus_one_evolution s(space, seed);
    CAPTURE(seed);
    CHECK(evaluations_to_optimum(s, target, matches, 1000) <= 1000);
  }
}

TEST_CASE("reinforce's argmax is the optimum after 1500 tells; it samples the optimum on the way (5 seeds)") {
  const auto space = big_space(decision_kind::categorical);
  const auto target = target_of(space);
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    reinforce s(space, {.learning_rate = 0.05, .total_tells = 1500}, seed);
    int first_hit = 0;
    for (int n = 1; n <= 1500; ++n) {
      const auto c = s.ask();
      if (c == target && first_hit == 0) first_hit = n;
      s.tell(c, matches(c, target));
    }
    CAPTURE(seed);
    CHECK(first_hit > 0);
    CHECK(s.argmax() == target);
  }
}

TEST_CASE("reinforce: the RL delay keeps the policy uniform, the entropy bonus slows its collapse") {
  const auto space = big_space(decision_kind::categorical);
  const auto target = target_of(space);
  reinforce delayed(space, {.delay = 100}, 1);
  for (int i = 0; i < 100; ++i) {
    const auto c = delayed.ask();
    delayed.tell(c, matches(c, target));
  }
  for (double p : delayed.probabilities(0)) CHECK(p == doctest::Approx(0.25).epsilon(1e-12));
  auto train = [&](double entropy) {
    reinforce s(space, {.entropy_weight = entropy}, 2);
    for (int i = 0; i < 400; ++i) {
      const auto c = s.ask();
      s.tell(c, matches(c, target));
    }
    return s.probabilities(0)[target[0]];
  };
  CHECK(train(0.0) > 0.5);
  CHECK(train(2.0) < train(0.0));
}

TEST_CASE("lstm_controller's greedy decode is the optimum after 3000 tells (3 seeds)") {
  // Heterogeneous cardinalities: 3 x 5 x 2 x 4 x 6 x 3 = 2160 candidates.
  const space_description space({{"a", decision_kind::categorical, 3, {}},
                                 {"b", decision_kind::ordinal, 5, {}},
                                 {"c", decision_kind::categorical, 2, {}},
                                 {"d", decision_kind::categorical, 4, {}},
                                 {"e", decision_kind::ordinal, 6, {}},
                                 {"f", decision_kind::categorical, 3, {}}});
  const candidate target({2, 3, 0, 1, 5, 1});
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    lstm_controller s(space, {.hidden_size = 16, .learning_rate = 0.01}, seed);
    for (int i = 0; i < 3000; ++i) {
      const auto c = s.ask();
      s.tell(c, matches(c, target));
    }
    CAPTURE(seed);
    CHECK(s.argmax() == target);
    CHECK(std::exp(s.log_prob(target)) > 0.5);
  }
}
