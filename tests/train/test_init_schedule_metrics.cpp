// Initialisation statistics and fans, learning-rate schedules at chosen steps, and metrics on
// hand-made logits (including ties).
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <vector>

#include <xtensor/xarray.hpp>

// Other headers may open qnas::train::detail or qnas::data::detail before these are included;
// qualified lookups inside the headers must still reach qnas::detail.
namespace qnas::train::detail {}
namespace qnas::data::detail {}

#include "qnas/train/init.hpp"
#include "qnas/train/metrics.hpp"
#include "qnas/train/schedule.hpp"

using namespace qnas;
using train::label_t;

namespace {
struct moments {
  double mean, var, max_abs;
};
moments moments_of(const xt::xarray<float>& w) {
  double s = 0, s2 = 0, m = 0;
  for (float v : w) {
    s += v;
    s2 += static_cast<double>(v) * v;
    m = std::max(m, static_cast<double>(std::abs(v)));
  }
  const double n = static_cast<double>(w.size());
  return {s / n, s2 / n - (s / n) * (s / n), m};
}
}  // namespace

TEST_CASE("fans from dense and conv layouts") {
  using S = std::vector<std::size_t>;
  CHECK(train::fans_of(S{784, 128}).in == 784);
  CHECK(train::fans_of(S{784, 128}).out == 128);
  CHECK(train::fans_of(S{3, 3, 16, 32}).in == 144);   // 3*3*16
  CHECK(train::fans_of(S{3, 3, 16, 32}).out == 288);  // 3*3*32
  CHECK(train::fans_of(S{10}).in == 10);
  CHECK(train::fans_of(S{10}).out == 10);
  CHECK_THROWS_AS((void)train::fans_of(S{}), invalid_argument);
  CHECK_THROWS_AS((void)train::fans_of(S{3, 0}), invalid_argument);
}

TEST_CASE("He and Glorot initialisation: mean, variance and bounds on a large tensor") {
  // 3*3*64*256 = 147456 samples: the sample variance is within ~0.4% (uniform) to ~0.7%
  // (normal) of the true one at one standard error; 3% is far outside noise.
  const std::vector<std::size_t> shape = {3, 3, 64, 256};
  const double fan_in = 576, fan_out = 2304;
  struct expect {
    train::init_scheme scheme;
    double var, bound;  // bound 0: normal (no hard bound)
  };
  const expect cases[] = {
      {train::init_scheme::he_uniform, 2.0 / fan_in, std::sqrt(6.0 / fan_in)},
      {train::init_scheme::he_normal, 2.0 / fan_in, 0.0},
      {train::init_scheme::glorot_uniform, 2.0 / (fan_in + fan_out), std::sqrt(6.0 / (fan_in + fan_out))},
      {train::init_scheme::glorot_normal, 2.0 / (fan_in + fan_out), 0.0},
  };
  for (const auto& c : cases) {
    CAPTURE(static_cast<int>(c.scheme));
    xt::xarray<float> w = xt::zeros<float>(shape);
    random_engine e(5);
    train::initialize(w, c.scheme, e);
    const auto m = moments_of(w);
    CHECK(std::abs(m.mean) < 4.0 * std::sqrt(c.var / static_cast<double>(w.size())));
    CHECK(m.var == doctest::Approx(c.var).epsilon(0.03));
    if (c.bound > 0) {
      CHECK(m.max_abs <= c.bound);
      CHECK(m.max_abs > 0.99 * c.bound);  // the whole range is used
    } else {
      CHECK(m.max_abs > 3.5 * std::sqrt(c.var));  // normal tails, not a truncated draw
    }
  }
}

TEST_CASE("initialisation is reproducible from the engine; parameters get a zero gradient") {
  nn::parameter a{"w", xt::zeros<float>({20, 30}), {}, true};
  nn::parameter b{"w", xt::zeros<float>({20, 30}), {}, true};
  random_engine e1(1), e2(1), e3(2);
  train::initialize(a, train::init_scheme::glorot_uniform, e1);
  train::initialize(b, train::init_scheme::glorot_uniform, e2);
  CHECK(a.value == b.value);
  CHECK(a.grad.shape() == a.value.shape());
  CHECK(xt::all(xt::equal(a.grad, 0.0f)));
  train::initialize(b, train::init_scheme::glorot_uniform, e3);
  CHECK(a.value != b.value);
  std::mt19937 e32(1);  // a 32-bit engine works too
  train::initialize(b, train::init_scheme::he_normal, e32);
  CHECK(moments_of(b.value).var > 0.0);
  train::initialize(b, train::init_scheme::ones, e32);
  CHECK(xt::all(xt::equal(b.value, 1.0f)));
  train::initialize(b, train::init_scheme::zeros, e32);
  CHECK(xt::all(xt::equal(b.value, 0.0f)));
}

TEST_CASE("learning-rate schedules at chosen steps") {
  static_assert(train::lr_schedule<train::cosine_schedule> && train::lr_schedule<train::step_schedule>);
  CHECK(train::constant_schedule{0.3f}(12345) == 0.3f);

  const train::cosine_schedule cs{.base = 0.1f, .total_steps = 110, .warmup_steps = 10, .final_value = 0.0f};
  CHECK(cs(0) == doctest::Approx(0.01));  // warm-up: base * (step + 1) / warmup
  CHECK(cs(4) == doctest::Approx(0.05));
  CHECK(cs(9) == doctest::Approx(0.1));
  CHECK(cs(10) == doctest::Approx(0.1));                // cosine starts at base
  CHECK(cs(35) == doctest::Approx(0.0853553390593));    // quarter: 0.1 * (1 + cos(pi/4)) / 2
  CHECK(cs(60) == doctest::Approx(0.05));               // half way
  CHECK(cs(110) == 0.0f);
  CHECK(cs(1000) == 0.0f);
  const train::cosine_schedule floor{.base = 1.0f, .total_steps = 100, .final_value = 0.1f};
  CHECK(floor(0) == doctest::Approx(1.0));
  CHECK(floor(50) == doctest::Approx(0.55));
  CHECK(floor(100) == doctest::Approx(0.1));
  const train::cosine_schedule bad{.total_steps = 5, .warmup_steps = 6};
  CHECK_THROWS_AS((void)bad(0), invalid_argument);

  const train::step_schedule ss{.base = 0.1f, .step_size = 30, .gamma = 0.1f};
  CHECK(ss(0) == doctest::Approx(0.1));
  CHECK(ss(29) == doctest::Approx(0.1));
  CHECK(ss(30) == doctest::Approx(0.01));
  CHECK(ss(65) == doctest::Approx(0.001));

  const train::exponential_schedule es{.base = 1.0f, .rate = 2.0f, .period = 10};
  CHECK(es(5) == doctest::Approx(std::sqrt(2.0)));
  CHECK(es(20) == doctest::Approx(4.0));

  train::schedule any = cs;  // type-erased
  CHECK(any(60) == doctest::Approx(0.05));
}

TEST_CASE("accuracy, top-k (ties broken to the lower class), confusion matrix, running mean") {
  xt::xarray<float> z = {
      {0.1f, 0.7f, 0.2f},  // argmax 1
      {0.5f, 0.5f, 0.0f},  // tie 0/1: predicts 0
      {0.0f, 0.1f, 0.9f},  // argmax 2
      {0.3f, 0.3f, 0.3f},  // all tied: predicts 0
  };
  const std::vector<label_t> y = {1, 1, 0, 2};
  CHECK(train::argmax(z) == std::vector<label_t>{1, 0, 2, 0});
  CHECK(train::accuracy(z, y) == doctest::Approx(0.25));
  // top-2: row 0 yes (rank 0), row 1 yes (rank 1 after class 0), row 2 no (rank 2),
  // row 3 no (class 2 is behind 0 and 1)
  CHECK(train::top_k_correct(z, y, 2) == 2);
  CHECK(train::top_k_accuracy(z, y, 3) == doctest::Approx(1.0));
  CHECK(train::top_k_correct(z, y, 1) == 1);

  train::confusion_matrix cm(3);
  cm.add(z, y);
  CHECK(cm(1, 1) == 1);
  CHECK(cm(1, 0) == 1);
  CHECK(cm(0, 2) == 1);
  CHECK(cm(2, 0) == 1);
  CHECK(cm.total() == 4);
  CHECK(cm.accuracy() == doctest::Approx(0.25));
  CHECK(cm.recall(1) == doctest::Approx(0.5));
  CHECK(cm.recall(0) == 0.0);
  std::ostringstream os;
  os << cm;
  CHECK(os.str().find("truth\\pred") != std::string::npos);
  CHECK_THROWS_AS(cm.add(3, 0), invalid_argument);
  xt::xarray<float> z4 = xt::zeros<float>({4, 4});
  CHECK_THROWS_AS(cm.add(z4, y), invalid_argument);
  cm.reset();
  CHECK(cm.total() == 0);

  train::mean_metric m;
  m.add(1.0, 64);  // batch mean 1.0 over 64 samples
  m.add(4.0, 16);  // smaller last batch
  CHECK(m.mean() == doctest::Approx((64.0 + 64.0) / 80.0));
  CHECK(m.weight() == 80.0);
}
