// Example 5: train the reference CNN in float32, with 8-bit QAT and with 4-bit weights.
//
// Data: Fashion-MNIST (60,000 training and 10,000 test images), found by the rule of
// qnas::data::locate_fashion_mnist: --data DIR, else $QNAS_DATA, else the Debian package's
// /usr/share/datasets/fashion-mnist. The training images are split 54,000 train / 6,000
// validation (stratified, seed 1); the test set is evaluated once, at the end, for the report.
// Adam (lr 1e-3), batch 64.
//
//   05_train_mnist          reduced CI mode: 3 epochs on 4,000 training images, float32 and 8-bit;
//                           checks validation accuracy well above chance (>= 70%; chance is 10%)
//   05_train_mnist --full   the claim: 8 epochs on 54,000 images; float32 >= 89.0% on the test
//                           set, 8-bit QAT within 0.5 points of float32, 4-bit weights within 2
//
//   --data DIR              the Fashion-MNIST folder (instead of $QNAS_DATA or the Debian folder)
//   --mnist DIR             MNIST instead: its test set split 8,000 train / 2,000 validation;
//                           --full then claims float32 >= 96.0% (validation), 8-bit and 4-bit as above
//
// Exits 1 when a check fails or with the reason when the data cannot be read (a --data or --mnist
// DIR that does not hold the data set, a truncated file), 2 on a command-line mistake; skips
// (exit 77, with the apt-get line that installs the data) when Fashion-MNIST is not found and
// no --data or --mnist was given.
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

// Validation accuracy after the last epoch and, when `test` is non-null, test accuracy (both %).
struct result {
  double validation = 0.0;
  double test = 0.0;
};

template <class Net>
result train_and_validate(const char* label, const data::dataset& tr, const data::dataset& va, const data::dataset* test,
                          std::size_t epochs) {
  Net net(/*seed=*/3);
  if (label == std::string("float32")) std::cout << net;
  train::adam opt({.learning_rate = 1e-3f});
  train::trainer t(net, opt);
  const auto last = t.fit(tr, &va, {.epochs = epochs, .batch_size = 64, .seed = 11},
                          train::progress(std::cout, std::string(label) + "  "));
  result r{100.0 * last.val_accuracy, 0.0};
  std::cout << label << ": validation accuracy " << r.validation << "%";
  if (test != nullptr) {
    r.test = 100.0 * train::evaluate(net, *test).accuracy;
    std::cout << ", test accuracy " << r.test << "%";
  }
  std::cout << "\n";
  return r;
}

namespace {

int run(int argc, char** argv) {
  bool full = false;
  std::filesystem::path data_dir, mnist;
  const qnas::examples::cli_info cli{"05_train_mnist", "05_train_mnist [--full] [--data DIR | --mnist DIR]"};
  qnas::examples::parse_cli(argc, argv, cli, [&](const std::string& a, const qnas::examples::cli_value& value) {
    if (a == "--full") full = true;
    else if (a == "--data") data_dir = value();
    else if (a == "--mnist") mnist = value();
    else return false;
    return true;
  });
  const auto sets = qnas::examples::load_training_data(cli, data_dir, mnist, full, 4000);
  if (!sets) return qnas::examples::skipped_status;
  const bool fashion = sets->fashion;
  const data::dataset& train_images = sets->train;
  const data::dataset& validation = sets->validation;
  std::cout << sets->source << "\n";
  const std::size_t epochs = full ? 8 : 3;
  std::cout << "train " << train_images.size() << " images, validation " << validation.size() << ", "
            << epochs << " epoch(s)" << (fashion && full ? ", test 10,000 at the end" : "") << "\n";
  const data::dataset* report_test = fashion && full ? &sets->test : nullptr;

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    std::cout << (ok ? "ok:   " : "FAIL: ") << what << "\n";
    failures += !ok;
  };
  const result f32 = train_and_validate<float_net>("float32", train_images, validation, report_test, epochs);
  const result q8 = train_and_validate<q8_net>("8-bit QAT", train_images, validation, report_test, epochs);
  if (!full) {
    const double floor = fashion ? 70.0 : 85.0;
    check(f32.validation >= floor, "float32 reduced run >= " + std::to_string(static_cast<int>(floor)) + "% (chance is 10%)");
    check(q8.validation >= floor, "8-bit QAT reduced run >= " + std::to_string(static_cast<int>(floor)) + "%");
    return failures ? 1 : 0;
  }
  const result w4 = train_and_validate<w4_net>("4-bit weights", train_images, validation, report_test, epochs);
  // The claim is on the test set for Fashion-MNIST, on the validation split for MNIST (whose
  // test set is all the data this mode has).
  auto claimed = [&](const result& r) { return fashion ? r.test : r.validation; };
  const std::string on = fashion ? " (test set)" : " (validation)";
  if (fashion) check(claimed(f32) >= 89.0, "float32 >= 89.0% after 8 epochs" + on);
  else check(claimed(f32) >= 96.0, "float32 >= 96.0% after 8 epochs" + on);
  check(claimed(q8) >= claimed(f32) - 0.5, "8-bit QAT within 0.5 points of float32" + on);
  check(claimed(w4) >= claimed(f32) - 2.0, "4-bit weights within 2 points of float32" + on);
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("05_train_mnist", [&] { return run(argc, argv); });
}
