// Example 8: TuNAS on MNIST. A weight-sharing supernet over filters, kernel sizes, a skippable
// residual block and per-layer weight formats (fixed 8/4-bit, power-of-two, ternary) is trained
// jointly with a REINFORCE policy whose reward is accuracy + beta * |E / E0 - 1| (E: inference
// energy under horowitz_45nm). The final architecture (per-decision argmax) is built standalone
// with the supernet's weights and retrained, and compared with random search given the same
// wall-clock time, whose best candidate is retrained the same way from its own search-time
// (proxy) training.
//
// Data: the MNIST test set (10,000 images) from --mnist DIR or $QNAS_SHARED_DATA/mnist, split
// 8,000 train / 2,000 validation (seed 1); without MNIST the synthetic 10-class task.
//
//   08_tunas_supernet          reduced CI mode: 2,000 training images, one target (25 % of the
//                              largest candidate's energy), a short search; checks that the final
//                              architecture's energy is nearer the target than the candidates the
//                              untrained (uniform) policy samples
//   08_tunas_supernet --full   targets 25 / 50 / 75 %, one beta, 3 seeds each; checks the final
//                              energy within +-10 % of its target and reports the retrained
//                              accuracy beside random search given the same wall-clock time
//   --out DIR                  where the JSONL logs and SVG plots go (default: current folder)
//   --threads N                --full: (target, seed) runs in parallel (default 2); each run
//                              and its random-search baseline share the machine alike, and each
//                              uses one BLAS thread
//   --targets 25,50,75         --full: the energy targets, in % of the largest candidate's energy
//   --seeds N                  --full: seeds 1..N per target (default 3)
//   --retrain MODE             where both methods' final models start their (identical) retraining:
//                              inherit (default) the weights their search trained, scratch freshly
//                              drawn weights, both: report both, check the inherited ones
//   --epochs N                 epochs of that retraining (default 2 with --full, 1 without)
//
// Exits 1 when a check fails or on an error (the reason on stderr: a --mnist DIR without MNIST,
// an unwritable --out), 2 on a command-line mistake. The search is one supernet training, not
// a runner's trials: there is no checkpoint to resume, and a rerun rewrites its logs in --out.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "qnas/data/dataset.hpp"
#include "qnas/data/idx.hpp"
#include "qnas/data/synthetic.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/nn/blas.hpp"
#include "qnas/search/parallel.hpp"
#include "qnas/search/tunas.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/trainer.hpp"
#include "search_cli.hpp"

using namespace qnas;

namespace {
struct residual_block {
  static std::string name() { return "residual_block"; }
};
// Weight formats: 8-bit fixed point (step 1/64 over [-2, 2)), 4-bit fixed point (step 1/4),
// 4-bit power of two up to 1, ternary {-1/4, 0, 1/4} with threshold 1/8 (nearest).
using w8 = fixed_point<8, 1>;
using w4 = fixed_point<4, 1>;
using wp = po2<4, 1.0>;
using wt = ternary<-2, 0.125>;
// 9 decisions: 3 * 2 * 4 * 2 * 4 * 3 * 2 * 4 * 2 = 36,864 candidates.
using mnist_space = space<choice<"s0.filters", 8, 16, 24>, choice<"s0.kernel", 3, 5>, type_choice<"s0.w", w8, w4, wp, wt>,
                          optional<"s1.block", residual_block>, type_choice<"s1.w", w8, w4, wp, wt>,
                          choice<"s2.filters", 16, 32, 48>, choice<"s2.kernel", 3, 5>, type_choice<"s2.w", w8, w4, wp, wt>,
                          type_choice<"head.w", w8, w4>>;

// 28x28x1 -> [conv k/2 -> BN -> ReLU] -> optional residual [conv 3x3 -> BN -> ReLU] ->
// [conv k/2 -> BN -> ReLU] -> flatten -> dense 10; activations fixed_relu<8, 3>.
// The decision names are checked against mnist_space at compile time.
supernet_spec_for<mnist_space> mnist_spec() {
  const quantizer a8 = quantizer::of<fixed_relu<8, 3>>();
  supernet_spec_for<mnist_space> s(nn::image(28, 28, 1));
  s.conv<"s0.filters", "s0.kernel", "s0.w">(2, a8)
      .skippable<"s1.block", "s1.w">(3, a8)
      .conv<"s2.filters", "s2.kernel", "s2.w">(2, a8)
      .head<"head.w">();
  return s;
}

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

struct settings {
  std::uint64_t steps;
  std::size_t batch;
  std::size_t validation_batch;  // images per reward (a less noisy accuracy than a training batch)
  std::size_t retrain_epochs;
  std::size_t proxy_steps;  // random search: training steps per sampled candidate
};

// The retraining recipe applied alike to both methods' final models: `epochs` passes of Adam
// (learning rate 2e-3, batch 64) from the given starting weights, then validation accuracy.
double retrain(nn::sequential& model, const data::dataset& tr, const data::dataset& va, std::size_t epochs,
               std::uint64_t seed) {
  train::adam opt({.learning_rate = 2e-3f});
  train::trainer t(model, opt);
  return t.fit(tr, &va, {.epochs = epochs, .batch_size = 64, .seed = seed}).val_accuracy;
}

// The standalone network of `c` with freshly drawn weights.
std::unique_ptr<nn::sequential> fresh_model(const supernet& net, const candidate& c, std::uint64_t seed) {
  std::mt19937_64 init(seed);
  return net.build_standalone(c, /*inherit=*/false, init);
}

// Proxy accuracy for random search: a short training run, then validation. Returns the trained
// model too (what the candidate's search-time training produced).
std::pair<double, std::unique_ptr<nn::sequential>> proxy(const supernet& net, const candidate& c,
                                                         const data::dataset& tr, const data::dataset& va,
                                                         std::size_t steps, std::uint64_t seed) {
  auto model = fresh_model(net, c, seed);
  train::adam opt({.learning_rate = 2e-3f});
  train::trainer t(*model, opt);
  const auto sub = data::head(tr, std::min(tr.size(), steps * 64));
  const double acc = t.fit(sub, &va, {.epochs = 1, .batch_size = 64, .seed = seed}).val_accuracy;
  return {acc, std::move(model)};
}

struct outcome {
  candidate arch;
  std::unique_ptr<nn::sequential> trained;  // the final model with the weights its search trained
  double energy = 0, search_s = 0, accuracy = 0;
  double scratch_accuracy = -1;  // --retrain both: the same recipe from freshly drawn weights
  double initial_distance = 0;  // mean |E/E0 - 1| of the candidates sampled during the RL delay
};

outcome tunas_search(const data::dataset& tr, const data::dataset& va, double target, double beta, std::uint64_t seed,
                     const settings& s, const std::filesystem::path& out, const std::string& tag) {
  supernet net = make_supernet(mnist_spec(), seed);
  search::tunas_options o;
  o.steps = s.steps;
  o.batch_size = s.batch;
  o.validation_batch_size = s.validation_batch;
  o.target = target;
  o.beta = beta;
  o.rl_learning_rate = 0.05;
  o.weights.learning_rate = 2e-3f;
  o.seed = seed;
  search::tunas t(net, o);
  std::vector<search::tunas_step> log;
  const auto t0 = clock_type::now();
  t.run(tr, va, [&](const search::tunas_step& st) { log.push_back(st); });
  outcome r;
  r.search_s = seconds_since(t0);
  r.arch = t.result();
  r.energy = net.energy_pj(r.arch);
  std::mt19937_64 init(seed);
  r.trained = net.build_standalone(r.arch, /*inherit=*/true, init);
  std::size_t n = 0;
  for (const auto& st : log)
    if (st.step < t.rl_delay()) r.initial_distance += std::abs(st.cost_ratio - 1), ++n;
  r.initial_distance /= static_cast<double>(std::max<std::size_t>(n, 1));
  search::write_tunas_log(out / ("tunas_" + tag + ".jsonl"), log, net.space());
  search::write_tunas_plots(out / ("tunas_" + tag + "_cost.svg"), out / ("tunas_" + tag + "_probs.svg"), log, net.space());
  return r;
}

// Random search with a wall-clock budget: candidates within +-10 % of the target energy
// (rejection sampling on the energy model, which costs microseconds), each trained for a short
// proxy run; the best proxy accuracy wins.
outcome random_search(const data::dataset& tr, const data::dataset& va, double target, std::uint64_t seed,
                      double budget_s, const settings& s) {
  supernet net = make_supernet(mnist_spec(), seed);
  std::mt19937_64 e(seed * 7919 + 1);
  const auto& d = net.space();
  outcome best;
  double best_acc = -1;
  const auto t0 = clock_type::now();
  std::size_t tried = 0;
  while (tried == 0 || seconds_since(t0) < budget_s) {
    candidate c;
    c.choices.resize(d.num_decisions());
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::uint32_t>(e() % d.cardinality(i));
    const double en = net.energy_pj(c);
    if (std::abs(en / target - 1) > 0.10) continue;
    auto [acc, model] = proxy(net, c, tr, va, s.proxy_steps, seed + tried);
    ++tried;
    if (acc > best_acc) best_acc = acc, best.arch = c, best.energy = en, best.trained = std::move(model);
  }
  best.search_s = seconds_since(t0);
  return best;
}

int run(int argc, char** argv) {
  bool full = false;
  std::size_t threads = 2, seeds = 3, retrain_epochs = 0;
  std::string retrain_mode = "inherit";
  std::vector<double> fractions{0.25, 0.50, 0.75};
  std::filesystem::path mnist, out = ".";
  const qnas::examples::cli_info cli{
      "08_tunas_supernet",
      "08_tunas_supernet [--full] [--mnist DIR] [--out DIR] [--threads N] [--targets 25,50,75]\n"
      "                         [--seeds N] [--retrain inherit|scratch|both] [--epochs N]"};
  qnas::examples::parse_cli(argc, argv, cli, [&](const std::string& a, const qnas::examples::cli_value& value) {
    if (a == "--full") full = true;
    else if (a == "--mnist") mnist = value();
    else if (a == "--out") out = value();
    else if (a == "--threads") threads = value.number();
    else if (a == "--seeds") seeds = value.number();
    else if (a == "--epochs") retrain_epochs = value.number();
    else if (a == "--targets") {
      fractions.clear();
      std::stringstream list(value());
      for (std::string f; std::getline(list, f, ',');) {
        const std::optional<double> pct = qnas::examples::positive_real(f);
        if (!pct || *pct > 100.0)
          cli.fail("--targets needs percentages in (0, 100] separated by commas, got '" + f + "'");
        fractions.push_back(*pct / 100);
      }
      if (fractions.empty()) cli.fail("--targets needs at least one percentage");
    } else if (a == "--retrain") {
      retrain_mode = value();
      if (retrain_mode != "inherit" && retrain_mode != "scratch" && retrain_mode != "both")
        cli.fail("--retrain needs inherit, scratch or both, got '" + retrain_mode + "'");
    } else {
      return false;
    }
    return true;
  });
  // A --mnist DIR that does not hold MNIST is an error (load_mnist_test says why); only the
  // shared folder, when absent, gives way to the synthetic task.
  const bool mnist_given = !mnist.empty();
  if (mnist.empty()) {
    const char* root = std::getenv("QNAS_SHARED_DATA");
    mnist = std::filesystem::path(root ? root : "../shared/data") / "mnist";
  }
  std::filesystem::create_directories(out);
  data::dataset all;
  if (mnist_given || std::filesystem::exists(mnist)) {
    all = data::load_mnist_test(mnist);
    std::cout << "MNIST from " << mnist << "\n";
  } else {
    all = data::make_synthetic({.size = 10000, .seed = 1});
    std::cout << "no MNIST at " << mnist << ": using the synthetic 10-class task\n";
  }
  auto parts = data::split(all, 2000, /*seed=*/1);
  settings s = full ? settings{1200, 32, 128, 2, 40} : settings{240, 32, 128, 1, 30};
  if (retrain_epochs) s.retrain_epochs = retrain_epochs;
  if (!full) parts.train = data::head(parts.train, 2000);

  supernet probe = make_supernet(mnist_spec(), 1);
  const candidate largest = candidate_of<mnist_space>(
      value<"s0.filters", 24>, value<"s0.kernel", 5>, type<"s0.w", w8>, value<"s1.block", true>, type<"s1.w", w8>,
      value<"s2.filters", 48>, value<"s2.kernel", 5>, type<"s2.w", w8>, type<"head.w", w8>);
  const candidate smallest = candidate_of<mnist_space>(
      value<"s0.filters", 8>, value<"s0.kernel", 3>, type<"s0.w", wt>, value<"s1.block", false>, type<"s1.w", wt>,
      value<"s2.filters", 16>, value<"s2.kernel", 3>, type<"s2.w", wt>, type<"head.w", w4>);
  const double e_max = probe.energy_pj(largest), e_min = probe.energy_pj(smallest);
  std::cout << std::fixed << std::setprecision(1) << "energy: largest candidate " << e_max << " pJ, smallest " << e_min
            << " pJ (" << 100 * e_min / e_max << " %)\n";
  const double beta = -1.0;  // one beta for every target

  // Retrains a method's final architecture with the common recipe, from the weights its search
  // trained ("inherit") or from freshly drawn ones ("scratch"); "both" reports the two and
  // checks the inherited one.
  auto finish = [&](outcome& r, std::uint64_t seed) {
    if (retrain_mode != "scratch") r.accuracy = retrain(*r.trained, parts.train, parts.validation, s.retrain_epochs, seed);
    if (retrain_mode != "inherit") {
      const double a = retrain(*fresh_model(probe, r.arch, seed), parts.train, parts.validation, s.retrain_epochs, seed);
      (retrain_mode == "scratch" ? r.accuracy : r.scratch_accuracy) = a;
    }
    r.trained.reset();
  };

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    std::cout << (ok ? "ok:   " : "FAIL: ") << what << "\n";
    failures += !ok;
  };

  if (!full) {
    const double target = 0.25 * e_max;
    auto r = tunas_search(parts.train, parts.validation, target, beta, 1, s, out, "ci");
    finish(r, 1);
    const double acc = r.accuracy;
    std::cout << "target " << target << " pJ; final " << to_string(r.arch, probe.space()) << "\n  energy " << r.energy
              << " pJ (" << 100 * (r.energy / target - 1) << " % off), search " << r.search_s << " s, retrained "
              << 100 * acc << " % after " << s.retrain_epochs << " epoch(s)\n";
    check(std::abs(r.energy / target - 1) < r.initial_distance,
          "the final architecture is nearer the target than the uniform policy's samples (|E/E0-1| " +
              std::to_string(std::abs(r.energy / target - 1)) + " < " + std::to_string(r.initial_distance) + ")");
    check(acc > 0.5, "the retrained final architecture learns (> 50 %, chance 10 %)");
    return failures ? 1 : 0;
  }

  // The (target, seed) runs are independent: run them `threads` at a time, each with its
  // own supernet, policy and random-search baseline; the random search gets the wall-clock time
  // its TuNAS run took while sharing the machine the same way.
  struct job {
    double fraction;
    std::uint64_t seed;
    outcome tunas, random;
  };
  std::vector<job> jobs;
  for (double fraction : fractions)
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) jobs.push_back({fraction, seed, {}, {}});
  if (threads > 1) nn::set_blas_threads(1);
  std::mutex print_mutex;
  const auto t_all = clock_type::now();
  search::parallel_for(jobs.size(), threads, [&](std::size_t k) {
    job& jb = jobs[k];
    const double target = jb.fraction * e_max;
    const std::string tag = std::to_string(static_cast<int>(jb.fraction * 100)) + "_s" + std::to_string(jb.seed);
    jb.tunas = tunas_search(parts.train, parts.validation, target, beta, jb.seed, s, out, tag);
    finish(jb.tunas, jb.seed);
    jb.random = random_search(parts.train, parts.validation, target, jb.seed, jb.tunas.search_s, s);
    finish(jb.random, jb.seed);
    std::lock_guard lock(print_mutex);
    std::cout << "done: target " << 100 * jb.fraction << " %, seed " << jb.seed << " (" << k + 1 << " of "
              << jobs.size() << ")" << std::endl;
  });

  const bool both = retrain_mode == "both";
  std::cout << "retraining: " << s.retrain_epochs << " epochs from "
            << (retrain_mode == "scratch" ? "freshly drawn weights" : "the weights each search trained")
            << (both ? " (in brackets: from freshly drawn weights)" : "") << "\n"
            << "target  seed  E/E0(tunas)  acc(tunas)  acc(random)  E/E0(random)  search s\n";
  for (std::size_t f = 0; f < fractions.size(); ++f) {
    double mean_t = 0, mean_r = 0, mean_ts = 0, mean_rs = 0;
    const double fraction = fractions[f], target = fraction * e_max;
    for (std::size_t k = seeds * f; k < seeds * (f + 1); ++k) {
      const auto& t = jobs[k].tunas;
      const auto& r = jobs[k].random;
      const double n = static_cast<double>(seeds);
      mean_t += t.accuracy / n, mean_r += r.accuracy / n;
      mean_ts += t.scratch_accuracy / n, mean_rs += r.scratch_accuracy / n;
      std::cout << std::setw(5) << 100 * fraction << "%  " << jobs[k].seed << "     " << std::setprecision(3)
                << t.energy / target << "       " << std::setprecision(2) << 100 * t.accuracy;
      if (both) std::cout << " (" << 100 * t.scratch_accuracy << ")";
      std::cout << "       " << 100 * r.accuracy;
      if (both) std::cout << " (" << 100 * r.scratch_accuracy << ")";
      std::cout << "        " << std::setprecision(3) << r.energy / target << "        " << std::setprecision(1)
                << t.search_s << "\n  tunas:  " << to_string(t.arch, probe.space())
                << "\n  random: " << to_string(r.arch, probe.space()) << std::endl;
      check(std::abs(t.energy / target - 1) <= 0.10, "final energy within +-10 % of the target");
    }
    std::cout << std::setprecision(2) << "target " << 100 * fraction << " %: mean retrained accuracy tunas "
              << 100 * mean_t << " %, random search " << 100 * mean_r << " %";
    if (both) std::cout << " (from freshly drawn weights: tunas " << 100 * mean_ts << " %, random " << 100 * mean_rs << " %)";
    std::cout << "\n";
    check(mean_t >= mean_r, "supernet search at least as accurate as random search at matched energy");
  }
  std::cout << std::setprecision(1) << "wall time of the " << jobs.size() << " runs: " << seconds_since(t_all) / 60
            << " min on " << threads << " thread(s)\n";
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("08_tunas_supernet", [&] { return run(argc, argv); });
}
