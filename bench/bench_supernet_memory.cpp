// Peak heap memory of one supernet training step with op warm-up (all kernel branches and the
// skippable block active, largest filters) against one step of the standalone network of the
// largest candidate, with and without rematerialization. Claim: with rematerialization the
// supernet step needs at most 1.5x the standalone step's working memory.
//
// Memory is counted by replacing the global operator new/delete (bytes live, peak). "Step
// memory" is the peak during two forward + loss + backward steps minus what was live before
// them (parameters, gradients and the input batch), i.e. activations and scratch buffers. The
// totals including parameters are printed too: the supernet holds every branch's weights.
#include <cstdio>
#include <random>

#include "heap_counter.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/search/supernet.hpp"
#include "qnas/train/loss.hpp"

using namespace qnas;

namespace {
struct residual_block {
  static std::string name() { return "residual_block"; }
};
// The MNIST space of examples/08_tunas_supernet.cpp.
using w8 = fixed_point<8, 1>;
using w4 = fixed_point<4, 1>;
using wp = po2<4, 1.0>;
using wt = ternary<-2, 0.125>;
using mnist_space = space<choice<"s0.filters", 8, 16, 24>, choice<"s0.kernel", 3, 5>, type_choice<"s0.w", w8, w4, wp, wt>,
                          optional<"s1.block", residual_block>, type_choice<"s1.w", w8, w4, wp, wt>,
                          choice<"s2.filters", 16, 32, 48>, choice<"s2.kernel", 3, 5>, type_choice<"s2.w", w8, w4, wp, wt>,
                          type_choice<"head.w", w8, w4>>;

supernet_spec mnist_spec() {
  const quantizer a8 = quantizer::of<fixed_relu<8, 3>>();
  supernet_spec s;
  s.input = nn::image(28, 28, 1);
  s.stages.push_back(supernet_stage::conv("s0.filters", "s0.kernel", "s0.w", 2, a8));
  s.stages.push_back(supernet_stage::skippable("s1.block", "s1.w", 3, a8));
  s.stages.push_back(supernet_stage::conv("s2.filters", "s2.kernel", "s2.w", 2, a8));
  s.head_weights = "head.w";
  return s;
}

struct measured {
  long long before, step, total;
};

template <class Step>
measured measure(Step&& step) {
  const long long before = qnas_bench::heap::live();
  qnas_bench::heap::reset_peak();
  step();
  step();
  const long long peak = qnas_bench::heap::peak();
  return {before, peak - before, peak};
}
}  // namespace

int main() {
  const std::size_t batch = 64;
  xt::xarray<float> x = xt::zeros<float>({batch, std::size_t{28}, std::size_t{28}, std::size_t{1}});
  std::mt19937_64 e(1);
  for (auto& v : x) v = static_cast<float>(e() % 256) / 255.0f;
  std::vector<data::label_t> y(batch);
  for (auto& v : y) v = static_cast<data::label_t>(e() % 10);
  const candidate largest({2, 1, 0, 1, 0, 2, 1, 0, 0});

  measured standalone{}, remat{}, plain{};
  {
    std::unique_ptr<nn::sequential> sa;
    {
      supernet net = make_supernet<mnist_space>(mnist_spec(), 1);
      std::mt19937_64 init(2);
      sa = net.build_standalone(largest, true, init);
    }
    xt::xarray<float> g;
    standalone = measure([&] {
      sa->zero_grad();
      train::softmax_cross_entropy(sa->forward(x, true), y, g);
      sa->backward(g, false);
    });
  }
  for (bool on : {true, false}) {
    supernet net = make_supernet<mnist_space>(mnist_spec(), 1);
    net.set_rematerialize(on);
    supernet_setting st = net.setting_of(largest);
    for (auto& s : st.stages) s.branches = {0, 1};  // op warm-up everywhere (kernel 3 and 5; skip and block)
    xt::xarray<float> g;
    (on ? remat : plain) = measure([&] {
      net.zero_grad();
      train::softmax_cross_entropy(net.forward(x, st), y, g);
      net.backward(g);
    });
  }
  auto mib = [](long long b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
  std::printf("batch %zu, largest candidate; step memory = peak during 2 steps minus live before them\n", batch);
  std::printf("%-44s %12s %12s %12s\n", "", "before MiB", "step MiB", "peak MiB");
  std::printf("%-44s %12.2f %12.2f %12.2f\n", "standalone (nn::sequential)", mib(standalone.before), mib(standalone.step),
              mib(standalone.total));
  std::printf("%-44s %12.2f %12.2f %12.2f\n", "supernet, op warm-up, rematerialized", mib(remat.before), mib(remat.step),
              mib(remat.total));
  std::printf("%-44s %12.2f %12.2f %12.2f\n", "supernet, op warm-up, all branches kept", mib(plain.before), mib(plain.step),
              mib(plain.total));
  const double ratio = static_cast<double>(remat.step) / static_cast<double>(standalone.step);
  std::printf("step memory ratio rematerialized / standalone: %.3f (claim <= 1.5)\n", ratio);
  std::printf("step memory ratio all branches kept / standalone: %.3f\n",
              static_cast<double>(plain.step) / static_cast<double>(standalone.step));
  return ratio <= 1.5 ? 0 : 1;
}
