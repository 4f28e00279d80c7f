// TuNAS loop: warm-up schedules, the RL delay, policy gradients against finite differences,
// and a short joint run that logs what it promises.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/search/tunas.hpp"

using namespace qnas;
using qnas::search::tunas;
using qnas::search::tunas_options;
using qnas::search::warmup_probability;

namespace {
struct block {
  static std::string name() { return "block"; }
};
using small_space = space<choice<"s0.filters", 4, 8>, choice<"s0.kernel", 3, 5>,
                          type_choice<"s0.w", fixed_point<8, 1>, fixed_point<4, 1>>, optional<"s1.block", block>>;

supernet_spec small_spec() {
  supernet_spec s;
  s.input = nn::image(8, 8, 1);
  s.classes = 2;
  s.stages.push_back(supernet_stage::conv("s0.filters", "s0.kernel", "s0.w", 2));
  s.stages.push_back(supernet_stage::skippable("s1.block", "s0.w"));
  return s;
}

// Two classes: a bright left half or a bright right half, with noise.
data::dataset halves(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 e(seed);
  std::uniform_real_distribution<float> u(0.0f, 0.3f);
  data::dataset d;
  d.classes = 2;
  d.images = xt::zeros<float>({n, std::size_t{8}, std::size_t{8}, std::size_t{1}});
  for (std::size_t i = 0; i < n; ++i) {
    const auto label = static_cast<data::label_t>(e() % 2);
    d.labels.push_back(label);
    for (std::size_t y = 0; y < 8; ++y)
      for (std::size_t x = 0; x < 8; ++x)
        d.images(i, y, x, 0) = u(e) + (((x < 4) == (label == 0)) ? 0.7f : 0.0f);
  }
  return d;
}
}  // namespace

TEST_CASE("warm-up probabilities decay linearly from 1 to 0 over the warm-up steps") {
  CHECK(warmup_probability(0, 100) == 1.0);
  CHECK(warmup_probability(25, 100) == doctest::Approx(0.75));
  CHECK(warmup_probability(50, 100) == doctest::Approx(0.5));
  CHECK(warmup_probability(99, 100) == doctest::Approx(0.01));
  CHECK(warmup_probability(100, 100) == 0.0);
  CHECK(warmup_probability(1000, 100) == 0.0);
  CHECK(warmup_probability(0, 0) == 0.0);
}

TEST_CASE("warm-up steps default to 25 % of the run and the RL delay is at least as long") {
  supernet net = make_supernet<small_space>(small_spec());
  tunas_options o;
  o.steps = 400;
  CHECK(tunas::warmup_steps(o) == 100);
  o.rl_delay = 10;
  CHECK(tunas(net, o).rl_delay() == 100);
  o.rl_delay = 150;
  CHECK(tunas(net, o).rl_delay() == 150);
  o.warmup_fraction = 1.5;
  CHECK_THROWS_AS(tunas(net, o), qnas::invalid_argument);
}

TEST_CASE("training settings enable all ops with probability p and the largest filters with probability q") {
  supernet net = make_supernet<small_space>(small_spec());
  tunas_options o;
  o.steps = 1000;  // warm-up: 250 steps
  tunas t(net, o);
  const candidate c({0, 0, 0, 1});
  auto frequency = [&](std::uint64_t step) {
    int all_ops = 0, largest = 0, skip_both = 0;
    const int trials = 4000;
    for (int i = 0; i < trials; ++i) {
      const auto st = t.training_setting(c, step);
      all_ops += st.stages[0].branches.size() == 2;
      largest += st.stages[0].filters == 8;
      skip_both += st.stages[1].branches.size() == 2;
      CHECK(st.stages[1].filters == st.stages[0].filters);  // the residual block follows its input
    }
    return std::array<double, 3>{all_ops / double(trials), largest / double(trials), skip_both / double(trials)};
  };
  const auto at0 = frequency(0);
  CHECK(at0[0] == 1.0);
  CHECK(at0[1] == 1.0);
  CHECK(at0[2] == 1.0);
  const auto mid = frequency(125);  // p = q = 0.5; 4000 draws: sd 0.008
  CHECK(mid[0] == doctest::Approx(0.5).epsilon(0.08));
  CHECK(mid[1] == doctest::Approx(0.5).epsilon(0.08));
  CHECK(mid[2] == doctest::Approx(0.5).epsilon(0.08));
  const auto after = frequency(250);
  CHECK(after[0] == 0.0);
  CHECK(after[1] == 0.0);
}

TEST_CASE("the REINFORCE gradient of log p(c) matches central finite differences") {
  // d/dz_k log softmax(z)_c = [k == c] - p_k, which the policy uses with adv = 1.
  const std::vector<double> z0 = {0.3, -1.2, 0.8, 0.05};
  auto log_p = [](std::vector<double> z, std::size_t c) {
    std::vector<double> p(z.size());
    search::detail::softmax(z.data(), p.data(), z.size());
    return std::log(p[c]);
  };
  for (std::size_t c = 0; c < z0.size(); ++c) {
    std::vector<double> p(z0.size()), g(z0.size(), 0.0);
    search::detail::softmax(z0.data(), p.data(), z0.size());
    search::detail::policy_gradient(p.data(), z0.size(), static_cast<std::uint32_t>(c), 1.0, 0.0, g.data());
    for (std::size_t k = 0; k < z0.size(); ++k) {
      const double h = 1e-5;
      auto up = z0, down = z0;
      up[k] += h;
      down[k] -= h;
      const double fd = (log_p(up, c) - log_p(down, c)) / (2 * h);
      CHECK(g[k] == doctest::Approx(fd).epsilon(1e-7));
    }
  }
}

TEST_CASE("a short joint run learns the task, logs every step and moves the policy toward the energy target") {
  supernet net = make_supernet<small_space>(small_spec(), 3);
  const auto train = halves(256, 1), val = halves(128, 2);
  // Target: the energy of the smallest candidate; a strong beta makes the cost dominate.
  const double smallest = net.energy_pj(candidate({0, 0, 1, 0}));
  const double largest = net.energy_pj(candidate({1, 1, 0, 1}));
  REQUIRE(smallest < largest);
  tunas_options o;
  o.steps = 240;
  o.batch_size = 32;
  o.validation_batch_size = 48;
  o.target = smallest;
  o.beta = -2.0;
  o.rl_learning_rate = 0.1;
  o.weights.learning_rate = 3e-3f;
  tunas t(net, o);
  std::vector<search::tunas_step> log;
  t.run(train, val, [&](const search::tunas_step& s) { log.push_back(s); });
  REQUIRE(log.size() == 240);
  // Accuracies are measured on 48 validation images: multiples of 1/48 (1/32 steps would show).
  for (std::size_t k = 0; k < log.size(); ++k) CHECK(std::abs(log[k].accuracy * 48 - std::round(log[k].accuracy * 48)) < 1e-9);
  CHECK(log.front().op_p == 1.0);
  CHECK(log[60].op_p == 0.0);
  // The policy does not move during the delay (60 steps) and moves afterwards.
  CHECK(log[59].probabilities[0][0] == 0.5);
  CHECK(log.back().probabilities[0][0] != 0.5);
  double late_acc = 0;
  for (std::size_t i = 200; i < 240; ++i) late_acc += log[i].accuracy / 40;
  CHECK(late_acc > 0.9);
  const candidate final = t.result();
  CHECK(std::abs(net.energy_pj(final) / smallest - 1) < std::abs(largest / smallest - 1));
  CHECK(final[0] == 0);  // 4 filters: the target is the smallest network

  const auto dir = std::filesystem::temp_directory_path() / "qnas_tunas_test";
  std::filesystem::create_directories(dir);
  search::write_tunas_log(dir / "log.jsonl", log, net.space());
  search::write_tunas_plots(dir / "cost.svg", dir / "probs.svg", log, net.space());
  const auto lines = io::read_jsonl(dir / "log.jsonl");
  REQUIRE(lines.size() == 240);
  CHECK(lines[100].contains("reward"));
  CHECK(lines[100].contains("baseline"));
  CHECK(lines[100]["probabilities"]["s0.kernel"].size() == 2);
  CHECK(std::filesystem::file_size(dir / "probs.svg") > 1000);
}
