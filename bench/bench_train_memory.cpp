// Peak heap memory and time of one training step of the reference CNN (28x28x1 -> conv 3x3/2 16 ->
// relu -> conv 32 -> relu -> conv 64 -> relu -> flatten -> dense 10, batch 64) with its saved
// activations kept as float32 buffers (the default), with memory-saving training alone, and
// with every layer's input kept in an activation_store of a narrow format
// (train::compressed_activations).
//
// Memory is counted by replacing the global operator new/delete (heap_counter.hpp). "Step MiB"
// is the peak during two forward + loss + backward steps of a freshly built network minus what
// was live before them (parameters, gradients, the batch): activations, gradients and scratch.
// "Saved" is what the stores hold between forward and backward. Time: median of 30 warm steps.
//
//   build/bench/bench/bench_train_memory
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "heap_counter.hpp"
#include "qnas/formats/bfp.hpp"
#include "qnas/nn.hpp"
#include "qnas/train/compressed_training.hpp"
#include "qnas/train/loss.hpp"

using namespace qnas;

namespace {

constexpr std::size_t batch = 64;

std::unique_ptr<nn::sequential> reference_cnn() {
  auto net = std::make_unique<nn::sequential>(nn::image(28, 28, 1));
  net->emplace<nn::conv2d_layer>(16, 3, 2);
  net->emplace<nn::relu_layer>();
  net->emplace<nn::conv2d_layer>(32, 3, 2);
  net->emplace<nn::relu_layer>();
  net->emplace<nn::conv2d_layer>(64, 3, 2);
  net->emplace<nn::relu_layer>();
  net->emplace<nn::flatten_layer>();
  net->emplace<nn::dense_layer>(10);
  std::mt19937_64 e(1);
  net->initialize(e);
  return net;
}

struct config {
  std::string name;
  bool memory_saving = false;
  std::optional<train::activation_codec> codec;  // no value: no stores
  train::lossless_options lossless = train::lossless_options::off();
};

struct result {
  double step_mib = 0, saved_kib = 0, ratio = 0, ms = 0;
};

result run(const config& c, const xt::xarray<float>& x, const std::vector<data::label_t>& y) {
  result r;
  auto net = reference_cnn();
  std::unique_ptr<train::compressed_activations> saved;
  if (c.codec)
    saved = std::make_unique<train::compressed_activations>(*net, *c.codec, c.lossless, c.memory_saving);
  else
    net->set_memory_saving(c.memory_saving);
  xt::xarray<float> g;
  auto step = [&] {
    net->zero_grad();
    train::softmax_cross_entropy(net->forward(x, true), y, g);
    net->backward(g, false);
  };
  const long long before = qnas_bench::heap::live();
  qnas_bench::heap::reset_peak();
  step();
  step();
  r.step_mib = static_cast<double>(qnas_bench::heap::peak() - before) / (1024.0 * 1024.0);
  if (saved) {
    net->zero_grad();
    train::softmax_cross_entropy(net->forward(x, true), y, g);
    const train::activation_bytes b = saved->bytes();  // what the stores hold for the backward pass
    r.saved_kib = static_cast<double>(b.stored) / 1024.0;
    r.ratio = b.ratio();
    net->backward(g, false);
  }
  std::vector<double> ms;
  for (int i = 0; i < 30; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  r.ms = 0.5 * (ms[14] + ms[15]);
  return r;
}

}  // namespace

int main() {
  xt::xarray<float> x = xt::zeros<float>({batch, std::size_t{28}, std::size_t{28}, std::size_t{1}});
  std::mt19937_64 e(3);
  // MNIST-like input: mostly zero background, strokes in [0, 1].
  for (auto& v : x) v = e() % 4 == 0 ? static_cast<float>(e() % 256) / 255.0f : 0.0f;
  std::vector<data::label_t> y(batch);
  for (auto& v : y) v = static_cast<data::label_t>(e() % 10);

  const train::lossless_options zrl{};  // zero mask + run-length
  const std::vector<config> configs = {
      {"float32 buffers (default)", false, std::nullopt},
      {"memory saving, float32 buffers", true, std::nullopt},
      {"memory saving + float32 stores", true, train::activation_codec::float32()},
      {"memory saving + bfp<8,16> + zero mask/RLE", true, train::activation_codec::of<bfp<8, 16>>(), zrl},
      {"memory saving + bfp<4,16>", true, train::activation_codec::of<bfp<4, 16>>()},
      {"memory saving + bfp<4,16> + zero mask/RLE", true, train::activation_codec::of<bfp<4, 16>>(), zrl},
      {"memory saving + bfp<2,16> + zero mask/RLE", true, train::activation_codec::of<bfp<2, 16>>(), zrl},
      {"bfp<4,16> + zero mask/RLE, no memory saving", false, train::activation_codec::of<bfp<4, 16>>(), zrl},
  };
  std::printf("reference CNN, batch %zu, blas %s; step MiB = heap peak during 2 cold steps minus live before\n", batch,
              nn::blas_core().c_str());
  std::printf("%-46s %9s %9s %8s %11s %9s %9s\n", "configuration", "step MiB", "vs dflt", "saved KiB", "saved/f32",
              "ms/step", "vs dflt");
  result base{};
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const result r = run(configs[i], x, y);
    if (i == 0) base = r;
    char saved[32] = "-", ratio[32] = "-";
    if (configs[i].codec) {
      std::snprintf(saved, sizeof saved, "%.1f", r.saved_kib);
      std::snprintf(ratio, sizeof ratio, "%.2fx", r.ratio);
    }
    std::printf("%-46s %9.2f %8.2fx %9s %11s %9.2f %8.2fx\n", configs[i].name.c_str(), r.step_mib,
                base.step_mib / r.step_mib, saved, ratio, r.ms, r.ms / base.ms);
  }
  return 0;
}
