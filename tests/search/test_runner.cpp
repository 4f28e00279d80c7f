// Runner: parallel == serial, resume == uninterrupted, checkpoint refusal, I/O failures,
// constraints before training, NaN metrics, callbacks, budgets and the report.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "qnas/io/jsonl.hpp"
#include "qnas/search/random_search.hpp"
#include "qnas/search/reinforce.hpp"
#include "qnas/search/regularized_evolution.hpp"
#include "qnas/search/runner.hpp"
#include "synthetic.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::search;

namespace {

struct scratch {
  fs::path dir;
  explicit scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("qnas_test_runner_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

/// The log's lines with wall_s removed: the part that must not depend on threads or sessions.
std::vector<nlohmann::json> log_without_wall(const fs::path& p) {
  auto lines = io::read_jsonl(p);
  for (auto& l : lines) l.erase("wall_s");
  return lines;
}

const tunas_reward reward_fn{.target = 300.0, .beta = -0.05, .cost = "energy_pj"};

runner_options options(const fs::path& dir, std::size_t trials) {
  runner_options o;
  o.max_trials = trials;
  o.log_path = dir / "log.jsonl";
  o.checkpoint_path = dir / "ckpt.json";
  o.checkpoint_every = 5;
  o.evaluation_seed = 77;
  return o;
}

/// Stops (returns true) after trial `at` (0-based) ends.
struct stop_at {
  std::size_t at;
  bool on_trial_end(const trial_record& r) const { return r.index == at; }
};
/// Simulates a crash: throws after trial `at` ends (no final checkpoint is written).
struct crash_at {
  std::size_t at;
  void on_trial_end(const trial_record& r) const {
    if (r.index == at) throw std::runtime_error("simulated crash");
  }
};

}  // namespace

TEST_CASE("1 thread and 4 threads give identical logs and results (batch of 4)") {
  scratch a("serial"), b("parallel");
  const auto space = synth::space();
  auto run = [&](const fs::path& dir, std::size_t threads) {
    synth::hill_climber s(space, 2024);
    auto o = options(dir, 40);
    o.batch_size = 4;
    o.threads = threads;
    return run_search(s, synth::evaluator_fn{}, reward_fn, o);
  };
  const auto r1 = run(a.dir, 1);
  const auto r4 = run(b.dir, 4);
  CHECK(log_without_wall(a.dir / "log.jsonl") == log_without_wall(b.dir / "log.jsonl"));
  CHECK(log_without_wall(a.dir / "log.jsonl").size() == 40);
  REQUIRE(r1.best);
  CHECK(r1.best == r4.best);
  CHECK(r1.best_trial().cand == r4.best_trial().cand);
  CHECK(r1.front.front() == r4.front.front());
  // The batch size, unlike the thread count, shapes the sequence: batch 1 differs.
  scratch c("batch1");
  synth::hill_climber s(space, 2024);
  auto o = options(c.dir, 40);
  run_search(s, synth::evaluator_fn{}, reward_fn, o);
  CHECK(log_without_wall(c.dir / "log.jsonl") != log_without_wall(a.dir / "log.jsonl"));
}

TEST_CASE("resume after a stop at trial 17 equals an uninterrupted 30-trial run") {
  const auto space = synth::space();
  for (std::size_t batch : {1u, 4u}) {
    CAPTURE(batch);
    scratch full("full"), part("part");
    synth::hill_climber s1(space, 99);
    auto o = options(full.dir, 30);
    o.batch_size = batch;
    o.threads = 2;
    const auto ref = run_search(s1, synth::evaluator_fn{}, reward_fn, o);

    synth::hill_climber s2(space, 99);
    auto p = options(part.dir, 30);
    p.batch_size = batch;
    p.threads = 3;
    const auto first = run_search(s2, synth::evaluator_fn{}, reward_fn, p, stop_at{16});
    CHECK(first.reason == stop_reason::callback);
    // A stop request finishes the current batch: 17 trials with batch 1, 20 with batch 4.
    CHECK(first.history.size() == (batch == 1 ? 17u : 20u));
    CHECK(load_checkpoint(p.checkpoint_path, space).trials == first.history.size());

    synth::hill_climber s3(space, 12345);  // a different seed: the checkpoint's state must win
    p.resume = true;
    p.threads = 1;
    const auto resumed = run_search(s3, synth::evaluator_fn{}, reward_fn, p);
    CHECK(resumed.reason == stop_reason::max_trials);
    CHECK(resumed.history.size() == 30);
    CHECK(log_without_wall(part.dir / "log.jsonl") == log_without_wall(full.dir / "log.jsonl"));
    CHECK(resumed.best == ref.best);
    CHECK(resumed.best_trial().reward == ref.best_trial().reward);
    CHECK(resumed.front.front() == ref.front.front());
    CHECK(s3.save() == s1.save());  // the strategies end in the same state
  }
}

TEST_CASE("resume after a crash restarts from the last periodic checkpoint and still matches") {
  const auto space = synth::space();
  scratch full("cfull"), part("cpart");
  synth::hill_climber s1(space, 5);
  run_search(s1, synth::evaluator_fn{}, reward_fn, options(full.dir, 30));
  synth::hill_climber s2(space, 5);
  auto p = options(part.dir, 30);
  CHECK_THROWS_WITH(run_search(s2, synth::evaluator_fn{}, reward_fn, p, crash_at{16}), "simulated crash");
  CHECK(io::read_jsonl(p.log_path).size() == 17);              // logged up to the crash
  CHECK(load_checkpoint(p.checkpoint_path, space).trials == 15);  // every 5 trials
  synth::hill_climber s3(space, 5);
  p.resume = true;
  run_search(s3, synth::evaluator_fn{}, reward_fn, p);
  CHECK(log_without_wall(p.log_path) == log_without_wall(full.dir / "log.jsonl"));  // trials 15, 16 not duplicated
}

TEST_CASE("corrupt, truncated or mismatched checkpoints are refused with the file named") {
  const auto space = synth::space();
  scratch d("refuse");
  synth::hill_climber s(space, 1);
  auto o = options(d.dir, 10);
  run_search(s, synth::evaluator_fn{}, reward_fn, o);
  const auto good = io::read_file(o.checkpoint_path);
  const auto file = o.checkpoint_path.string();
  auto resume_with = [&](const std::string& text, runner_options opt) {
    io::write_file_atomic(opt.checkpoint_path, text);
    synth::hill_climber t(space, 1);
    opt.resume = true;
    opt.max_trials = 20;
    return run_search(t, synth::evaluator_fn{}, reward_fn, opt);
  };
  // truncated
  const std::string truncated_msg = file + "' is not valid JSON (truncated or corrupt?)";
  CHECK_THROWS_WITH_AS(resume_with(good.substr(0, good.size() / 2), o), doctest::Contains(truncated_msg.c_str()),
                       io_error);
  // one digit changed inside the payload: still JSON, but the CRC catches it
  auto flipped = good;
  const auto pos = flipped.find("\"energy_pj\":") + 13;
  flipped[pos] = flipped[pos] == '1' ? '2' : '1';
  CHECK_THROWS_WITH_AS(resume_with(flipped, o), doctest::Contains("corrupt: CRC-32"), io_error);
  CHECK_THROWS_WITH_AS(resume_with("{\"hello\": 1}", o), doctest::Contains("not a qnas search checkpoint"), io_error);
  // another space: one decision has 3 alternatives instead of 4
  {
    std::vector<decision_info> ds = space.decisions();
    ds[3] = {"layer3.bits", decision_kind::ordinal, 3, {"2", "4", "8"}};
    const space_description other(ds);
    io::write_file_atomic(o.checkpoint_path, good);
    CHECK_THROWS_WITH_AS(load_checkpoint(o.checkpoint_path, other),
                         doctest::Contains("written for another search space"), qnas::invalid_argument);
    try {
      (void)load_checkpoint(o.checkpoint_path, other);
      FAIL_CHECK("a checkpoint of another space was accepted");
    } catch (const qnas::invalid_argument& e) {
      CHECK(std::string(e.what()).find(file) != std::string::npos);
      CHECK(std::string(e.what()).find("decision #3 is 'layer3.bits' (4 alternatives) there") != std::string::npos);
    }
  }
  // settings that change the sequence
  auto b = o;
  b.batch_size = 2;
  CHECK_THROWS_WITH_AS(resume_with(good, b), doctest::Contains("batch_size 1, this run 2"), qnas::invalid_argument);
  auto e = o;
  e.evaluation_seed = 1;
  CHECK_THROWS_WITH_AS(resume_with(good, e), doctest::Contains("evaluation_seed 77"), qnas::invalid_argument);
  // the good file resumes
  CHECK(resume_with(good, o).history.size() == 20);
}

TEST_CASE("an unwritable log location gives a clear error and keeps the last good checkpoint") {
  const auto space = synth::space();
  scratch d("unwritable");
  synth::hill_climber s(space, 3);
  auto o = options(d.dir, 10);
  run_search(s, synth::evaluator_fn{}, reward_fn, o);
  const auto good = io::read_file(o.checkpoint_path);
  { std::ofstream(d.dir / "not_a_dir") << "x"; }  // a path through a regular file fails even for root
  auto bad = o;
  bad.log_path = d.dir / "not_a_dir" / "log.jsonl";
  bad.resume = true;
  bad.max_trials = 20;
  synth::hill_climber t(space, 3);
  CHECK_THROWS_WITH_AS(run_search(t, synth::evaluator_fn{}, reward_fn, bad),
                       doctest::Contains("not_a_dir/log.jsonl"), io_error);
  CHECK(io::read_file(o.checkpoint_path) == good);
  // Fresh (not resumed) runs fail the same way before any trial.
  bad.resume = false;
  std::atomic<int> calls{0};
  synth::hill_climber u(space, 3);
  CHECK_THROWS_AS(run_search(u, synth::evaluator_fn{&calls}, reward_fn, bad), io_error);
  CHECK(calls == 0);
  // With a good log path the checkpoint resumes and matches an uninterrupted run.
  scratch full("unwritable_full");
  synth::hill_climber r(space, 3);
  run_search(r, synth::evaluator_fn{}, reward_fn, options(full.dir, 20));
  auto ok = o;
  ok.resume = true;
  ok.max_trials = 20;
  synth::hill_climber v(space, 3);
  run_search(v, synth::evaluator_fn{}, reward_fn, ok);
  CHECK(log_without_wall(ok.log_path) == log_without_wall(full.dir / "log.jsonl"));
}

TEST_CASE("a checkpoint write failing mid-run names the file and leaves the previous checkpoint valid") {
  const auto space = synth::space();
  scratch full("ckfail_full"), d("ckfail");
  synth::hill_climber s1(space, 21);
  run_search(s1, synth::evaluator_fn{}, reward_fn, options(full.dir, 30));
  auto o = options(d.dir, 30);
  // After trial 12, a directory takes the temporary file's name: the write at trial 15 fails
  // (EISDIR, even for root), after the checkpoint of trial 10 was written.
  const fs::path blocker = o.checkpoint_path.string() + ".tmp." + std::to_string(::getpid());
  struct block_at {
    fs::path p;
    void on_trial_end(const trial_record& r) const {
      if (r.index == 12) fs::create_directory(p);
    }
  };
  synth::hill_climber s2(space, 21);
  try {
    run_search(s2, synth::evaluator_fn{}, reward_fn, o, block_at{blocker});
    FAIL_CHECK("the failed checkpoint write was not reported");
  } catch (const io_error& e) {
    const std::string what = e.what();
    CHECK(what.find(o.checkpoint_path.string()) != std::string::npos);
    CHECK(what.find("creating the temporary file") != std::string::npos);
  }
  CHECK(load_checkpoint(o.checkpoint_path, space).trials == 10);
  fs::remove(blocker);
  synth::hill_climber s3(space, 21);
  o.resume = true;
  run_search(s3, synth::evaluator_fn{}, reward_fn, o);
  CHECK(log_without_wall(o.log_path) == log_without_wall(full.dir / "log.jsonl"));
}

TEST_CASE("hard constraints reject candidates before training; they are logged with the reason") {
  const auto space = synth::space();
  scratch d("constraints");
  std::atomic<int> calls{0};
  synth::hill_climber s(space, 8);
  auto o = options(d.dir, 60);
  o.estimate = synth::estimate;
  o.constraints.at_most("bits", 50000);  // 10 layers: mean bits <= 5
  o.rejected_reward = -1.0;
  o.threads = 3;
  o.batch_size = 3;
  const auto res = run_search(s, synth::evaluator_fn{&calls}, reward_fn, o);
  CHECK(res.rejected > 0);
  CHECK(static_cast<std::size_t>(calls) == 60 - res.rejected);  // rejected ones never trained
  std::size_t logged_rejections = 0;
  for (const auto& line : io::read_jsonl(o.log_path)) {
    if (line.contains("rejected")) {
      ++logged_rejections;
      CHECK(line["rejected"]["constraint"] == "bits <= 50000");
      CHECK(line["reward"] == -1.0);
      CHECK(line["metrics"]["bits"].get<double>() > 50000);
      CHECK(!line["metrics"].contains("accuracy"));
    } else {
      CHECK(line["metrics"]["bits"].get<double>() <= 50000);
    }
  }
  CHECK(logged_rejections == res.rejected);
  runner_options no_estimate;
  no_estimate.constraints.at_most("bits", 1);
  CHECK_THROWS_WITH_AS(run_search(s, synth::evaluator_fn{}, reward_fn, no_estimate),
                       doctest::Contains("no estimate function"), qnas::invalid_argument);
}

TEST_CASE("NaN or infinite metrics stop the run naming the metric and the trial") {
  const auto space = synth::space(3);
  synth::hill_climber s(space, 1);
  runner_options o;
  o.max_trials = 10;
  o.threads = 2;
  o.batch_size = 2;
  auto eval = make_evaluator([](const candidate&, const evaluation_context& ctx) {
    return metrics{{"accuracy", ctx.trial == 5 ? std::nan("") : 0.5}, {"energy_pj", 1.0}};
  });
  CHECK_THROWS_WITH_AS(run_search(s, eval, maximize_metric{}, o),
                       doctest::Contains("trial 5: the evaluator reported metric 'accuracy' = nan"),
                       qnas::invalid_argument);
  synth::hill_climber t(space, 1);
  o.estimate = [](const candidate&) { return metrics{{"bits", INFINITY}}; };
  CHECK_THROWS_WITH(run_search(t, eval, maximize_metric{}, o), doctest::Contains("trial 0: the estimate reported metric 'bits'"));
}

TEST_CASE("JSONL log lines parse back into the trial records") {
  const auto space = synth::space();
  scratch d("jsonl");
  synth::hill_climber s(space, 4);
  auto o = options(d.dir, 25);
  o.estimate = synth::estimate;
  o.constraints.at_most("bits", 60000);
  const auto res = run_search(s, synth::evaluator_fn{}, reward_fn, o);
  const auto lines = io::read_jsonl(o.log_path);
  REQUIRE(lines.size() == res.history.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto r = trial_record_from_json(lines[i], space);
    const auto& h = res.history[i];
    CHECK(r.index == i);
    CHECK(r.cand == h.cand);
    CHECK(r.values == h.values);  // shortest round-trip doubles: exact
    CHECK(r.reward == h.reward);
    CHECK(r.wall_s == h.wall_s);
    CHECK(r.was_rejected() == h.was_rejected());
    CHECK(lines[i]["decisions"]["layer0.bits"].is_string());
  }
}

namespace {
struct counting {
  int begins = 0, ends = 0;
  std::vector<std::size_t> seen;
  void on_search_begin(const space_description&, const search_progress&) { ++begins; }
  void on_trial_end(const trial_record& r, const search_progress& p) {
    CHECK(p.trials == r.index + 1);
    seen.push_back(r.index);
  }
  void on_search_end(const search_progress&) { ++ends; }
};
}  // namespace

TEST_CASE("callbacks: detection, order, progress line, early stopping, time budget") {
  const auto space = synth::space(4);
  synth::hill_climber s(space, 2);
  runner_options o;
  o.max_trials = 12;
  o.batch_size = 5;
  o.threads = 4;
  counting c;
  std::ostringstream out;
  const auto res = run_search(s, synth::evaluator_fn{}, maximize_metric{}, o, c, progress_printer{&out, 5});
  CHECK(c.begins == 1);
  CHECK(c.ends == 1);
  CHECK(c.seen == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});  // last batch cut by the budget
  const auto text = out.str();
  CHECK(text.find("trial 5/12  rejected 0") != std::string::npos);
  CHECK(text.find("trial 10/12") != std::string::npos);
  CHECK(text.find("trials/s  best ") != std::string::npos);
  CHECK(text.find("(done)") != std::string::npos);

  // Early stopping: a constant evaluator never improves after the first trial.
  synth::hill_climber t(space, 2);
  o.max_trials = 1000;
  o.batch_size = 1;
  early_stopping es(7);
  const auto flat = run_search(t, make_evaluator([](const candidate&) { return 0.5; }), maximize_metric{},
                               [] {
                                 runner_options x;
                                 x.max_trials = 1000;
                                 x.pareto_axes = {};
                                 return x;
                               }(),
                               es);
  CHECK(flat.reason == stop_reason::callback);
  CHECK(!flat.has_front);  // no Pareto axes: no archive, no front in the report
  std::ostringstream rep;
  flat.print_report(rep);
  CHECK(rep.str().find("Pareto") == std::string::npos);
  CHECK(flat.history.size() == 8);  // trial 0 sets the best, 7 more without improvement

  // Time budget: 20 ms evaluations against a 0.1 s budget.
  synth::hill_climber u(space, 2);
  runner_options tb;
  tb.max_trials = 1000;
  tb.time_budget_s = 0.1;
  const auto timed = run_search(u,
                                make_evaluator([](const candidate&) {
                                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                  return metrics{{"accuracy", 0.5}, {"energy_pj", 1.0}};
                                }),
                                maximize_metric{}, tb);
  CHECK(timed.reason == stop_reason::time_budget);
  CHECK(timed.history.size() >= 3);
  CHECK(timed.history.size() <= 8);
}

TEST_CASE("report: best candidate, Pareto CSV and SVG, per-decision table") {
  const auto space = synth::space(3);
  scratch d("report");
  synth::hill_climber s(space, 6);
  auto o = options(d.dir, 40);
  const auto res = run_search(s, synth::evaluator_fn{}, reward_fn, o);
  res.write_report_files(d.dir / "run_");
  const auto csv = io::read_file(d.dir / "run_pareto.csv");
  CHECK(csv.starts_with("trial,accuracy,energy_pj,candidate\n"));
  CHECK(csv.find("layer0.bits=") != std::string::npos);
  const auto svg = io::read_file(d.dir / "run_pareto.svg");
  CHECK(svg.find(">energy_pj</text>") != std::string::npos);
  CHECK(svg.find(">Pareto front</text>") != std::string::npos);
  CHECK(svg.find(">chosen model</text>") == std::string::npos);
  // marked points (the reference, the chosen model) are drawn on top, with their legend entries
  res.write_report_files(d.dir / "marked_",
                         {io::plot_series{"chosen model", {{0.5, 0.9}}, io::plot_series::style::scatter, "#1f77b4"}});
  const auto marked = io::read_file(d.dir / "marked_pareto.svg");
  CHECK(marked.find(">chosen model</text>") != std::string::npos);
  CHECK(marked.size() > svg.size());
  std::ostringstream os;
  res.print_report(os);
  const auto rep = os.str();
  CHECK(rep.find("best: trial " + std::to_string(res.best_trial().index)) != std::string::npos);
  CHECK(rep.find("per-decision statistics") != std::string::npos);
  // Statistics, checked against a direct count.
  const auto st = res.statistics();
  REQUIRE(st.size() == 3);
  std::size_t n = 0;
  double sum = 0;
  for (const auto& r : res.history)
    if (r.cand[1] == 2) ++n, sum += *r.reward;
  CHECK(st[1].decision == "layer1.bits");
  CHECK(st[1].labels[2].label == "6");
  CHECK(st[1].labels[2].count == n);
  if (n) CHECK(st[1].labels[2].mean_reward == doctest::Approx(sum / n));
  // Every front point is non-dominated among all trials.
  for (const auto& p : res.front.front())
    for (const auto& r : res.history) CHECK(!res.front.dominates(res.front.project(r.values), p.values));
}

TEST_CASE("the library's strategies resume exactly through the runner (also behind any_strategy)") {
  const auto space = synth::space();
  auto check = [&](auto make, const char* what) {
    CAPTURE(what);
    scratch full("real_full"), part("real_part");
    auto s1 = make();
    auto o = options(full.dir, 30);
    o.batch_size = 3;
    o.threads = 3;
    run_search(s1, synth::evaluator_fn{}, reward_fn, o);
    auto s2 = make();
    auto p = options(part.dir, 30);
    p.batch_size = 3;
    run_search(s2, synth::evaluator_fn{}, reward_fn, p, stop_at{16});
    auto s3 = make();
    p.resume = true;
    p.threads = 2;
    run_search(s3, synth::evaluator_fn{}, reward_fn, p);
    CHECK(log_without_wall(p.log_path) == log_without_wall(o.log_path));
    CHECK(s3.save() == s1.save());
  };
  check([&] { return random_search(space, 11); }, "random_search");
  check([&] { return regularized_evolution(space, regularized_evolution::options{.population_size = 8, .sample_size = 3}, 11); },
        "regularized_evolution");
  check([&] { return any_strategy(regularized_evolution(space, 12)); }, "any_strategy");
  check([&] { return reinforce(space, 13); }, "reinforce");
}
