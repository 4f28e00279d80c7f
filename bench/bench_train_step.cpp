// Training-step and inference throughput of the reference CNN (28x28x1 -> conv 3x3/2 16 -> relu
// -> conv 3x3/2 32 -> relu -> conv 3x3/2 64 -> relu -> flatten -> dense 10), batch 64, Adam:
// float32, 8-bit fixed-point QAT and (when the header exists) bfp<4,16> QAT.
//
// Prints one line per mode: "qnas <mode> <images/s median> <repeats>". Threads: OpenBLAS reads
// OPENBLAS_NUM_THREADS; everything else runs on the calling thread. bench/run_train_bench.sh
// runs this and bench/pytorch_reference.py in the same session and prints the table.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/nn.hpp"
#include "qnas/train/loss.hpp"
#include "qnas/train/optimizer.hpp"
#if __has_include("qnas/formats/bfp.hpp")
#include "qnas/formats/bfp.hpp"
#define QNAS_BENCH_HAS_BFP 1
#endif

using namespace qnas;
using namespace qnas::nn;

using reference_cnn = network<input<28, 28, 1>, conv2d<16, 3, 2>, relu, conv2d<32, 3, 2>, relu, conv2d<64, 3, 2>,
                              relu, flatten, dense<10>>;

// QKeras-style 8-bit QAT: weights fixed_point<8, 1> (step 1/64, range [-2, 2)), biases the same,
// activations quantized after each relu with fixed_relu<8, 3> (step 1/32, range [0, 8)).
using w8 = fixed_point<8, 1>;
using a8 = fixed_relu<8, 3>;
using reference_cnn_q8 =
    network<input<28, 28, 1>, conv2d<16, 3, 2, padding::same, w8, w8>, quantized<relu, a8>,
            conv2d<32, 3, 2, padding::same, w8, w8>, quantized<relu, a8>, conv2d<64, 3, 2, padding::same, w8, w8>,
            quantized<relu, a8>, flatten, dense<10, w8, w8>>;
#ifdef QNAS_BENCH_HAS_BFP
using wb = bfp<4, 16>;
using reference_cnn_bfp = network<input<28, 28, 1>, conv2d<16, 3, 2, padding::same, wb, unquantized, wb>, relu,
                                  conv2d<32, 3, 2, padding::same, wb, unquantized, wb>, relu,
                                  conv2d<64, 3, 2, padding::same, wb, unquantized, wb>, relu, flatten,
                                  dense<10, wb, unquantized, wb>>;
#endif

namespace {

constexpr std::size_t batch = 64;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

/// One benchmarked configuration: a network, its data and optimizer, and one step.
struct bench_case {
  std::string mode;
  std::function<void()> step;
  std::vector<double> rates;
};

template <class Net>
bench_case make_case(const char* mode, bool train) {
  struct state {
    Net net{42};
    xt::xarray<float> x = xt::zeros<float>({batch, std::size_t{28}, std::size_t{28}, std::size_t{1}});
    std::vector<data::label_t> y = std::vector<data::label_t>(batch);
    train::adam opt{train::adam_options{}};
    xt::xarray<float> dlogits;
    std::vector<parameter*> params;
    float sink = 0.0f;
  };
  auto s = std::make_shared<state>();
  std::mt19937_64 e(7);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (auto& v : s->x) v = u(e);
  for (auto& l : s->y) l = static_cast<data::label_t>(e() % 10);
  s->params = s->net.parameters();
  bench_case c;
  c.mode = mode;
  if (train)
    c.step = [s] {
      s->net.zero_grad();
      const auto& logits = s->net.forward(s->x, true);
      s->sink += train::softmax_cross_entropy(logits, s->y, s->dlogits);
      s->net.backward(s->dlogits);
      s->opt.step(s->params);
    };
  else
    c.step = [s] { s->sink += s->net.forward(s->x, false).data()[0]; };
  return c;
}
}  // namespace

int main(int argc, char** argv) {
  int repeats = 7, steps = 50;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeats" && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--mode" && i + 1 < argc) only = argv[++i];
    else {
      std::cerr << "usage: bench_train_step [--repeats R] [--steps S] [--mode train_f32|infer_f32|train_q8|train_bfp4]\n";
      return 2;
    }
  }
  std::cout << "# blas core " << blas_core() << ", blas threads " << blas_threads() << std::endl;
  if (const std::string advice = blas_advice(); !advice.empty()) std::cout << "# note: " << advice << std::endl;
  auto want = [&](const char* m) { return only.empty() || only == m; };
  std::vector<bench_case> cases;
  if (want("train_f32")) cases.push_back(make_case<reference_cnn>("train_f32", true));
  if (want("infer_f32")) cases.push_back(make_case<reference_cnn>("infer_f32", false));
  if (want("train_q8")) cases.push_back(make_case<reference_cnn_q8>("train_q8", true));
#ifdef QNAS_BENCH_HAS_BFP
  if (want("train_bfp4")) cases.push_back(make_case<reference_cnn_bfp>("train_bfp4", true));
#endif
  for (auto& c : cases)
    for (int i = 0; i < 20; ++i) c.step();  // warm-up: buffers and optimizer state allocated
  // Modes interleave, repeat by repeat, so a shared machine's changing load hits all alike.
  for (int r = 0; r < repeats; ++r)
    for (auto& c : cases) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < steps; ++i) c.step();
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      c.rates.push_back(static_cast<double>(batch) * steps / sec);
    }
  for (auto& c : cases) std::cout << "qnas " << c.mode << " " << median(c.rates) << " " << repeats << std::endl;
  return 0;
}
