// adaptive_compression: on scripted metric sequences the format widens on degradation, tightens
// when safe, holds inside the hysteresis band, respects the ladder's ends, patience, cooldown
// and backoff, and logs every change; metrics and the probe.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "qnas/formats/bfp.hpp"
#include "qnas/train/adaptive_compression.hpp"

using namespace qnas;
using namespace qnas::train;

namespace {

// bfp mantissa 2 -> 3 -> 4 -> 6 -> 8 bits, then float32: rungs 0..5.
format_ladder bfp_ladder() { return format_ladder::of<bfp<2, 16>, bfp<3, 16>, bfp<4, 16>, bfp<6, 16>, bfp<8, 16>>(); }

adaptive_options opts(int widen_patience, int tighten_patience, std::size_t cooldown = 0, bool backoff = false) {
  adaptive_options o;
  o.widen_above = 0.05;
  o.tighten_below = 0.01;
  o.widen_patience = widen_patience;
  o.tighten_patience = tighten_patience;
  o.cooldown = cooldown;
  o.backoff = backoff;
  return o;
}

}  // namespace

TEST_CASE("ladder: order is checked, float32 on top") {
  const auto l = bfp_ladder();
  REQUIRE(l.size() == 6);
  CHECK(l[0].name() == "bfp<2,16>");
  CHECK(l[5].is_float32());
  CHECK_THROWS_AS((format_ladder::of<bfp<4, 16>, bfp<2, 16>>()), qnas::invalid_argument);
  CHECK_THROWS_AS(format_ladder(std::vector<activation_codec>{}), qnas::invalid_argument);
}

TEST_CASE("widens on degradation, tightens when safe, holds in the band, stops at the ends") {
  adaptive_compression p(bfp_ladder(), 1, 0, opts(2, 3));
  p.set_layer_name(0, "conv1");
  std::vector<adaptation_event> seen;
  p.on_change([&](const adaptation_event& e) { seen.push_back(e); });

  // Metric script, rung after each observation (widen_patience 2, tighten_patience 3):
  //  step 0: 0.10 bad (1)        -> 0
  //  step 1: 0.10 bad (2)        -> 1 (widen)
  //  step 2: 0.03 band           -> 1
  //  step 3: 0.20 bad (1)        -> 1 (the band reset the count)
  //  step 4: 0.20 bad (2)        -> 2 (widen)
  //  step 5..7: 0.001 good x3    -> 1 at step 7 (tighten)
  //  step 8..9: 0.001 good x2    -> 1
  //  step 10: 0.001 good (3)     -> 0 (tighten)
  //  step 11..13: good x3        -> 0 (bottom of the ladder: nothing narrower)
  const std::vector<double> metric{0.10, 0.10, 0.03, 0.20, 0.20, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001};
  const std::vector<std::size_t> rung{0, 1, 1, 1, 2, 2, 2, 1, 1, 1, 0, 0, 0, 0};
  for (std::size_t s = 0; s < metric.size(); ++s) {
    CAPTURE(s);
    p.observe(s, 0, metric[s]);
    CHECK(p.rung(0) == rung[s]);
  }
  REQUIRE(p.events().size() == 4);
  CHECK(seen.size() == 4);
  const auto& e = p.events();
  CHECK(e[0].step == 1);
  CHECK(e[0].layer_name == "conv1");
  CHECK(e[0].from == "bfp<2,16>");
  CHECK(e[0].to == "bfp<3,16>");
  CHECK(e[0].metric == 0.10);
  CHECK(e[0].reason.find("above widen_above") != std::string::npos);
  CHECK(e[1].step == 4);
  CHECK(e[1].to_rung == 2);
  CHECK(e[2].step == 7);
  CHECK(e[2].from_rung == 2);
  CHECK(e[2].to_rung == 1);
  CHECK(e[2].reason.find("below tighten_below") != std::string::npos);
  CHECK(e[3].step == 10);
  CHECK(e[3].to == "bfp<2,16>");

  // Top of the ladder: a persistently bad metric climbs to float32 and stays there.
  adaptive_compression top(bfp_ladder(), 1, 3, opts(1, 3));
  for (std::size_t s = 0; s < 10; ++s) top.observe(s, 0, 1.0);
  CHECK(top.rung(0) == 5);
  CHECK(top.codec(0).is_float32());
  CHECK(top.events().size() == 2);  // 3 -> 4 -> 5, then nothing
}

TEST_CASE("a non-finite metric (diverged loss) counts as degradation") {
  adaptive_compression p(bfp_ladder(), 1, 0, opts(1, 1));
  p.observe(0, 0, std::numeric_limits<double>::quiet_NaN());
  CHECK(p.rung(0) == 1);
  p.observe(1, 0, std::numeric_limits<double>::infinity());
  CHECK(p.rung(0) == 2);
}

TEST_CASE("cooldown: no change within `cooldown` steps of the last one") {
  adaptive_compression p(bfp_ladder(), 1, 0, opts(1, 1, 5));
  p.observe(0, 0, 0.5);  // widen at step 0
  CHECK(p.rung(0) == 1);
  for (std::size_t s = 1; s < 5; ++s) {
    p.observe(s, 0, 0.5);
    CHECK(p.rung(0) == 1);
  }
  p.observe(5, 0, 0.5);  // cooldown over
  CHECK(p.rung(0) == 2);
}

TEST_CASE("backoff: tightening back into a rung that failed needs doubled patience") {
  adaptive_compression p(bfp_ladder(), 1, 0, opts(1, 2, 0, true));
  p.observe(0, 0, 0.5);  // rung 0 fails once -> 1
  REQUIRE(p.rung(0) == 1);
  // Back to rung 0 needs 2 << 1 = 4 good observations, not 2.
  for (std::size_t s = 1; s <= 3; ++s) {
    p.observe(s, 0, 0.0);
    CHECK(p.rung(0) == 1);
  }
  p.observe(4, 0, 0.0);
  CHECK(p.rung(0) == 0);
  p.observe(5, 0, 0.5);  // second failure -> 8 good observations now
  REQUIRE(p.rung(0) == 1);
  for (std::size_t s = 6; s < 13; ++s) p.observe(s, 0, 0.0);
  CHECK(p.rung(0) == 1);
  p.observe(13, 0, 0.0);
  CHECK(p.rung(0) == 0);
}

TEST_CASE("layers adapt independently; observe_all feeds one metric to all; apply sets stores") {
  adaptive_compression p(bfp_ladder(), 3, 1, opts(1, 1));
  p.observe(0, 2, 0.9);
  CHECK(p.rung(0) == 1);
  CHECK(p.rung(1) == 1);
  CHECK(p.rung(2) == 2);
  CHECK(p.observe_all(1, 0.0) == 3);
  CHECK(p.rung(0) == 0);
  CHECK(p.rung(2) == 1);

  activation_store a, b, c;
  activation_store* stores[] = {&a, &b, &c};
  p.apply(stores);
  CHECK(a.codec().name() == "bfp<2,16>");
  CHECK(c.codec().name() == "bfp<3,16>");
  activation_store* two[] = {&a, &b};
  CHECK_THROWS_AS(p.apply(two), qnas::invalid_argument);
  CHECK_THROWS_AS(p.observe(2, 3, 0.5), qnas::invalid_argument);  // layers are 0..2
  CHECK_THROWS_AS(static_cast<void>(p.rung(3)), qnas::invalid_argument);
}

TEST_CASE("options are checked") {
  CHECK_THROWS_AS(adaptive_compression(bfp_ladder(), 1, 6), qnas::invalid_argument);  // start past top
  adaptive_options o;
  o.tighten_below = 0.1;
  o.widen_above = 0.1;  // no hysteresis band
  CHECK_THROWS_AS(adaptive_compression(bfp_ladder(), 1, 0, o), qnas::invalid_argument);
  adaptive_options z;
  z.widen_patience = 0;
  CHECK_THROWS_AS(adaptive_compression(bfp_ladder(), 1, 0, z), qnas::invalid_argument);
}

TEST_CASE("metrics: normalized_mse, relative_increase, and the probe decreases up the ladder") {
  const std::vector<float> r{1.0f, -2.0f, 0.0f, 2.0f};
  const std::vector<float> a{1.0f, -2.0f, 0.5f, 1.5f};
  CHECK(normalized_mse(r, a) == doctest::Approx(0.5 / 9.0));  // (0.25 + 0.25) / (1 + 4 + 4)
  CHECK(normalized_mse(r, r) == 0.0);
  const std::vector<float> z(4, 0.0f);
  CHECK(std::isinf(normalized_mse(z, a)));
  CHECK(normalized_mse(z, z) == 0.0);
  CHECK_THROWS_AS(normalized_mse(r, std::vector<float>(3)), qnas::invalid_argument);
  CHECK(relative_increase(2.0, 2.5) == doctest::Approx(0.25));
  CHECK(relative_increase(0.0, 0.1) == doctest::Approx(0.1));

  // ReLU-like activations: the probe error falls as the mantissa widens and is 0 at float32.
  std::vector<float> x(64 * 32);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 == 0) ? 0.0f : std::sin(0.37f * static_cast<float>(i)) + 1.0f;
  const std::size_t shape[] = {64, 32};
  std::vector<float> scratch;
  const auto l = bfp_ladder();
  double prev = HUGE_VAL;
  for (std::size_t i = 0; i < l.size(); ++i) {
    const double e = compression_error(l[i], x, shape, scratch);
    CAPTURE(l[i].name());
    CHECK(e < prev);
    prev = e;
  }
  CHECK(prev == 0.0);
}
