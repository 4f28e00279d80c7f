// The ask/tell protocol for every strategy: determinism by seed, save/load round trips that
// continue exactly, batched asks, reward and state validation.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "qnas/search/lstm_controller.hpp"
#include "qnas/search/random_search.hpp"
#include "qnas/search/regularized_evolution.hpp"
#include "qnas/search/reinforce.hpp"

using namespace qnas;
using namespace qnas::search;

namespace {

// Mixed cardinalities and kinds, like a real quantization space.
space_description mixed_space() {
  std::vector<decision_info> ds;
  const std::size_t cards[] = {3, 5, 2, 4, 7, 1, 4, 6};
  for (std::size_t i = 0; i < std::size(cards); ++i)
    ds.push_back({"d" + std::to_string(i), i % 2 ? decision_kind::ordinal : decision_kind::categorical, cards[i], {}});
  return space_description(ds);
}

// A deterministic, non-trivial reward: matches with a fixed target, weighted by position.
double reward_of(const candidate& c) {
  const std::uint32_t target[] = {2, 1, 0, 3, 6, 0, 1, 5};
  double r = 0;
  for (std::size_t i = 0; i < c.size(); ++i) r += (c[i] == target[i]) * (1.0 + 0.1 * static_cast<double>(i));
  return r;
}

template <class S>
S make(const space_description& s, std::uint64_t seed) {
  if constexpr (std::is_same_v<S, regularized_evolution>)
    return S(s, {.population_size = 10, .sample_size = 3}, seed);  // small P so mutation starts early
  else if constexpr (std::is_same_v<S, random_search>)
    return S(s, {.deduplicate = true}, seed);
  else if constexpr (std::is_same_v<S, lstm_controller>)
    return S(s, {.hidden_size = 8}, seed);
  else
    return S(s, seed);
}

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

#define QNAS_ALL_STRATEGIES random_search, regularized_evolution, one_plus_one_evolution, reinforce, lstm_controller

TEST_CASE_TEMPLATE("same seed, same asks; another seed, other asks", S, QNAS_ALL_STRATEGIES) {
  const auto space = mixed_space();
  auto a = make<S>(space, 7), b = make<S>(space, 7), c = make<S>(space, 8);
  const auto ra = run_steps(a, 60), rb = run_steps(b, 60), rc = run_steps(c, 60);
  CHECK(ra == rb);
  CHECK(ra != rc);
  for (const auto& x : ra) CHECK_NOTHROW(check_candidate(x, space, "test"));
}

TEST_CASE_TEMPLATE("save, load into a fresh object, continue identically", S, QNAS_ALL_STRATEGIES) {
  const auto space = mixed_space();
  auto a = make<S>(space, 11);
  run_steps(a, 37);
  // Leave two asks pending (batch in flight), as a checkpoint taken mid-batch would.
  const auto pending1 = a.ask();
  const auto pending2 = a.ask();
  const auto state = a.save();
  // Through text, as a checkpoint file would be.
  const auto reparsed = nlohmann::json::parse(state.dump());
  auto b = make<S>(space, 999);  // a different seed: everything must come from the state
  b.load(reparsed);
  CHECK(b.save() == state);
  a.tell(pending2, reward_of(pending2));
  b.tell(pending2, reward_of(pending2));
  a.tell(pending1, reward_of(pending1));
  b.tell(pending1, reward_of(pending1));
  CHECK(run_steps(a, 40) == run_steps(b, 40));
}

TEST_CASE_TEMPLATE("load refuses a state from another strategy or another space", S, QNAS_ALL_STRATEGIES) {
  const auto space = mixed_space();
  auto a = make<S>(space, 1);
  run_steps(a, 5);
  auto state = a.save();
  auto other_space = space.decisions();
  other_space[3].labels[0] = "renamed";
  auto b = make<S>(space_description(other_space), 1);
  CHECK_THROWS_AS(b.load(state), qnas::invalid_argument);
  auto wrong = state;
  wrong["strategy"] = "something_else";
  auto c = make<S>(space, 1);
  CHECK_THROWS_AS(c.load(wrong), qnas::invalid_argument);
  auto bad_engine = state;
  bad_engine["engine"] = "not an engine";
  CHECK_THROWS_AS(c.load(bad_engine), qnas::invalid_argument);
  // A failed load leaves the object usable and unchanged.
  CHECK(c.save() == make<S>(space, 1).save());
}

TEST_CASE_TEMPLATE("load refuses a state with a member missing or of the wrong type, naming the strategy", S,
                   QNAS_ALL_STRATEGIES) {
  const auto space = mixed_space();
  auto a = make<S>(space, 1);
  run_steps(a, 5);
  const auto state = a.save();
  const auto fresh = make<S>(space, 1).save();
  // Every member the strategy wrote, removed in turn and then replaced by a value of the wrong
  // JSON type (a corrupt checkpoint whose CRC still matches, or a hand-edited one).
  for (const auto& [key, value] : state.items()) {
    for (int variant = 0; variant < 2; ++variant) {
      auto bad = state;
      if (variant == 0)
        bad.erase(key);
      else
        bad[key] = value.is_string() ? nlohmann::json::array({1, 2}) : nlohmann::json("not a value");
      auto b = make<S>(space, 1);
      CAPTURE(key);
      CAPTURE(variant);
      try {
        b.load(bad);
        FAIL("load accepted a state without a valid '" << key << "'");
      } catch (const qnas::invalid_argument& e) {
        CHECK(std::string(e.what()).find(b.name()) != std::string::npos);
      } catch (const std::exception& e) {
        FAIL("load threw something other than qnas::invalid_argument: " << e.what());
      }
      CHECK(b.save() == fresh);  // a refused load changes nothing
    }
  }
}

TEST_CASE_TEMPLATE("non-finite rewards and foreign candidates are refused, naming the candidate", S,
                   QNAS_ALL_STRATEGIES) {
  const auto space = mixed_space();
  auto a = make<S>(space, 3);
  const auto c = a.ask();
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    try {
      a.tell(c, bad);
      FAIL("expected invalid_argument");
    } catch (const qnas::invalid_argument& e) {
      const std::string what = e.what();
      CHECK(what.find("not finite") != std::string::npos);
      CHECK(what.find(to_string(c, space)) != std::string::npos);
    }
  }
  CHECK_THROWS_AS(a.tell(candidate({0, 0}), 1.0), qnas::invalid_argument);
  auto out_of_range = c;
  out_of_range[0] = 3;  // d0 has 3 alternatives
  CHECK_THROWS_AS(a.tell(out_of_range, 1.0), qnas::invalid_argument);
}

TEST_CASE_TEMPLATE("a batch of asks told in another order works and stays deterministic", S, QNAS_ALL_STRATEGIES) {
  const auto space = mixed_space();
  auto batch_run = [&](std::uint64_t seed) {
    auto s = make<S>(space, seed);
    std::vector<candidate> all;
    for (int round = 0; round < 8; ++round) {
      std::vector<candidate> batch;
      for (int k = 0; k < 6; ++k) batch.push_back(s.ask());
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) s.tell(*it, reward_of(*it));
      all.insert(all.end(), batch.begin(), batch.end());
    }
    return all;
  };
  CHECK(batch_run(5) == batch_run(5));
}

TEST_CASE("any_strategy holds any strategy behind one type") {
  const auto space = mixed_space();
  std::vector<any_strategy> v;
  v.emplace_back(random_search(space, 1));
  v.emplace_back(regularized_evolution(space, 1));
  v.emplace_back(reinforce(space, 1));
  v.emplace_back(lstm_controller(space, 1));
  for (auto& s : v) {
    const auto c = s.ask();
    s.tell(c, reward_of(c));
    CHECK(s.save()["strategy"] == s.name());
    CHECK(s.space() == space);
  }
  static_assert(strategy<any_strategy>);
}

TEST_CASE("random_search with de-duplication asks every candidate once, then refuses") {
  const space_description space({{"a", decision_kind::categorical, 3, {}}, {"b", decision_kind::ordinal, 4, {}}});
  random_search s(space, {.deduplicate = true}, 2);
  std::set<candidate> seen;
  for (int i = 0; i < 12; ++i) seen.insert(s.ask());
  CHECK(seen.size() == 12);
  CHECK_THROWS_AS((void)s.ask(), qnas::error);
}

TEST_CASE("mutation changes exactly one decision to a different value; ordinal ones step to a neighbour") {
  const auto space = mixed_space();
  engine_type e(4);
  for (int i = 0; i < 2000; ++i) {
    const auto parent = search::detail::uniform_candidate(space, e);
    for (bool step : {false, true}) {
      const auto child = search::detail::mutate(parent, space, step, e);
      int changed = 0;
      for (std::size_t d = 0; d < space.num_decisions(); ++d) {
        if (child[d] == parent[d]) continue;
        ++changed;
        CHECK(child[d] < space.cardinality(d));
        if (step && space[d].kind == decision_kind::ordinal)
          CHECK(std::abs(static_cast<int>(child[d]) - static_cast<int>(parent[d])) == 1);
      }
      CHECK(changed == 1);
    }
  }
}
