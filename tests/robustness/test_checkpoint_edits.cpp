// Edited checkpoints and strategy states: every edit that today resumes a different search
// (counters that contradict the history, options the constructor refuses, decisions relabelled
// under an unchanged fingerprint) is refused with the field named. One row per edit.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "cheap_search.hpp"
#include "qnas/search/block_schedule.hpp"
#include "qnas/search/checkpoint.hpp"
#include "qnas/search/lstm_controller.hpp"
#include "qnas/search/random_search.hpp"
#include "qnas/search/reinforce.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace qnas;
using namespace qnas::search;

struct fresh_dir {
  fs::path path;
  explicit fresh_dir(const std::string& name)
      : path(fs::temp_directory_path() / ("qnas_edits_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~fresh_dir() { fs::remove_all(path); }
};

/// Rewrites a checkpoint file with an edited payload and a matching size and CRC, as a careful
/// editor would: only the content checks can catch the edit.
void write_edited(const fs::path& file, const json& payload) {
  const std::string body = payload.dump();
  io::write_file_atomic(file, qnas::detail::cat("{\"format\":\"qnas.search.checkpoint\",\"version\":1,\"bytes\":", body.size(),
                                                ",\"crc32\":", search::detail::crc32_of(body), ",\"payload\":", body, "}\n"));
}

/// Loads a checkpoint and its strategy state the way a resuming runner does; throws what they throw.
void resume(const fs::path& file) {
  const auto st = load_checkpoint(file, cheap::space());
  auto s = cheap::make_strategy();
  load_strategy_state(s, st, file);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const qnas::error& e) {
    return e.what();
  }
  return "(accepted)";
}

struct checkpoint_edit {
  const char* what;
  const char* field;  // the refusal names it
  std::function<void(json&)> edit;
};

}  // namespace

TEST_CASE("edited checkpoints are refused, naming the field") {
  fresh_dir dir("ckpt");
  auto strategy = cheap::make_strategy();
  (void)run_search(strategy, cheap::evaluator_fn{}, cheap::objective_fn{}, cheap::options(12, dir.path));
  const auto file = dir.path / "checkpoint.json";
  const json original = json::parse(io::read_file(file))["payload"];
  REQUIRE(original["runner"]["trials"] == 12);
  CHECK_NOTHROW(resume(file));  // the unedited file resumes

  const std::vector<checkpoint_edit> edits = {
      {"rejected > trials", "runner.rejected", [](json& p) { p["runner"]["rejected"] = 13; }},
      {"rejected without rejected trials", "runner.rejected", [](json& p) { p["runner"]["rejected"] = 2; }},
      {"elapsed_s = 1e308", "runner.elapsed_s", [](json& p) { p["runner"]["elapsed_s"] = 1e308; }},
      {"elapsed_s = -1e308", "runner.elapsed_s", [](json& p) { p["runner"]["elapsed_s"] = -1e308; }},
      {"batch_size = 0", "runner.batch_size", [](json& p) { p["runner"]["batch_size"] = 0; }},
      {"population_size = 0", "population_size", [](json& p) { p["strategy"]["state"]["options"]["population_size"] = 0; }},
      {"sample_size > population_size", "sample_size",
       [](json& p) { p["strategy"]["state"]["options"]["sample_size"] = 9; }},
      {"population larger than population_size", "population",
       [](json& p) {
         auto& s = p["strategy"]["state"];
         s["options"]["population_size"] = 4;
         s["options"]["sample_size"] = 3;
       }},
      {"empty population", "population", [](json& p) { p["strategy"]["state"]["population"] = json::array(); }},
      {"asked = 100", "asked", [](json& p) { p["strategy"]["state"]["asked"] = 100; }},
      {"asked = 10^18", "asked", [](json& p) { p["strategy"]["state"]["asked"] = 1000000000000000000ULL; }},
      {"empty history, asked unchanged", "asked",
       [](json& p) {
         p["history"] = json::array();
         p["runner"]["trials"] = 0;
       }},
      {"empty population and history with asked = 100", "asked",
       [](json& p) {
         p["history"] = json::array();
         p["runner"]["trials"] = 0;
         p["strategy"]["state"]["population"] = json::array();
         p["strategy"]["state"]["asked"] = 100;
       }},
      {"labels swapped under an unchanged fingerprint", "field 'space'",
       [](json& p) { p["space"]["decisions"][0]["labels"] = json::array({"4", "2", "6", "8"}); }},
      {"labels renamed under an unchanged fingerprint", "field 'space'",
       [](json& p) { p["space"]["decisions"][3]["labels"][3] = "16"; }},
  };
  for (const auto& e : edits) {
    const std::string edit = e.what;
    CAPTURE(edit);
    json p = original;
    e.edit(p);
    write_edited(file, p);
    const auto msg = error_of([&] { resume(file); });
    INFO("message: " << msg);
    CHECK(msg.find(e.field) != std::string::npos);
    CHECK(msg.find(file.string()) != std::string::npos);
    // The runner's resume goes through the same checks.
    const auto by_runner = error_of([&] {
      auto s = cheap::make_strategy();
      (void)run_search(s, cheap::evaluator_fn{}, cheap::objective_fn{}, cheap::options(12, dir.path));
    });
    INFO("runner: " << by_runner);
    CHECK(by_runner.find(e.field) != std::string::npos);
  }
  write_edited(file, original);
  auto s = cheap::make_strategy();
  CHECK(run_search(s, cheap::evaluator_fn{}, cheap::objective_fn{}, cheap::options(12, dir.path)).history.size() == 12);
}

namespace {

space_description small_space() {
  return space_description({{"a", decision_kind::ordinal, 4, {}}, {"b", decision_kind::categorical, 3, {}}});
}

/// Asks and tells n times; returns the state.
template <class S>
json run_and_save(S& s, int n) {
  for (int i = 0; i < n; ++i) {
    auto c = s.ask();
    s.tell(c, 0.1 * static_cast<double>(c[0] + c[1]));
  }
  return s.save();
}

struct state_edit {
  const char* what;
  const char* field;
  std::function<void(json&)> edit;
  trial_counts counts{5, 5};  // what the checkpoint's history says
};

/// Loads the edited state into a fresh strategy and cross-checks the counts; the refusal's text.
template <class S>
std::string refusal(const std::function<S()>& make, const json& saved, const state_edit& e) {
  json j = saved;
  e.edit(j);
  S s = make();
  return error_of([&] {
    s.load(j);
    check_counts(s, e.counts);
  });
}

}  // namespace

TEST_CASE("edited strategy states are refused by load() or by the checkpoint's counts, naming the field") {
  const auto space = small_space();
  SUBCASE("reinforce") {
    const std::function<reinforce()> make = [&] { return reinforce(space, {.delay = 2}, 3); };
    auto s = make();
    const json saved = run_and_save(s, 5);
    CHECK(refusal(make, saved, {"unedited", "(accepted)", [](json&) {}}) == "(accepted)");
    for (const state_edit& e : std::vector<state_edit>{
             {"learning_rate = 0", "learning_rate", [](json& j) { j["options"]["learning_rate"] = 0.0; }},
             {"baseline_momentum = 1", "baseline_momentum", [](json& j) { j["options"]["baseline_momentum"] = 1.0; }},
             {"adam_beta2 = 1", "adam_beta2", [](json& j) { j["options"]["adam_beta2"] = 1.0; }},
             {"tells without Adam steps", "adam.t", [](json& j) { j["tells"] = 50; }},
             {"baseline not initialised after tells", "baseline.initialised",
              [](json& j) { j["baseline"]["initialised"] = false; }},
             {"tells differ from the checkpoint's", "tells", [](json&) {}, {5, 4}},
         }) {
      const std::string edit = e.what;
      CAPTURE(edit);
      CHECK(refusal(make, saved, e).find(e.field) != std::string::npos);
    }
  }
  SUBCASE("lstm_controller") {
    const std::function<lstm_controller()> make = [&] { return lstm_controller(space, {.hidden_size = 4}, 3); };
    auto s = make();
    const json saved = run_and_save(s, 5);
    CHECK(refusal(make, saved, {"unedited", "(accepted)", [](json&) {}}) == "(accepted)");
    for (const state_edit& e : std::vector<state_edit>{
             {"learning_rate = -1", "learning_rate", [](json& j) { j["options"]["learning_rate"] = -1.0; }},
             {"init_scale = -1", "init_scale", [](json& j) { j["options"]["init_scale"] = -1.0; }},
             {"baseline not initialised after tells", "baseline.initialised",
              [](json& j) { j["baseline"]["initialised"] = false; }},
             {"Adam steps differ from the checkpoint's tells", "adam.t", [](json&) {}, {5, 9}},
         }) {
      const std::string edit = e.what;
      CAPTURE(edit);
      CHECK(refusal(make, saved, e).find(e.field) != std::string::npos);
    }
  }
  SUBCASE("random_search and one_plus_one_evolution") {
    const std::function<random_search()> make = [&] { return random_search(space, {.deduplicate = true}, 3); };
    auto s = make();
    const json saved = run_and_save(s, 5);
    CHECK(refusal(make, saved, {"unedited", "(accepted)", [](json&) {}}) == "(accepted)");
    for (const state_edit& e : std::vector<state_edit>{
             {"a candidate seen twice", "seen", [](json& j) { j["seen"][1] = j["seen"][0]; }},
             {"seen while not de-duplicating", "seen", [](json& j) { j["deduplicate"] = false; }},
             {"fewer seen than asked", "seen", [](json&) {}, {7, 7}},
         }) {
      const std::string edit = e.what;
      CAPTURE(edit);
      CHECK(refusal(make, saved, e).find(e.field) != std::string::npos);
    }
    const std::function<one_plus_one_evolution()> make1 = [&] { return one_plus_one_evolution(space, 3); };
    auto o = make1();
    const json saved1 = run_and_save(o, 5);
    CHECK(refusal(make1, saved1, {"no best after tells", "best", [](json& j) { j["best"] = nullptr; }}).find("best") !=
          std::string::npos);
  }
  SUBCASE("block_schedule and any_strategy") {
    using inner = regularized_evolution;
    const std::vector<block> blocks = {{"first", {"a"}, 2.0, 6}, {"second", {"b"}, 1.0, 6}};
    const std::function<block_schedule<inner>()> make = [&] {
      return block_schedule<inner>(space, blocks, candidate({0, 0}),
                                   [](const space_description& sub, std::size_t pos) {
                                     return inner(sub, {.population_size = 4, .sample_size = 2}, 10 + pos);
                                   });
    };
    auto s = make();
    const json saved = run_and_save(s, 5);
    CHECK(refusal(make, saved, {"unedited", "(accepted)", [](json&) {}}) == "(accepted)");
    for (const state_edit& e : std::vector<state_edit>{
             {"told > asked", "told", [](json& j) { j["told"] = 6, j["asked"] = 5; }},
             {"a block with all its tells that did not end", "would have ended",
              [](json& j) { j["told"] = 6, j["asked"] = 6; }},
             {"no best after tells", "best", [](json& j) { j["best"] = nullptr; }},
             {"inner population emptied", "population", [](json& j) { j["inner"]["population"] = json::array(); }},
             {"more asks than the checkpoint's trials", "asked", [](json&) {}, {4, 4}},
         }) {
      const std::string edit = e.what;
      CAPTURE(edit);
      CHECK(refusal(make, saved, e).find(e.field) != std::string::npos);
    }
    // any_strategy forwards the check to the strategy it holds.
    any_strategy a(make());
    a.load(saved);
    CHECK_NOTHROW(a.check_counts({5, 5}));
    CHECK_THROWS_WITH_AS(a.check_counts({4, 4}), doctest::Contains("asked"), qnas::invalid_argument);
  }
  SUBCASE("the constructors refuse what load() refuses") {
    CHECK_THROWS_WITH_AS(regularized_evolution(space, {.population_size = 3, .sample_size = 4}, 1),
                         doctest::Contains("sample_size (4) must not exceed population_size (3)"), qnas::invalid_argument);
    CHECK_THROWS_WITH_AS(reinforce(space, {.adam_beta1 = 1.0}, 1), doctest::Contains("adam_beta1"), qnas::invalid_argument);
    CHECK_THROWS_WITH_AS(lstm_controller(space, {.init_scale = -1.0}, 1), doctest::Contains("init_scale"),
                         qnas::invalid_argument);
  }
}
