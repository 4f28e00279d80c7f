// Example 4: a complete search with the runner: parallel evaluation, constraints before
// training, JSONL log, checkpoint and resume, Pareto front (CSV + SVG) and per-decision report.
//
// The "network" is synthetic so the example runs in seconds and the true optimum is known:
// 10 layers each pick a weight precision from {3, 4, 6, 8} bits (4^10 = 1,048,576 candidates).
//   accuracy  = 0.95 - sum_i 0.02 * s_i * 2^-(bits_i - 3)        (s_i: the layer's sensitivity)
//   energy_pj = sum_i macs_i * (0.0025 bits_i^2 + 0.01 bits_i + 0.05)  (a*bits^2 + b*bits + c, per MAC)
//   size      = sum_i weights_i * bits_i, capped at 5.5 bits per weight on average (a hard constraint)
// The score is AutoQKeras' forgiving factor against the all-8-bit model's energy. The program
// enumerates the whole space to find the optimum, runs regularized evolution (and random search
// as the baseline) for a small fraction of it, and exits non-zero unless evolution ends within
// the top 0.1 % of all feasible candidates.
//
// Usage: 04_search_runner [--trials N] [--threads N] [--out DIR] [--resume]
// --trials N (600), --threads N (4): the trial budget and the candidates evaluated at once.
// Writes into --out (default search_runner_out): settings.txt, log.jsonl, checkpoint.json,
// pareto.csv, pareto.svg. An --out that is not empty is refused (exit status 2) unless --resume
// continues the run in it from its checkpoint (with the same --trials, which places the
// interruption). Errors: the reason on stderr, exit status 1.
#include <qnas/search/random_search.hpp>
#include <qnas/search/regularized_evolution.hpp>
#include <qnas/search/runner.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "search_cli.hpp"

namespace qs = qnas::search;

namespace {
constexpr std::size_t layers = 10;
constexpr std::array<double, 4> bit_choices = {3, 4, 6, 8};
constexpr std::array<double, layers> sensitivity = {2.0, 0.6, 1.2, 0.8, 1.5, 0.5, 1.0, 0.7, 1.8, 2.5};
constexpr std::array<double, layers> macs = {2e5, 8e5, 8e5, 4e5, 4e5, 2e5, 2e5, 1e5, 5e4, 1e4};
constexpr std::array<double, layers> weights = {864, 9216, 18432, 36864, 73728, 147456, 147456, 294912, 65536, 1280};

double total_weights() {
  double w = 0;
  for (double x : weights) w += x;
  return w;
}

qnas::space_description make_space() {
  std::vector<qnas::decision_info> d;
  for (std::size_t i = 0; i < layers; ++i)
    d.push_back({"layer" + std::to_string(i) + ".w_bits", qnas::decision_kind::ordinal, 4, {"3", "4", "6", "8"}});
  return qnas::space_description(std::move(d));
}

/// Cheap, before-training estimate: model size in bits (what the bit budget constrains).
qs::metrics estimate(const qnas::candidate& c) {
  double bits = 0;
  for (std::size_t i = 0; i < layers; ++i) bits += weights[i] * bit_choices[c[i]];
  return {{"bits", bits}};
}

double energy_of(const qnas::candidate& c) {
  double e = 0;
  for (std::size_t i = 0; i < layers; ++i) {
    const double b = bit_choices[c[i]];
    e += macs[i] * (0.0025 * b * b + 0.01 * b + 0.05);
  }
  return e;
}

/// The "training": accuracy and energy of a candidate.
qs::metrics evaluate(const qnas::candidate& c) {
  double acc = 0.95;
  for (std::size_t i = 0; i < layers; ++i) acc -= 0.02 * sensitivity[i] * std::exp2(-(bit_choices[c[i]] - 3.0));
  return {{"accuracy", acc}, {"energy_pj", energy_of(c)}};
}

int run(int argc, char** argv) {
  std::size_t trials = 600, threads = 4;
  bool resume = false;
  std::filesystem::path out = "search_runner_out";
  const qnas::examples::cli_info cli{"04_search_runner", "04_search_runner [--trials N] [--threads N] [--out DIR] [--resume]"};
  qnas::examples::parse_cli(argc, argv, cli, [&](const std::string& a, const qnas::examples::cli_value& value) {
    if (a == "--trials") trials = value.number();
    else if (a == "--threads") threads = value.number();
    else if (a == "--out") out = value();
    else if (a == "--resume") resume = true;
    else return false;
    return true;
  });
  if (trials < 2) cli.fail("--trials needs at least 2 (half run, half resumed)");
  // The trial budget places the interruption, so it shapes the trial sequence.
  const qnas::examples::run_settings settings = {{"--trials", std::to_string(trials)}};
  qnas::examples::check_out(cli, out, resume, settings);
  const auto space = make_space();
  const double bit_budget = 5.5 * total_weights();
  const qs::forgiving_factor_score score{.reference = energy_of(qnas::candidate(std::vector<std::uint32_t>(layers, 3))),
                                         .delta_p = 8.0, .delta_n = 8.0, .rate = 2.0, .stress = 1.0};

  // Ground truth: every feasible candidate's score.
  std::vector<double> all;
  qnas::candidate c(std::vector<std::uint32_t>(layers, 0));
  for (std::uint64_t code = 0; code < (1u << (2 * layers)); ++code) {
    for (std::size_t i = 0; i < layers; ++i) c[i] = static_cast<std::uint32_t>((code >> (2 * i)) & 3u);
    if (estimate(c).at("bits") <= bit_budget) all.push_back(score(evaluate(c)));
  }
  std::sort(all.begin(), all.end(), std::greater<>());
  const double optimum = all.front(), top_permille = all[all.size() / 1000];
  std::printf("space: %.0f candidates, %zu within the bit budget; optimum score %.6f, top-0.1%% threshold %.6f\n",
              space.size(), all.size(), optimum, top_permille);

  qs::runner_options opt;
  opt.max_trials = trials;
  opt.threads = threads;
  opt.batch_size = 8;
  opt.estimate = estimate;
  opt.constraints.at_most("bits", bit_budget);
  opt.rejected_reward = 0.0;
  opt.log_path = out / "log.jsonl";
  opt.checkpoint_path = out / "checkpoint.json";
  opt.checkpoint_every = 100;
  opt.pareto_axes = qs::pareto_archive::accuracy_energy();

  qnas::examples::keep_settings(out, settings);
  // Run the first half, then resume from the checkpoint for the rest (as after an interruption).
  // With --resume the first half, too, continues from the checkpoint (and does nothing when the
  // checkpoint holds half or more).
  qs::regularized_evolution::options evo{.population_size = 50, .sample_size = 10};
  {
    qs::regularized_evolution first(space, evo, 7);
    auto half = opt;
    half.max_trials = trials / 2;
    half.resume = resume;
    const auto part = qs::run_search(first, qs::make_evaluator(evaluate), score, half,
                                     qs::progress_printer{&std::cout, 100});
    qnas::examples::stop_if_interrupted(part.stop_signal, out);
  }
  qs::regularized_evolution strategy(space, evo, 7);
  opt.resume = true;
  const auto res = qs::run_search(strategy, qs::make_evaluator(evaluate), score, opt,
                                  qs::progress_printer{&std::cout, 100});
  qnas::examples::stop_if_interrupted(res.stop_signal, out);
  res.write_report_files(out / "");
  res.print_report(std::cout);

  // Baseline: random search with the same budget and constraints (no files).
  qs::random_search rnd(space, 7);
  auto ropt = opt;
  ropt.log_path.clear();
  ropt.checkpoint_path.clear();
  ropt.resume = false;
  const auto base = qs::run_search(rnd, qs::make_evaluator(evaluate), score, ropt);

  const double found = *res.best_trial().reward;
  const auto rank = static_cast<std::size_t>(std::upper_bound(all.begin(), all.end(), found, std::greater<>()) - all.begin());
  std::printf("regularized evolution: best %.6f (rank %zu of %zu feasible) after %zu trials; random search: %.6f\n",
              found, rank, all.size(), res.history.size(), *base.best_trial().reward);
  const auto log_lines = qnas::io::read_jsonl(out / "log.jsonl").size();
  if (log_lines != trials || res.history.size() != trials) {
    std::printf("FAIL: expected %zu trials in the log, found %zu\n", trials, log_lines);
    return 1;
  }
  if (found < top_permille) {
    std::printf("FAIL: the best found is not within the top 0.1%% of the space\n");
    return 1;
  }
  std::printf("OK: within the top 0.1%% (%.4f%% below the optimum)\n", 100.0 * (optimum - found) / optimum);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("04_search_runner", [&] { return run(argc, argv); });
}
