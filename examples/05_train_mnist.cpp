// Example 5: train the reference CNN on MNIST in float32, with 8-bit QAT and with 4-bit weights.
//
// Data: the MNIST test set in $QNAS_SHARED_DATA/mnist (10,000 images), split 8,000 train /
// 2,000 validation (stratified, seed 1). Adam (lr 1e-3), batch 64.
//
//   05_train_mnist          reduced CI mode: 3 epochs on 4,000 training images, float32 and 8-bit;
//                           checks validation accuracy well above chance (>= 85%; chance is 10%)
//   05_train_mnist --full   the claim: 8 epochs on 8,000 images; float32 >= 96.0%, 8-bit QAT
//                           within 0.5 points of float32, 4-bit weights within 2 points
//
//   --mnist DIR             the MNIST folder instead of $QNAS_SHARED_DATA/mnist
//
// Exits 1 when a check fails or with the reason when the data cannot be read (a --mnist DIR
// that does not hold MNIST, a truncated file), 2 on a command-line mistake; skips (exit 0, with
// a message) when no --mnist is given and the shared data folder is absent.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "qnas/data/dataset.hpp"
#include "qnas/data/idx.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/nn.hpp"
#include "qnas/train/callbacks.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/trainer.hpp"

#include "search_cli.hpp"

using namespace qnas;
using namespace qnas::nn;

// 28x28x1 -> conv 3x3/2 16 -> relu -> conv 3x3/2 32 -> relu -> conv 3x3/2 64 -> relu -> flatten -> dense 10
template <class W = unquantized, class A = unquantized>
using reference_cnn =
    network<input<28, 28, 1>, conv2d<16, 3, 2, padding::same, W, W>, quantized<relu, A>,
            conv2d<32, 3, 2, padding::same, W, W>, quantized<relu, A>, conv2d<64, 3, 2, padding::same, W, W>,
            quantized<relu, A>, flatten, dense<10, W, W>>;

// 8-bit: weights and biases fixed_point<8, 1> (step 1/64 over [-2, 2)), activations after each
// relu fixed_relu<8, 3> (step 1/32 over [0, 8)). 4-bit weights: fixed_point<4, 1> (step 1/4 over
// [-2, 1.75]) with float activations.
using float_net = reference_cnn<>;
using q8_net = reference_cnn<fixed_point<8, 1>, fixed_relu<8, 3>>;
using w4_net = reference_cnn<fixed_point<4, 1>>;

template <class Net>
double train_and_validate(const char* label, const data::dataset& tr, const data::dataset& va, std::size_t epochs) {
  Net net(/*seed=*/3);
  if (label == std::string("float32")) std::cout << net;
  train::adam opt({.learning_rate = 1e-3f});
  train::trainer t(net, opt);
  const auto last = t.fit(tr, &va, {.epochs = epochs, .batch_size = 64, .seed = 11},
                          train::progress(std::cout, std::string(label) + "  "));
  std::cout << label << ": validation accuracy " << 100.0 * last.val_accuracy << "%\n";
  return 100.0 * last.val_accuracy;
}

namespace {

int run(int argc, char** argv) {
  bool full = false;
  std::filesystem::path folder;
  const qnas::examples::cli_info cli{"05_train_mnist", "05_train_mnist [--full] [--mnist DIR]"};
  qnas::examples::parse_cli(argc, argv, cli, [&](const std::string& a, const qnas::examples::cli_value& value) {
    if (a == "--full") full = true;
    else if (a == "--mnist") folder = value();
    else return false;
    return true;
  });
  if (folder.empty() && (folder = qnas::examples::shared_mnist()).empty()) {  // a --mnist DIR must exist
    std::cout << "skipped: no MNIST folder in $QNAS_SHARED_DATA or ../shared/data (set QNAS_SHARED_DATA or pass "
                 "--mnist DIR)\n";
    return qnas::examples::skipped_status;
  }
  const data::dataset all = data::load_mnist_test(folder);
  auto parts = data::split(all, 2000, /*seed=*/1);
  if (!full) parts.train = data::head(parts.train, 4000);
  const std::size_t epochs = full ? 8 : 3;
  std::cout << "train " << parts.train.size() << " images, validation " << parts.validation.size() << ", "
            << epochs << " epoch(s)\n";

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    std::cout << (ok ? "ok:   " : "FAIL: ") << what << "\n";
    failures += !ok;
  };
  const double f32 = train_and_validate<float_net>("float32", parts.train, parts.validation, epochs);
  const double q8 = train_and_validate<q8_net>("8-bit QAT", parts.train, parts.validation, epochs);
  if (!full) {
    check(f32 >= 85.0, "float32 reduced run >= 85% (chance is 10%)");
    check(q8 >= 85.0, "8-bit QAT reduced run >= 85%");
    return failures ? 1 : 0;
  }
  const double w4 = train_and_validate<w4_net>("4-bit weights", parts.train, parts.validation, epochs);
  check(f32 >= 96.0, "float32 >= 96.0% after 8 epochs");
  check(q8 >= f32 - 0.5, "8-bit QAT within 0.5 points of float32");
  check(w4 >= f32 - 2.0, "4-bit weights within 2 points of float32");
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("05_train_mnist", [&] { return run(argc, argv); });
}
