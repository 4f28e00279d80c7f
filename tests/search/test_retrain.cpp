// parallel_for and the retraining of a search's finalists (search/parallel.hpp, search/retrain.hpp).
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "qnas/search/retrain.hpp"

using namespace qnas;
using namespace qnas::search;

namespace {

struct item_error : std::runtime_error {
  explicit item_error(std::size_t i) : std::runtime_error("item " + std::to_string(i)), item(i) {}
  std::size_t item;
};

// A trained, rewarded trial.
trial_record trial(std::size_t index, std::vector<std::uint32_t> c, double acc, double energy, double reward) {
  trial_record r;
  r.index = index;
  r.cand = candidate(std::move(c));
  r.values = metrics{{"accuracy", acc}, {"energy_pj", energy}};
  r.reward = reward;
  return r;
}

// The cheap, deterministic "training": accuracy = 0.5 + 0.1 * c[0] plus a per-seed term in
// {-0.02, 0, +0.02} (seed % 3); energy = 100 * (c[0] + 1), the same for every seed. Records the
// (candidate, seed, trial) of every call; throws item_error(seed) for the candidate `fails`.
struct fake_training {
  struct call {
    candidate cand;
    std::uint64_t seed;
    std::size_t trial;
  };
  std::shared_ptr<std::mutex> lock = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<call>> calls = std::make_shared<std::vector<call>>();
  std::optional<candidate> fails;
  bool nan = false;

  static double noise(std::uint64_t seed) { return 0.02 * (static_cast<double>(seed % 3) - 1.0); }
  metrics operator()(const candidate& c, const evaluation_context& ctx) const {
    {
      std::lock_guard g(*lock);
      calls->push_back({c, ctx.seed, ctx.trial});
    }
    if (fails && c == *fails) throw item_error(static_cast<std::size_t>(ctx.seed));
    const double acc = nan ? std::nan("") : 0.5 + 0.1 * c[0] + noise(ctx.seed);
    return {{"accuracy", acc}, {"energy_pj", 100.0 * (c[0] + 1)}};
  }
};

}  // namespace

TEST_CASE("parallel_for runs every item once on any number of threads") {
  for (std::size_t threads : {1u, 2u, 3u, 8u, 64u}) {
    std::vector<std::atomic<int>> runs(50);
    parallel_for(runs.size(), threads, [&](std::size_t i) { ++runs[i]; });
    for (const auto& r : runs) CHECK(r.load() == 1);
  }
  int none = 0;
  parallel_for(0, 4, [&](std::size_t) { ++none; });
  CHECK(none == 0);
  CHECK_THROWS_WITH_AS(parallel_for(3, 0, [](std::size_t) {}), doctest::Contains("threads must be >= 1"),
                       qnas::invalid_argument);
}

TEST_CASE("parallel_for: every item runs when some throw; the lowest item's exception is rethrown after all") {
  for (std::size_t threads : {1u, 2u, 4u, 16u}) {
    std::vector<std::atomic<int>> runs(40);
    try {
      parallel_for(runs.size(), threads, [&](std::size_t i) {
        ++runs[i];
        if (i == 7 || i == 3 || i == 31) throw item_error(i);
      });
      FAIL("no exception");
    } catch (const item_error& e) {
      CHECK(e.item == 3);
    }
    for (const auto& r : runs) CHECK(r.load() == 1);  // nothing skipped after the failures
  }
}

TEST_CASE("seed_list: trial_seed(base, first + k), distinct streams") {
  const auto a = seed_list(11, 3), b = seed_list(11, 3, 1u << 21);
  REQUIRE(a.size() == 3);
  CHECK(a == std::vector<std::uint64_t>{trial_seed(11, 0), trial_seed(11, 1), trial_seed(11, 2)});
  CHECK(b[2] == trial_seed(11, (1u << 21) + 2));
  std::set<std::uint64_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  CHECK(all.size() == 6);
  CHECK(seed_list(11, 0).empty());
}

TEST_CASE("best_by_reward: trained trials only, highest first, one per candidate, ties in trial order") {
  std::vector<trial_record> h;
  h.push_back(trial(0, {0, 0}, 0.70, 10, 0.70));
  h.push_back(trial(1, {1, 0}, 0.90, 10, 0.90));
  h.push_back(trial(2, {2, 0}, 0.99, 10, 0.99));
  h.back().rejected = violation{"energy_pj <= 5", "energy_pj = 10"};  // rejected: never a finalist
  h.push_back(trial(3, {3, 0}, 0.95, 10, 0.95));
  h.back().error = "out of memory";  // failed: never a finalist
  h.push_back(trial(4, {1, 0}, 0.80, 10, 0.80));  // candidate of trial 1 again, lower
  h.push_back(trial(5, {4, 0}, 0.80, 10, 0.80));
  h.push_back(trial(6, {5, 0}, 0.80, 10, 0.80));
  h.push_back(trial(7, {6, 0}, 0.50, 10, 0.50));
  h.back().reward.reset();  // not told a reward

  const auto top = best_by_reward(h, 3);
  REQUIRE(top.size() == 3);
  CHECK(top[0].index == 1);
  CHECK(top[1].index == 5);  // trial 4 (0.80) is trial 1's candidate: skipped
  CHECK(top[2].index == 6);
  CHECK(best_by_reward(h, 100).size() == 4);  // 1, 5, 6, 0
  CHECK(best_by_reward(h, 0).empty());
  CHECK(best_by_reward({}, 3).empty());
}

TEST_CASE("best_of_front: the front of every trained trial, narrowed by keep, most accurate first") {
  std::vector<trial_record> h;
  h.push_back(trial(0, {0}, 0.90, 100, 0));  // front
  h.push_back(trial(1, {1}, 0.80, 50, 0));   // front
  h.push_back(trial(2, {2}, 0.70, 60, 0));   // dominated by 1
  h.push_back(trial(3, {3}, 0.60, 10, 0));   // front
  h.push_back(trial(4, {4}, 0.80, 50, 0));   // ties trial 1 exactly: both on the front
  h.push_back(trial(5, {1}, 0.80, 50, 0));   // trial 1's candidate again
  h.push_back(trial(6, {6}, 0.99, 5, 0));
  h.back().rejected = violation{"x", "y"};  // would dominate everything, but was never trained

  const auto front = best_of_front(h, 10);
  REQUIRE(front.size() == 4);
  CHECK(front[0].index == 0);
  CHECK(front[1].index == 1);
  CHECK(front[2].index == 4);
  CHECK(front[3].index == 3);
  // keep narrows the front; it does not make a new front of what it keeps (trial 2 stays out).
  const auto cheap = best_of_front(h, 10, [](const trial_record& r) { return r.values.at("energy_pj") <= 60; });
  REQUIRE(cheap.size() == 3);
  CHECK(cheap[0].index == 1);
  CHECK(cheap[2].index == 3);
  CHECK(best_of_front(h, 1).size() == 1);
  // Another axis order: energy first (minimised), so the cheapest comes first.
  const auto by_energy = best_of_front(h, 10, {}, {{"energy_pj", direction::minimize}, {"accuracy", direction::maximize}});
  REQUIRE(by_energy.size() == 4);
  CHECK(by_energy[0].index == 3);
  CHECK(by_energy[3].index == 0);

  h.push_back(trial(7, {7}, 0.5, 1, 0));
  h.back().values = metrics{{"accuracy", 0.5}};
  CHECK_THROWS_WITH_AS(best_of_front(h, 3), doctest::Contains("trial 7 does not report the Pareto axis metric 'energy_pj'"),
                       qnas::invalid_argument);
}

TEST_CASE("retrainer: same seeds for every finalist, mean and spread per finalist, ranked on the mean") {
  fake_training f;
  retrainer rt(f, {.threads = 2});
  const std::vector<trial_record> finalists = {trial(4, {1}, 0.9, 200, 0.9), trial(9, {3}, 0.7, 400, 0.7),
                                               trial(2, {2}, 0.8, 300, 0.8)};
  const std::vector<std::uint64_t> seeds = {3, 4, 5};  // noise 0 -> -0.02, 4 -> 0, 5 -> +0.02
  const retrain_result r = rt.run(finalists, seeds);

  CHECK(r.metric == "accuracy");
  CHECK(r.seeds == seeds);
  REQUIRE(r.finalists.size() == 3);
  CHECK(rt.trainings() == 9);
  std::multiset<std::pair<std::vector<std::uint32_t>, std::uint64_t>> pairs;
  for (const auto& c : *f.calls) {
    pairs.insert({c.cand.choices, c.seed});
    CHECK(c.trial == 0);
  }
  for (const auto& x : finalists)
    for (auto s : seeds) CHECK(pairs.count({x.cand.choices, s}) == 1);  // every pair, once

  const finalist_result& a = r.finalists[0];
  REQUIRE(a.trial);
  CHECK(a.trial->index == 4);
  CHECK(a.cand == candidate({1}));
  REQUIRE(a.values.size() == 3);
  CHECK(a.values[0] == doctest::Approx(0.6 - 0.02));  // in seed order
  CHECK(a.values[2] == doctest::Approx(0.6 + 0.02));
  CHECK(a.stats.count == 3);
  CHECK(a.stats.mean == doctest::Approx(0.6));
  CHECK(a.stats.stddev == doctest::Approx(0.02));  // sample standard deviation of {-0.02, 0, 0.02}
  CHECK(a.stats.min == doctest::Approx(0.58));
  CHECK(a.stats.max == doctest::Approx(0.62));
  CHECK(a.mean.at("energy_pj") == 200.0);  // the same on every seed: exactly that value
  CHECK(a.mean.at("accuracy") == a.stats.mean);
  CHECK(a.rank == a.stats.mean);
  CHECK(a.runs.size() == 3);
  // Finalist c[0] = 3 has the highest mean accuracy, though it was last in the search.
  CHECK(r.best == 1);
  CHECK(r.best_finalist().trial->index == 9);
  CHECK(r.ranking() == std::vector<std::size_t>{1, 2, 0});
}

TEST_CASE("retrainer: a ranking objective on the mean metrics; equal ranks keep the given order") {
  fake_training f;
  retrainer rt(f);
  const std::vector<candidate> cands = {candidate({0}), candidate({1}), candidate({2})};
  // accuracy / energy: 0.5/100 = 0.005 > 0.6/200 > 0.7/300, so the cheapest wins.
  const auto per_pj = [](const metrics& m) { return m.at("accuracy") / m.at("energy_pj"); };
  const auto r = rt.run(cands, {4}, per_pj);
  CHECK(r.best == 0);
  CHECK(!r.finalists[0].trial);
  CHECK(r.finalists[1].rank == doctest::Approx(0.6 / 200));
  CHECK(r.finalists[0].stats.stddev == 0.0);  // one seed
  const auto tie = rt.run(cands, {4}, [](const metrics&) { return 1.0; });
  CHECK(tie.best == 0);
  CHECK(tie.ranking() == std::vector<std::size_t>{0, 1, 2});
}

TEST_CASE("retrainer: a (candidate, seed) pair is trained once, across runs and within one") {
  fake_training f;
  retrainer rt(f, {.threads = 3});
  (void)rt.run(std::vector<candidate>{candidate({0}), candidate({1})}, {7, 8});
  CHECK(rt.trainings() == 4);
  // {1} with seeds 7, 8 is known; {2} is new; {2} twice in the list is trained once per seed.
  const auto r = rt.run(std::vector<candidate>{candidate({1}), candidate({2}), candidate({2})}, {7, 8});
  CHECK(rt.trainings() == 6);
  CHECK(f.calls->size() == 6);
  CHECK(r.finalists[1].values == r.finalists[2].values);
  // New seeds for a known candidate are new trainings.
  (void)rt.run(std::vector<candidate>{candidate({1})}, {9});
  CHECK(rt.trainings() == 7);
}

TEST_CASE("retrainer: results do not depend on the number of threads") {
  std::vector<trial_record> finalists;
  for (std::uint32_t i = 0; i < 7; ++i) finalists.push_back(trial(i, {(i * 5) % 7}, 0, 0, 0));
  const auto seeds = seed_list(3, 4);
  const auto reference = retrainer(fake_training{}, {.threads = 1}).run(finalists, seeds);
  for (std::size_t threads : {2u, 5u, 32u}) {
    const auto r = retrainer(fake_training{}, {.threads = threads}).run(finalists, seeds);
    CHECK(r.best == reference.best);
    CHECK(r.ranking() == reference.ranking());
    for (std::size_t i = 0; i < finalists.size(); ++i) {
      CHECK(r.finalists[i].runs == reference.finalists[i].runs);
      CHECK(r.finalists[i].mean == reference.finalists[i].mean);
      CHECK(r.finalists[i].rank == reference.finalists[i].rank);
    }
  }
}

TEST_CASE("retrainer: an evaluator's exception is rethrown, the first in (finalist, seed) order, after every training") {
  for (std::size_t threads : {1u, 4u}) {
    fake_training f;
    f.fails = candidate({2});
    retrainer rt(f, {.threads = threads});
    try {
      (void)rt.run(std::vector<candidate>{candidate({0}), candidate({2}), candidate({1})}, {21, 22, 23});
      FAIL("no exception");
    } catch (const item_error& e) {
      CHECK(e.item == 21);  // candidate {2} with its first seed
    }
    CHECK(f.calls->size() == 9);  // the other trainings ran to their end
  }
}

TEST_CASE("retrainer: misuse and bad measurements are refused with the reason") {
  fake_training f;
  retrainer rt(f);
  const std::vector<candidate> one = {candidate({0})};
  CHECK_THROWS_WITH_AS((void)rt.run(one, {}), doctest::Contains("no seeds"), qnas::invalid_argument);
  CHECK_THROWS_WITH_AS((void)rt.run(std::vector<candidate>{}, {1}), doctest::Contains("no finalists"),
                       qnas::invalid_argument);
  CHECK_THROWS_WITH_AS((void)rt.run(one, {1, 2, 1}), doctest::Contains("seed 1 is listed twice (#0 and #2)"),
                       qnas::invalid_argument);
  CHECK_THROWS_WITH_AS(retrainer(f, {.threads = 0}), doctest::Contains("threads must be >= 1"), qnas::invalid_argument);

  retrainer other_metric(f, {.metric = "top5"});
  CHECK_THROWS_WITH_AS((void)other_metric.run(std::vector<trial_record>{trial(3, {0}, 0, 0, 0)}, {5}),
                       doctest::Contains("finalist 0 (trial 3), seed 5: the evaluator did not report 'top5'"),
                       qnas::invalid_argument);
  fake_training bad = f;
  bad.nan = true;
  CHECK_THROWS_WITH_AS((void)retrainer(bad).run(one, {5}),
                       doctest::Contains("finalist 0, seed 5: the evaluator reported metric 'accuracy' = nan"),
                       qnas::invalid_argument);
  CHECK_THROWS_WITH_AS(stats_of({}), doctest::Contains("needs at least one value"), qnas::invalid_argument);
}

TEST_CASE("retrain(): the one-call form") {
  const auto r = retrain(fake_training{}, std::vector<candidate>{candidate({0}), candidate({4})}, {3, 4, 5});
  CHECK(r.best == 1);
  CHECK(r.best_finalist().stats.mean == doctest::Approx(0.9));
  const auto s = stats_of({1.0, 2.0, 4.0});
  CHECK(s.mean == doctest::Approx(7.0 / 3));
  CHECK(s.stddev == doctest::Approx(std::sqrt(((1 - 7.0 / 3) * (1 - 7.0 / 3) + (2 - 7.0 / 3) * (2 - 7.0 / 3) +
                                               (4 - 7.0 / 3) * (4 - 7.0 / 3)) / 2)));
}
