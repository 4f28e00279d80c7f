// Activation storage: bytes against float32 and store/load throughput for ReLU-like activations
// (about 50% exact zeros, the rest |N(0, 1)| scaled per channel), NHWC [64, 16, 16, 32] = 2 MiB of
// float32, single thread, in several formats with and without the lossless stage. Prints the
// median over repeats of the thread CPU time per store() and load() as GB/s of float32 data,
// and the bytes ratio against float32 (exact, independent of the machine).
//
//   cmake --preset bench -B build/bench && cmake --build build/bench --target bench_activation_store
//   ./build/bench/bench/bench_activation_store [repeats]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <time.h>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/minifloat.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/train/activation_store.hpp"

namespace {

/// This thread's CPU time: on a machine shared with builds, wall time mostly measures the
/// scheduler; CPU time of the one benchmark thread does not (caches are still shared).
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

template <class Fn>
double median_seconds(int repeats, Fn&& fn) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const double a = thread_seconds();
    fn();
    t.push_back(thread_seconds() - a);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

volatile float sink;

}  // namespace

int main(int argc, char** argv) {
  using namespace qnas;
  using namespace qnas::train;
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 15;
  const std::vector<std::size_t> shape{64, 16, 16, 32};
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> x(n), out(n);
  std::mt19937 g(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < n; ++i) {
    const float channel_scale = 0.25f + 0.05f * static_cast<float>(i % 32);
    x[i] = std::max(0.0f, normal(g)) * channel_scale;  // ReLU
  }
  const double zeros = static_cast<double>(std::count(x.begin(), x.end(), 0.0f)) / static_cast<double>(n);
  std::printf("ReLU-like activations [64,16,16,32]: %zu floats, %.1f%% zeros, %d repeats (medians)\n", n, 100 * zeros,
              repeats);

  const std::vector<activation_codec> codecs{activation_codec::float32(),
                                             activation_codec::of<bfp<8, 16>>(),
                                             activation_codec::of<fp8_e4m3>(),
                                             activation_codec::of<msfp12>(),
                                             activation_codec::of<mxfp4>(),
                                             activation_codec::of<bfp<3, 16>>(),
                                             activation_codec::of<bfp<2, 16>>()};
  const std::vector<lossless_options> stages{lossless_options::off(),
                                             {true, entropy_coder::none, 1},
                                             {false, entropy_coder::run_length, 1},
                                             {true, entropy_coder::huffman, 1},
                                             {true, entropy_coder::run_length, 1},
                                             {true, entropy_coder::deflate, 1}};
  std::printf("%-12s %-22s %10s %8s %8s %10s %10s\n", "format", "lossless", "bytes", "bits/el", "vs f32", "store GB/s",
              "load GB/s");
  const double gb = static_cast<double>(n * sizeof(float)) / 1e9;
  auto ws = std::make_shared<compression_workspace>();
  for (const auto& c : codecs) {
    for (const auto& ll : stages) {
      activation_store s(c, ll);
      s.set_workspace(ws);
      s.store(x, shape);  // warm-up: buffers reach their size
      s.load(out);
      const double ts = median_seconds(repeats, [&] { s.store(x, shape); });
      const double tl = median_seconds(repeats, [&] {
        s.load(out);
        sink = out[12345];
      });
      const auto b = s.bytes();
      std::printf("%-12s %-22s %10zu %8.2f %7.2fx %10.2f %10.2f\n", c.name().c_str(), to_string(ll).c_str(), b.stored,
                  b.bits_per_element(), b.ratio(), gb / ts, gb / tl);
    }
  }
  return 0;
}
