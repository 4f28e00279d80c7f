// trainer: learns a separable task, callbacks detected at compile time, early stopping, time
// budget, evaluation.
#include <doctest/doctest.h>

#include <random>
#include <sstream>

#include "qnas/nn.hpp"
#include "qnas/train/callbacks.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/trainer.hpp"

using namespace qnas;
using namespace qnas::nn;

// Two classes of 8x8 images: ink in the top half (class 0) or the bottom half (class 1), plus noise.
static data::dataset halves(std::size_t n, std::uint64_t seed) {
  data::dataset d;
  d.classes = 2;
  d.images = xt::zeros<float>({n, std::size_t{8}, std::size_t{8}, std::size_t{1}});
  d.labels.resize(n);
  std::mt19937_64 e(seed);
  std::uniform_real_distribution<float> u(0.0f, 0.5f);
  for (std::size_t i = 0; i < n; ++i) {
    d.labels[i] = static_cast<data::label_t>(i % 2);
    for (std::size_t y = 0; y < 8; ++y)
      for (std::size_t x = 0; x < 8; ++x) {
        const bool ink = (y < 4) == (d.labels[i] == 0);
        d.images(i, y, x, 0) = std::min(1.0f, u(e) + (ink ? 0.5f : 0.0f));
      }
  }
  return d;
}

struct counting_callback {
  int begins = 0, epochs = 0, ends = 0;
  void on_train_begin() { ++begins; }
  void on_epoch_end(const train::epoch_stats&) { ++epochs; }  // void: never stops
  void on_train_end(const train::epoch_stats&) { ++ends; }
};

TEST_CASE("a run-time network learns a separable task; callbacks are called") {
  const auto tr = halves(256, 1), va = halves(128, 2);
  sequential net(image(8, 8, 1));
  net.emplace<conv2d_layer>(4, 3, 2);
  net.emplace<relu_layer>();
  net.emplace<flatten_layer>();
  net.emplace<dense_layer>(2);
  std::mt19937_64 e(5);
  net.initialize(e);
  const auto before = train::evaluate(net, va);
  train::adam opt({.learning_rate = 1e-2f});
  train::trainer t(net, opt);
  counting_callback cc;
  std::ostringstream log;
  const auto last = t.fit(tr, &va, {.epochs = 4, .batch_size = 32}, cc, train::progress(log));
  CHECK(cc.begins == 1);
  CHECK(cc.epochs == 4);
  CHECK(cc.ends == 1);
  CHECK(t.steps() == 4 * 8);
  CHECK(last.val_accuracy >= 0.95);
  CHECK(last.val_loss < before.loss);
  CHECK(log.str().find("epoch 4/4") != std::string::npos);
  const auto after = train::evaluate(net, va, 50, 1);
  CHECK(after.accuracy == doctest::Approx(last.val_accuracy));
  CHECK(after.top_k_accuracy == doctest::Approx(after.accuracy));  // k = 1
  CHECK(after.count == 128);
}

TEST_CASE("early_stopping counts epochs without improvement") {
  train::early_stopping es(2, 0.0);
  train::epoch_stats s;
  s.has_validation = true;
  const double losses[] = {1.0, 0.9, 0.95, 0.96};
  bool stops[4];
  for (int i = 0; i < 4; ++i) {
    s.epoch = static_cast<std::size_t>(i);
    s.val_loss = losses[i];
    stops[i] = es.on_epoch_end(s);
  }
  CHECK(!stops[0]);
  CHECK(!stops[1]);
  CHECK(!stops[2]);  // one epoch without improvement
  CHECK(stops[3]);   // two: patience reached
  CHECK(es.best() == 0.9);
  CHECK(es.best_epoch() == 1);
  train::early_stopping acc(1, 0.01, train::early_stopping::monitor::accuracy);
  s.val_accuracy = 0.5;
  CHECK(!acc.on_epoch_end(s));
  s.val_accuracy = 0.505;  // less than min_delta better: no improvement
  CHECK(acc.on_epoch_end(s));
}

TEST_CASE("time_budget stops after the step that exhausts it") {
  const auto tr = halves(64, 3);
  network<input<8, 8, 1>, flatten, dense<2>> net(1);
  train::sgd opt({.learning_rate = 0.1f});
  train::trainer t(net, opt);
  train::time_budget budget(0.0);
  t.fit(tr, nullptr, {.epochs = 5, .batch_size = 16}, budget);
  CHECK(budget.exceeded());
  CHECK(t.steps() == 1);
}

TEST_CASE("a loss that sees the batch: distillation from per-image teacher logits") {
  const auto tr = halves(256, 4), va = halves(128, 5);
  // Teacher: a trained network; its logits on every training image, computed once.
  network<input<8, 8, 1>, conv2d<4, 3, 2>, relu, flatten, dense<2>> teacher(1);
  train::adam topt({.learning_rate = 1e-2f});
  train::trainer(teacher, topt).fit(tr, nullptr, {.epochs = 4, .batch_size = 32});
  xt::xarray<float> all = tr.images;
  const xt::xarray<float> teacher_logits = teacher.forward(all, false);
  // Student learns from the teacher only (alpha = 1: the labels are not used).
  auto distill = [&](const xt::xarray<float>& z, std::span<const data::label_t> y, xt::xarray<float>& g,
                     const data::batch& b) {
    xt::xarray<float> t = xt::zeros<float>({b.size(), std::size_t{2}});
    for (std::size_t i = 0; i < b.size(); ++i)
      for (std::size_t j = 0; j < 2; ++j) t(i, j) = teacher_logits(b.indices[i], j);
    return train::distillation_loss(z, t, y, {.temperature = 2.0f, .alpha = 1.0f}, g);
  };
  network<input<8, 8, 1>, flatten, dense<2>> student(2);
  train::adam sopt({.learning_rate = 1e-2f});
  train::trainer t(student, sopt, train::no_schedule{}, distill);
  const auto last = t.fit(tr, &va, {.epochs = 6, .batch_size = 32});
  CHECK(last.val_accuracy >= 0.95);
}
