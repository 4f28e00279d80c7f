// Pareto archive: dominance, insertion order independence and CSV export on a hand-made set.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "qnas/search/pareto.hpp"

using namespace qnas::search;

namespace {
std::vector<std::size_t> ids(const pareto_archive& a) {
  std::vector<std::size_t> r;
  for (const auto& p : a.front()) r.push_back(p.id);
  return r;
}
}  // namespace

TEST_CASE("dominance follows the axis directions") {
  pareto_archive a;  // accuracy max, energy min
  CHECK(a.dominates({0.9, 10}, {0.8, 20}));
  CHECK(a.dominates({0.9, 10}, {0.9, 20}));   // equal accuracy, strictly cheaper
  CHECK(!a.dominates({0.9, 10}, {0.9, 10}));  // identical: neither dominates
  CHECK(!a.dominates({0.9, 30}, {0.8, 20}));  // a trade-off
  CHECK_THROWS_AS((void)a.dominates({0.9}, {0.8, 1}), qnas::invalid_argument);
  CHECK_THROWS_AS(pareto_archive(std::vector<pareto_axis>{}), qnas::invalid_argument);
  CHECK_THROWS_AS(pareto_archive({{"bits", direction::minimize}, {"bits", direction::maximize}}), qnas::invalid_argument);
}

TEST_CASE("front of a hand-made set, in any insertion order") {
  // (accuracy, energy): the front is 1, 3, 4, 6 (checked by hand):
  //  0 (0.70, 50) dominated by 4 (0.80, 40)
  //  2 (0.85, 90) dominated by 3 (0.88, 80)
  //  5 (0.60, 35) dominated by 6 (0.65, 30)
  //  7 (0.88, 80) ties 3 exactly: kept
  const std::vector<pareto_point> pts = {
      {0, {0.70, 50}, "a"}, {1, {0.95, 200}, "b"}, {2, {0.85, 90}, "c"}, {3, {0.88, 80}, "d"},
      {4, {0.80, 40}, "e"}, {5, {0.60, 35}, "f"},  {6, {0.65, 30}, "g"}, {7, {0.88, 80}, "h"}};
  const std::vector<std::size_t> expect = {1, 3, 7, 4, 6};  // by accuracy descending, ties by id
  std::mt19937 rng(5);
  for (int round = 0; round < 20; ++round) {
    auto order = pts;
    std::shuffle(order.begin(), order.end(), rng);
    pareto_archive a;
    for (const auto& p : order) a.insert(p);
    CHECK(ids(a) == expect);
  }
  pareto_archive a;
  CHECK(a.insert(pts[0]));
  CHECK(a.insert(pts[4]));  // dominates 0
  CHECK(a.size() == 1);
  CHECK(!a.insert(pts[0]));  // dominated on arrival
  CHECK(!a.insert(pts[4]));  // the same candidate again: not a second point
  CHECK(a.insert({9, pts[4].values, "e2"}));  // another candidate with the same values: kept
  CHECK(a.size() == 2);
}

TEST_CASE("four axes, metrics projection and CSV export") {
  pareto_archive a(pareto_archive::all_four());
  metrics m1{{"accuracy", 0.9}, {"energy_pj", 100}, {"latency_cycles", 1000}, {"bits", 64}, {"other", 1}};
  metrics m2{{"accuracy", 0.9}, {"energy_pj", 100}, {"latency_cycles", 900}, {"bits", 64}};
  metrics m3{{"accuracy", 0.8}, {"energy_pj", 50}, {"latency_cycles", 2000}, {"bits", 32}};
  CHECK(a.insert(1, m1, "x=1"));
  CHECK(a.insert(2, m2, "x=2, y=\"q\""));  // dominates 1 (lower latency)
  CHECK(a.insert(3, m3, "x=3"));
  CHECK(ids(a) == std::vector<std::size_t>{2, 3});
  CHECK_THROWS_WITH(a.insert(4, metrics{{"accuracy", 1}}), doctest::Contains("no metric 'energy_pj'"));
  CHECK(a.to_csv().str() ==
        "trial,accuracy,energy_pj,latency_cycles,bits,candidate\n"
        "2,0.9,100,900,64,\"x=2, y=\"\"q\"\"\"\n"
        "3,0.8,50,2000,32,x=3\n");
}
