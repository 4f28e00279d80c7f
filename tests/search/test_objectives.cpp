// Objectives and constraints against hand-computed values.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "qnas/search/objectives.hpp"

using namespace qnas::search;

TEST_CASE("metrics: set, get, at names what is missing, JSON round trip") {
  metrics m{{"accuracy", 0.9}, {"energy_pj", 1200.0}};
  m.set("bits", 4096);
  CHECK(m.at("bits") == 4096);
  CHECK(m.get("latency_s") == std::nullopt);
  CHECK_THROWS_WITH_AS((void)m.at("latency_s"), doctest::Contains("no metric 'latency_s' (present: accuracy, bits, energy_pj)"),
                       qnas::invalid_argument);
  CHECK(metrics_from_json(to_json(m)) == m);
  CHECK_THROWS_AS(metrics_from_json(nlohmann::json{{"accuracy", "high"}}), qnas::invalid_argument);
}

TEST_CASE("check_finite names the metric and the trial") {
  metrics ok{{"accuracy", 0.5}};
  CHECK_NOTHROW(check_finite(ok, 3));
  metrics bad{{"accuracy", 0.5}, {"energy_pj", std::numeric_limits<double>::quiet_NaN()}};
  CHECK_THROWS_WITH_AS(check_finite(bad, 7), doctest::Contains("trial 7: the evaluator reported metric 'energy_pj' = nan"),
                       qnas::invalid_argument);
  metrics inf{{"accuracy", std::numeric_limits<double>::infinity()}};
  CHECK_THROWS_WITH(check_finite(inf, 12), doctest::Contains("trial 12"));
}

TEST_CASE("maximize_metric and the objective concept") {
  static_assert(objective<maximize_metric>);
  static_assert(objective<tunas_reward>);
  static_assert(objective<mnas_reward>);
  static_assert(objective<forgiving_factor_score>);
  CHECK(maximize_metric{}(metrics{{"accuracy", 0.42}}) == 0.42);
  CHECK(maximize_metric{"bits"}(metrics{{"bits", 8}}) == 8);
}

TEST_CASE("TuNAS absolute reward Q + beta |T/T0 - 1|") {
  const tunas_reward r{.target = 1.0};  // beta = -0.1
  // 0.8 - 0.1 * |1.2 - 1| = 0.8 - 0.02 = 0.78; symmetric below the target.
  CHECK(r(metrics{{"accuracy", 0.8}, {"latency_s", 1.2}}) == doctest::Approx(0.78).epsilon(1e-14));
  CHECK(r(metrics{{"accuracy", 0.8}, {"latency_s", 0.8}}) == doctest::Approx(0.78).epsilon(1e-14));
  CHECK(r(metrics{{"accuracy", 0.8}, {"latency_s", 1.0}}) == 0.8);
  const tunas_reward e{.target = 2000.0, .beta = -0.5, .cost = "energy_pj"};
  CHECK(e(metrics{{"accuracy", 0.9}, {"energy_pj", 3000.0}}) == doctest::Approx(0.9 - 0.5 * 0.5));
  CHECK_THROWS_AS(tunas_reward{.target = 0.0}(metrics{{"accuracy", 1}, {"latency_s", 1}}), qnas::invalid_argument);
}

TEST_CASE("MnasNet soft and hard rewards Q (T/T0)^w") {
  const metrics slow{{"accuracy", 0.75}, {"latency_s", 2.0}}, fast{{"accuracy", 0.75}, {"latency_s", 0.5}};
  const auto soft = mnas_reward::soft(1.0);
  // 0.75 * 2^-0.07 = 0.714478..., 0.75 * 0.5^-0.07 = 0.787287...
  CHECK(soft(slow) == doctest::Approx(0.714478498532953).epsilon(1e-12));
  CHECK(soft(fast) == doctest::Approx(0.7872875127173005).epsilon(1e-12));
  const auto hard = mnas_reward::hard(1.0);
  CHECK(hard(fast) == 0.75);                           // alpha = 0: no bonus below the target
  CHECK(hard(slow) == doctest::Approx(0.375));         // beta = -1: 0.75 * 2^-1
  CHECK(hard(metrics{{"accuracy", 0.75}, {"latency_s", 1.0}}) == 0.75);
  CHECK_THROWS_WITH(soft(metrics{{"accuracy", 0.75}, {"latency_s", 0.0}}), doctest::Contains("'latency_s' must be > 0"));
}

TEST_CASE("AutoQKeras forgiving factor score") {
  forgiving_factor_score s{.reference = 1000.0, .delta_p = 8.0, .delta_n = 10.0, .rate = 2.0};
  // 4x cheaper: delta_p/100 * ln(4)/ln(2) = 0.08 * 2 = 0.16 -> 0.9 * 1.16
  CHECK(s.delta(250.0) == doctest::Approx(0.16).epsilon(1e-14));
  CHECK(s(metrics{{"accuracy", 0.9}, {"energy_pj", 250.0}}) == doctest::Approx(0.9 * 1.16).epsilon(1e-14));
  // 2x dearer: delta_n/100 * ln(1/2)/ln(2) = -0.10 -> 0.9 * 0.9
  CHECK(s(metrics{{"accuracy", 0.9}, {"energy_pj", 2000.0}}) == doctest::Approx(0.81).epsilon(1e-14));
  CHECK(s.delta(1000.0) == 0.0);
  // stress 0.5 moves the reference to 500: 1000 is now 2x too dear.
  s.stress = 0.5;
  CHECK(s.delta(1000.0) == doctest::Approx(-0.10).epsilon(1e-14));
  CHECK(s.delta(125.0) == doctest::Approx(0.16).epsilon(1e-14));
  // rate 4: one step per 4-fold change
  forgiving_factor_score b{.reference = 64.0, .delta_p = 5.0, .delta_n = 5.0, .rate = 4.0, .cost = "bits"};
  CHECK(b.delta(16.0) == doctest::Approx(0.05).epsilon(1e-14));
  CHECK_THROWS_AS((void)forgiving_factor_score{.rate = 1.0}.delta(2.0), qnas::invalid_argument);
  CHECK_THROWS_WITH((void)forgiving_factor_score{.rate = 0.5}.delta(2.0), doctest::Contains("rate must be a finite number > 1"));
  CHECK_THROWS_AS((void)b.delta(0.0), qnas::invalid_argument);
}

TEST_CASE("constraint_set reports the first violated constraint with the value") {
  constraint_set c;
  c.at_most("bits", 65536).at_most("energy_pj", 1e6).one_of("precision.", {4, 8}).at_least("accuracy_estimate", 0.1);
  metrics ok{{"bits", 65536}, {"energy_pj", 5e5}, {"precision.conv1", 4}, {"precision.fc", 8}, {"accuracy_estimate", 0.5}};
  CHECK(!c.check(ok));
  auto m = ok;
  m.set("bits", 81920);
  auto v = c.check(m);
  REQUIRE(v);
  CHECK(v->constraint == "bits <= 65536");
  CHECK(v->str() == "bits <= 65536 violated: bits = 81920");
  m = ok;
  m.set("precision.fc", 6);
  v = c.check(m);
  REQUIRE(v);
  CHECK(v->constraint == "precision.* in {4, 8}");
  CHECK(v->detail == "precision.fc = 6");
  metrics missing{{"bits", 1}};
  v = c.check(missing);
  REQUIRE(v);
  CHECK(v->detail == "the estimate did not report 'energy_pj'");
  c.add("custom", [](const metrics& x) -> std::optional<std::string> {
    if (x.at("bits") > 2) return std::string("too many");
    return std::nullopt;
  });
  m = ok;
  CHECK(c.check(m)->constraint == "custom");
}
