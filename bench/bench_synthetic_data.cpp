// Data and training-step building blocks, single thread, medians of repeated runs:
//  - generating the synthetic data set (10,000 images 28x28), against reading the MNIST test
//    set (10,000 gzip IDX images) when QNAS_SHARED_DATA is set;
//  - one shuffled epoch of mini-batches (8,000 images, batch 64), against memcpy of the images;
//  - cross-entropy with gradient on [256, 10] logits;
//  - SGD-momentum and Adam steps on 2^20 parameters, against memcpy of the same floats.
//
//   cmake --preset bench -B build/bench && cmake --build build/bench --target bench_synthetic_data
//   QNAS_SHARED_DATA=../shared/data ./build/bench/bench/bench_synthetic_data [repeats]
//
// Exits non-zero when generating 10,000 synthetic images takes a second or more.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "qnas/data/batching.hpp"
#include "qnas/data/idx.hpp"
#include "qnas/data/synthetic.hpp"
#include "qnas/train/loss.hpp"
#include "qnas/train/optimizer.hpp"

namespace {

template <class Fn>
double median_seconds(int repeats, Fn&& fn) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    const auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

volatile float sink;

}  // namespace

int main(int argc, char** argv) {
  using namespace qnas;
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;

  // ---- synthetic generation vs MNIST IDX load --------------------------------------------------
  data::dataset synth;
  const double t_synth = median_seconds(repeats, [&] {
    synth = data::make_synthetic({.size = 10000, .seed = 1});
    sink = synth.images.data()[1234];
  });
  std::printf("%-44s %10.1f ms  %8.0f images/s\n", "make_synthetic(10000, 28x28)", t_synth * 1e3, 10000 / t_synth);
  const char* env = std::getenv("QNAS_SHARED_DATA");
  const std::filesystem::path mnist = env ? std::filesystem::path(env) / "mnist" : std::filesystem::path();
  if (env && std::filesystem::exists(mnist / "t10k-images-idx3-ubyte.gz")) {
    const double t_mnist = median_seconds(repeats, [&] {
      const auto d = data::load_mnist_test(mnist);
      sink = d.images.data()[1234];
    });
    std::printf("%-44s %10.1f ms  (synthetic / IDX load = %.2f)\n", "load_mnist_test (gzip IDX)", t_mnist * 1e3,
                t_synth / t_mnist);
  } else {
    std::printf("%-44s skipped: set QNAS_SHARED_DATA\n", "load_mnist_test (gzip IDX)");
  }

  // ---- one epoch of shuffled batches vs memcpy ---------------------------------------------------
  const auto parts = data::split(synth, 2000, 3);
  const data::dataset& train_set = parts.train;
  std::vector<float> copy(train_set.images.size());
  const double t_copy = median_seconds(repeats, [&] {
    std::memcpy(copy.data(), train_set.images.data(), copy.size() * sizeof(float));
    sink = copy[777];
  });
  data::batcher b(train_set, {.batch_size = 64, .seed = 5});
  std::size_t epoch = 0;
  const double t_epoch = median_seconds(repeats, [&] {
    b.start_epoch(epoch++);
    while (const data::batch* mb = b.next()) sink = mb->images.data()[0];
  });
  std::printf("%-44s %10.2f ms  (memcpy of the images %.2f ms, ratio %.2f)\n", "batcher epoch (8000 images, batch 64)",
              t_epoch * 1e3, t_copy * 1e3, t_epoch / t_copy);

  // ---- cross-entropy ---------------------------------------------------------------------------
  xt::xtensor<float, 2> logits = xt::zeros<float>({256, 10});
  for (std::size_t i = 0; i < logits.size(); ++i) logits.data()[i] = static_cast<float>((i * 37) % 23) * 0.3f - 3.0f;
  std::vector<data::label_t> labels(256);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<data::label_t>(i % 10);
  xt::xtensor<float, 2> dlogits;
  const int ce_calls = 1000;
  const double t_ce = median_seconds(repeats, [&] {
    for (int k = 0; k < ce_calls; ++k) sink = train::softmax_cross_entropy(logits, labels, dlogits);
  });
  std::printf("%-44s %10.2f us per call\n", "softmax_cross_entropy + grad [256, 10]", t_ce / ce_calls * 1e6);

  // ---- optimizer steps vs memcpy -----------------------------------------------------------------
  constexpr std::size_t n = std::size_t{1} << 20;
  nn::parameter p{"w", xt::zeros<float>({n}), xt::zeros<float>({n}), true};
  for (std::size_t i = 0; i < n; ++i) p.grad.data()[i] = static_cast<float>(i % 101) * 1e-3f - 0.05f;
  std::vector<nn::parameter*> ps{&p};
  std::vector<float> src(n, 1.0f), dst(n, 0.0f);
  const double t_mem = median_seconds(repeats * 5, [&] {
    std::memcpy(dst.data(), src.data(), n * sizeof(float));
    sink = dst[99];
  });
  train::sgd sgd({.learning_rate = 1e-3f, .momentum = 0.9f, .weight_decay = 1e-4f});
  sgd.step(ps);  // allocate the state outside the timing
  const double t_sgd = median_seconds(repeats * 5, [&] {
    sgd.step(ps);
    sink = p.value.data()[99];
  });
  train::adam adam({.learning_rate = 1e-3f, .weight_decay = 1e-4f});
  adam.step(ps);
  const double t_adam = median_seconds(repeats * 5, [&] {
    adam.step(ps);
    sink = p.value.data()[99];
  });
  std::printf("%-44s %10.3f ms\n", "memcpy 2^20 floats", t_mem * 1e3);
  std::printf("%-44s %10.3f ms  (%.2f x memcpy)\n", "sgd momentum step, 2^20 parameters", t_sgd * 1e3, t_sgd / t_mem);
  std::printf("%-44s %10.3f ms  (%.2f x memcpy)\n", "adam step, 2^20 parameters", t_adam * 1e3, t_adam / t_mem);

  const bool ok = t_synth < 1.0;
  std::printf("synthetic generation %s (target: 10,000 images in < 1 s)\n", ok ? "ok" : "TOO SLOW");
  return ok ? 0 : 1;
}
