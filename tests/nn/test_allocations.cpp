// A warm training step allocates nothing: layers, loss gradient and optimizer reuse their buffers.
// GCC pairs the replaced operator new/delete below with malloc/free and warns although they match.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/nn.hpp"
#include "qnas/train/loss.hpp"
#include "qnas/train/optimizer.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}
// Counting replacements of the global allocation functions (this test executable only).
void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace qnas;
using namespace qnas::nn;

template <class Net>
std::size_t allocations_per_step() {
  Net net(1);
  xt::xarray<float> x = xt::ones<float>({std::size_t{16}, std::size_t{28}, std::size_t{28}, std::size_t{1}});
  std::vector<data::label_t> y(16, 3);
  xt::xarray<float> dlogits;
  train::adam opt;
  const auto params = net.parameters();
  auto step = [&] {
    net.zero_grad();
    const auto& logits = net.forward(x, true);
    train::softmax_cross_entropy(logits, y, dlogits);
    net.backward(dlogits);
    opt.step(params);
  };
  step();
  step();
  const std::size_t before = allocations.load();
  for (int i = 0; i < 3; ++i) step();
  return allocations.load() - before;
}

TEST_CASE("the counter sees allocations") {
  const std::size_t before = allocations.load();
  auto* v = new std::vector<float>(100);
  CHECK(allocations.load() - before == 2);  // the vector object and its storage
  delete v;
}

TEST_CASE("no allocation in a warm training step (float32, 8-bit QAT, batch norm, pooling)") {
  using f32 = network<input<28, 28, 1>, conv2d<8, 3, 2>, batch_norm, relu, max_pool<2>, conv2d<16, 3, 1>, relu,
                      flatten, dense<10>>;
  using q8 = network<input<28, 28, 1>, conv2d<8, 3, 2, padding::same, fixed_point<8, 1>, fixed_point<8, 1>>,
                     quantized<relu, fixed_relu<8, 3>>, conv2d<16, 3, 2, padding::same, fixed_point<8, 1>>,
                     quantized<relu, fixed_relu<8, 3>>, flatten, dense<10, fixed_point<8, 1>>>;
  CHECK(allocations_per_step<f32>() == 0);
  CHECK(allocations_per_step<q8>() == 0);
}
