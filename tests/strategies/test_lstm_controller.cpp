// lstm_controller: the hand-written backward pass matches finite differences of the objective.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "qnas/search/lstm_controller.hpp"

using namespace qnas;
using namespace qnas::search;

namespace {
space_description hetero_space() {
  return space_description({{"a", decision_kind::categorical, 3, {}},
                            {"b", decision_kind::ordinal, 5, {}},
                            {"c", decision_kind::categorical, 2, {}},
                            {"d", decision_kind::categorical, 4, {}}});
}
}  // namespace

TEST_CASE("objective_gradient matches central finite differences on every parameter") {
  // init_scale 0.5 so gates are away from their linear regime and every term matters.
  lstm_controller s(hetero_space(), {.hidden_size = 5, .init_scale = 0.5}, 3);
  const candidate c({2, 4, 0, 1});
  for (double beta : {0.0, 0.3}) {
    const double adv = 1.7;
    std::vector<double> g;
    s.objective_gradient(c, adv, beta, g);
    auto& p = s.parameters();
    REQUIRE(g.size() == p.size());
    const double h = 1e-6;
    double max_err = 0, max_grad = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double keep = p[i];
      p[i] = keep + h;
      const double up = s.objective(c, adv, beta);
      p[i] = keep - h;
      const double down = s.objective(c, adv, beta);
      p[i] = keep;
      const double fd = (up - down) / (2 * h);
      max_err = std::max(max_err, std::abs(fd - g[i]));
      max_grad = std::max(max_grad, std::abs(g[i]));
      // Central differences in double have error ~ h^2 * f''' + eps/h, about 1e-9 here.
      CHECK(std::abs(fd - g[i]) <= 1e-6 * (1.0 + std::abs(fd)));
    }
    CAPTURE(beta);
    CHECK(max_grad > 1e-3);  // the check is not vacuous
    MESSAGE("max |finite difference - backward| = " << max_err);
  }
}

TEST_CASE("probabilities over all candidates sum to 1 (the policy is a distribution)") {
  lstm_controller s(hetero_space(), {.hidden_size = 4, .init_scale = 0.8}, 9);
  double total = 0;
  candidate c({0, 0, 0, 0});
  for (c[0] = 0; c[0] < 3; ++c[0])
    for (c[1] = 0; c[1] < 5; ++c[1])
      for (c[2] = 0; c[2] < 2; ++c[2])
        for (c[3] = 0; c[3] < 4; ++c[3]) total += std::exp(s.log_prob(c));
  CHECK(total == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("the controller is autoregressive: later choices depend on earlier ones") {
  lstm_controller s(hetero_space(), {.hidden_size = 4, .init_scale = 0.8}, 9);
  // p(b | a) differs with a: compare log p(a, b=..) - log p(a) through full candidates whose
  // later choices are fixed.
  const double l0 = s.log_prob(candidate({0, 1, 0, 0})) - s.log_prob(candidate({0, 2, 0, 0}));
  const double l1 = s.log_prob(candidate({1, 1, 0, 0})) - s.log_prob(candidate({1, 2, 0, 0}));
  CHECK(std::abs(l0 - l1) > 1e-6);
}

TEST_CASE("lstm_controller refuses a bad configuration") {
  CHECK_THROWS_AS(lstm_controller(hetero_space(), {.hidden_size = 0}, 1), qnas::invalid_argument);
  CHECK_THROWS_AS(lstm_controller(hetero_space(), {.learning_rate = -1}, 1), qnas::invalid_argument);
  lstm_controller a(hetero_space(), {.hidden_size = 4}, 1);
  lstm_controller b(hetero_space(), {.hidden_size = 5}, 1);
  CHECK_THROWS_AS(b.load(a.save()), qnas::invalid_argument);
}
