// Block-by-block schedule: order by energy share, freezing of searched blocks, exact resume.
#include <doctest/doctest.h>

#include <filesystem>
#include <unistd.h>

#include "qnas/io/jsonl.hpp"
#include "qnas/search/block_schedule.hpp"
#include "qnas/search/runner.hpp"
#include "synthetic.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::search;

namespace {
using sched = block_schedule<synth::hill_climber>;

std::vector<block> blocks() {
  // Shares follow the synthetic energy model, layer i costs (i + 1) * bits^2.
  return {{"front", {"layer0.bits", "layer1.bits"}, 1 + 2, 8},
          {"middle", {"layer4.bits", "layer2.bits", "layer3.bits"}, 3 + 4 + 5, 12},
          {"back", {"layer5.bits", "layer6.bits", "layer7.bits", "layer8.bits", "layer9.bits"}, 6 + 7 + 8 + 9 + 10, 16}};
}
sched make(const space_description& space) {
  return sched(space, blocks(), candidate(std::vector<std::uint32_t>(10, 3)),
               [](const space_description& s, std::size_t b) { return synth::hill_climber(s, 100 + b); });
}
const forgiving_factor_score score{.reference = 3520.0, .stress = 0.5};  // energy of all-8-bit: 55 * 64
}  // namespace

TEST_CASE("blocks are searched by decreasing energy share; searched blocks freeze at their best") {
  const auto space = synth::space();
  auto s = make(space);
  static_assert(strategy<sched>);
  CHECK(s.blocks()[0].name == "back");
  CHECK(s.blocks()[1].name == "middle");
  CHECK(s.blocks()[2].name == "front");
  CHECK(s.total_trials() == 36);
  CHECK(s.name() == "block_schedule<hill_climber>");
  runner_options o;
  o.max_trials = s.total_trials();
  o.batch_size = 4;  // divides every block's trials: no overshoot
  o.threads = 2;
  const auto res = run_search(s, synth::evaluator_fn{}, score, o);
  CHECK(s.finished());
  const auto in = [&](std::size_t d, std::initializer_list<std::size_t> ds) {
    return std::find(ds.begin(), ds.end(), d) != ds.end();
  };
  // phase by phase: [0,16) back, [16,28) middle, [28,36) front
  auto best_in = [&](std::size_t lo, std::size_t hi) {
    std::size_t b = lo;
    for (std::size_t i = lo; i < hi; ++i)
      if (*res.history[i].reward > *res.history[b].reward) b = i;
    return res.history[b].cand;
  };
  const auto back_best = best_in(0, 16), middle_best = best_in(16, 28), front_best = best_in(28, 36);
  for (std::size_t t = 0; t < 36; ++t) {
    const auto& c = res.history[t].cand;
    for (std::size_t d = 0; d < 10; ++d) {
      CAPTURE(t);
      CAPTURE(d);
      const bool back = in(d, {5, 6, 7, 8, 9}), middle = in(d, {2, 3, 4});
      if (t < 16) {
        if (!back) CHECK(c[d] == 3);  // later blocks at the initial value
      } else if (t < 28) {
        if (back) CHECK(c[d] == back_best[d]);
        if (!back && !middle) CHECK(c[d] == 3);
      } else {
        if (back) CHECK(c[d] == back_best[d]);
        if (middle) CHECK(c[d] == middle_best[d]);
      }
    }
  }
  candidate expect = front_best;  // front phase carries back and middle at their best
  CHECK(s.frozen() == expect);
  CHECK(s.ask() == expect);  // after the last block, the final candidate
  // The search actually moved the costly block off 8 bits (stress 0.5 asks for half the energy).
  std::size_t below8 = 0;
  for (std::size_t d = 5; d < 10; ++d) below8 += s.frozen()[d] < 3;
  CHECK(below8 > 0);
}

TEST_CASE("a block schedule resumes exactly across a block boundary") {
  const auto space = synth::space();
  const fs::path dir = fs::temp_directory_path() / ("qnas_test_blocks_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  runner_options o;
  o.max_trials = 36;
  o.checkpoint_every = 5;
  o.log_path = dir / "full.jsonl";
  o.checkpoint_path = dir / "full.ckpt";
  auto a = make(space);
  run_search(a, synth::evaluator_fn{}, score, o);
  o.log_path = dir / "part.jsonl";
  o.checkpoint_path = dir / "part.ckpt";
  struct stop_at_17 {
    bool on_trial_end(const trial_record& r) const { return r.index == 16; }
  };
  auto b = make(space);
  run_search(b, synth::evaluator_fn{}, score, o, stop_at_17{});
  CHECK(b.current_block() == 1);  // inside the middle block
  auto c = make(space);
  o.resume = true;
  run_search(c, synth::evaluator_fn{}, score, o);
  auto strip = [](const fs::path& p) {
    auto v = io::read_jsonl(p);
    for (auto& l : v) l.erase("wall_s");
    return v;
  };
  CHECK(strip(dir / "part.jsonl") == strip(dir / "full.jsonl"));
  CHECK(c.frozen() == a.frozen());
  fs::remove_all(dir);
}

TEST_CASE("block schedule validation names the problem") {
  const auto space = synth::space();
  const candidate init(std::vector<std::uint32_t>(10, 3));
  auto f = [](const space_description& s, std::size_t b) { return synth::hill_climber(s, b); };
  CHECK_THROWS_WITH_AS(sched(space, {{"x", {"layer0.bits", "nope"}, 1, 4}}, init, f),
                       doctest::Contains("block 'x': no decision 'nope'"), qnas::invalid_argument);
  CHECK_THROWS_WITH_AS(sched(space, {{"x", {"layer0.bits"}, 1, 4}, {"y", {"layer0.bits"}, 1, 4}}, init, f),
                       doctest::Contains("'layer0.bits' is in block 'x' and in block 'y'"), qnas::invalid_argument);
  CHECK_THROWS_WITH_AS(sched(space, {{"x", {"layer0.bits"}, 1, 0}}, init, f), doctest::Contains("trials = 0"),
                       qnas::invalid_argument);
  CHECK_THROWS_AS(sched(space, {{"x", {"layer0.bits"}, 1, 2}}, candidate(std::vector<std::uint32_t>(9, 0)), f),
                  qnas::invalid_argument);
  CHECK_THROWS_AS(sched(space, {{"x", {"layer0.bits"}, 1, 2}}, init,
                        [&](const space_description&, std::size_t) { return synth::hill_climber(space, 0); }),
                  qnas::invalid_argument);  // factory ignores the sub-space
}

TEST_CASE("a refused block-schedule state leaves the schedule as it was") {
  const auto space = synth::space();
  auto s = make(space);
  synth::evaluator_fn ev;
  for (int t = 0; t < 11; ++t) {  // into the second block, mid-way
    const candidate c = s.ask();
    s.tell(c, score(ev(c, {static_cast<std::uint64_t>(t), 0})));
  }
  REQUIRE(s.current_block() == 0);
  for (int t = 11; t < 21; ++t) {
    const candidate c = s.ask();
    s.tell(c, score(ev(c, {static_cast<std::uint64_t>(t), 0})));
  }
  REQUIRE(s.current_block() == 1);
  const nlohmann::json good = s.save();
  // Each fault is found after the block was already switched (block 0 instead of 1).
  for (const char* field : {"asked", "told", "frozen", "best", "best_reward", "inner"}) {
    nlohmann::json bad = good;
    bad["block"] = 0;
    bad[field] = "not this";
    INFO("field ", field);
    CHECK_THROWS_AS(s.load(bad), qnas::invalid_argument);
    CHECK(s.save() == good);
    CHECK(s.current_block() == 1);
  }
  auto fresh = make(space);
  fresh.load(good);
  CHECK(fresh.save() == good);
  CHECK(fresh.ask() == s.ask());  // both continue alike
}
