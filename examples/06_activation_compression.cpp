// Example 6: train the reference CNN on Fashion-MNIST with its saved activations stored compressed.
//
// Every layer that keeps an activation for backward (conv and dense inputs, relu inputs, the
// images) keeps it in an activation_store instead; backward sees only what the store gives
// back. Three runs from the same initial weights and batch order:
//   float32    no compression (the baseline)
//   fixed      bfp<4,16> (msfp12) + zero mask + run-length coding, for every saved activation
//   adaptive   starts every layer at bfp<2,16>; every 10 steps each layer measures the error of
//              its output recomputed from the stored input against the true output (normalized
//              MSE) and the policy widens (> 2%) or tightens (< 0.2%) along
//              bfp 2 -> 3 -> 4 -> 6 -> 8 bits -> float32
//
// Data: Fashion-MNIST as in example 05 (--data DIR, else $QNAS_DATA, else the Debian package's
// folder; 54,000 train / 6,000 validation, the 10,000 test images evaluated once at the end), or
// with --mnist DIR the MNIST test set split 8,000 / 2,000.
//
//   06_activation_compression          reduced CI mode: 2 epochs on 4,000 training images;
//                                      checks >= 4x fewer activation bytes for fixed, that the
//                                      adaptive policy widened from 2 bits, and accuracy
//                                      within 2 (fixed) / 3 (adaptive) points of float32
//   06_activation_compression --full   the claim: 8 epochs on all training images; fixed within
//                                      0.5 points of float32 with >= 4x fewer bytes, adaptive
//                                      within 1 point (test set for Fashion-MNIST, validation
//                                      for MNIST)
//
// Compression enters the layers through train::compressed_activations: every layer that
// accepts a saver keeps its input in an activation_store (conv and dense keep no im2col copy,
// relu recomputes its output from the stored input), and the network runs memory-saving
// training, so float outputs and gradients live only while the next layer needs them.
// bench/bench_train_memory measures the peak memory this saves.
//
//   --data DIR                         the Fashion-MNIST folder
//   --mnist DIR                        MNIST instead
//
// Exits 1 when a check fails or with the reason when the data cannot be read (a --data or --mnist
// DIR that does not hold the data set, a truncated file), 2 on a command-line mistake; skips
// (exit 77, with the apt-get line that installs the data) when Fashion-MNIST is not found and no
// --data or --mnist was given.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "qnas/data/dataset.hpp"
#include "qnas/data/idx.hpp"
#include "qnas/formats/bfp.hpp"
#include "qnas/nn.hpp"
#include "qnas/train/adaptive_compression.hpp"
#include "qnas/train/compressed_training.hpp"
#include "qnas/train/optimizer.hpp"
#include "qnas/train/trainer.hpp"

#include "search_cli.hpp"

using namespace qnas;

namespace {

/// The reference CNN of example 5 (28x28x1 -> conv 3x3/2 16 -> relu -> conv 3x3/2 32 -> relu ->
/// conv 3x3/2 64 -> relu -> flatten -> dense 10), built at run time.
std::unique_ptr<nn::sequential> build(std::uint64_t seed) {
  auto net = std::make_unique<nn::sequential>(nn::tensor_shape{28, 28, 1});
  const auto same = nn::padding::same;
  net->emplace<nn::conv2d_layer>(16, 3, 2, same);
  net->emplace<nn::relu_layer>();
  net->emplace<nn::conv2d_layer>(32, 3, 2, same);
  net->emplace<nn::relu_layer>();
  net->emplace<nn::conv2d_layer>(64, 3, 2, same);
  net->emplace<nn::relu_layer>();
  net->emplace<nn::flatten_layer>();
  net->emplace<nn::dense_layer>(10);
  std::mt19937_64 init(seed);
  net->initialize(init);
  return net;
}

/// How one run compresses: none (float32), one fixed format, or a policy over a ladder.
struct compression_plan {
  const train::activation_codec* codec = nullptr;  // null: plain float32 training
  train::lossless_options lossless{};
  train::adaptive_compression* policy = nullptr;
  const xt::xarray<float>* probe_batch = nullptr;  // what the policy's metric is measured on
  std::size_t probe_every = 10;
};

/// After each step: count the bytes held; in adaptive runs, probe every few steps, feed the
/// policy and let its decisions reach the stores.
struct account {
  train::compressed_activations* saved;
  const compression_plan* plan;
  train::activation_bytes* over_training;
  void on_batch_end(const train::batch_stats& s) {
    *over_training += saved->bytes();
    if (plan->policy == nullptr || s.step % plan->probe_every != 0) return;
    const std::vector<double> metric = saved->probe(*plan->probe_batch);
    for (std::size_t i = 0; i < metric.size(); ++i) plan->policy->observe(s.step, i, metric[i]);
    plan->policy->apply(saved->stores());
  }
};

/// Validation accuracy after the last epoch and, when a test set is given, test accuracy (both %).
struct result {
  double validation = 0.0;
  double test = 0.0;
};

result train_run(const char* label, const compression_plan& plan, const data::dataset& tr, const data::dataset& va,
                 const data::dataset* test, std::size_t epochs, train::activation_bytes* over_training = nullptr) {
  auto net = build(/*seed=*/3);
  train::adam opt({.learning_rate = 1e-3f});
  train::trainer t(*net, opt);
  const train::fit_options o{.epochs = epochs, .batch_size = 64, .seed = 11};
  const auto start = std::chrono::steady_clock::now();
  double accuracy = 0.0;
  if (plan.codec == nullptr) {
    accuracy = 100.0 * t.fit(tr, &va, o).val_accuracy;
  } else {
    train::compressed_activations saved(*net, *plan.codec, plan.lossless);
    if (plan.policy)
      for (std::size_t i = 0; i < saved.size(); ++i) plan.policy->set_layer_name(i, saved.names()[i]);
    accuracy = 100.0 * t.fit(tr, &va, o, account{&saved, &plan, over_training}).val_accuracy;
    std::cout << label << ": activation bytes of the last step:\n" << saved.memory();
    std::cout << "  over all steps: " << over_training->stored << " bytes for " << over_training->float32()
              << " float32 bytes (" << over_training->ratio() << "x fewer)\n";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result r{accuracy, 0.0};
  std::cout << label << ": validation accuracy " << accuracy << "%";
  if (test != nullptr) {
    r.test = 100.0 * train::evaluate(*net, *test).accuracy;  // inference: nothing is saved
    std::cout << ", test accuracy " << r.test << "%";
  }
  std::cout << ", " << seconds << " s\n";
  return r;
}

int run(int argc, char** argv) {
  bool full = false;
  std::filesystem::path data_dir, mnist;
  const qnas::examples::cli_info cli{"06_activation_compression",
                                     "06_activation_compression [--full] [--data DIR | --mnist DIR]"};
  qnas::examples::parse_cli(argc, argv, cli, [&](const std::string& a, const qnas::examples::cli_value& value) {
    if (a == "--full") full = true;
    else if (a == "--data") data_dir = value();
    else if (a == "--mnist") mnist = value();
    else return false;
    return true;
  });
  const auto sets = qnas::examples::load_training_data(cli, data_dir, mnist, full, 4000);
  if (!sets) return qnas::examples::skipped_status;
  const std::size_t epochs = full ? 8 : 2;
  std::cout << sets->source << "\ntrain " << sets->train.size() << " images, validation " << sets->validation.size()
            << ", " << epochs << " epoch(s)" << (sets->fashion && full ? ", test 10,000 at the end" : "") << "\n";
  const data::dataset* test = sets->fashion && full ? &sets->test : nullptr;

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    std::cout << (ok ? "ok:   " : "FAIL: ") << what << "\n";
    failures += !ok;
  };

  const result f32 = train_run("float32", compression_plan{}, sets->train, sets->validation, test, epochs);

  const train::activation_codec msfp = train::activation_codec::of<msfp12>();
  const train::lossless_options lossless{true, train::entropy_coder::run_length, 1};
  train::activation_bytes fixed_bytes, adaptive_bytes;
  const result fx = train_run("fixed bfp<4,16> + lossless", compression_plan{&msfp, lossless}, sets->train,
                              sets->validation, test, epochs, &fixed_bytes);

  auto ladder = train::format_ladder::of<bfp<2, 16>, bfp<3, 16>, bfp<4, 16>, bfp<6, 16>, bfp<8, 16>>();
  train::adaptive_options ao;
  ao.widen_above = 0.02;
  ao.tighten_below = 0.002;
  ao.widen_patience = 2;
  ao.tighten_patience = 5;
  train::adaptive_compression policy(ladder, 7, /*start=*/0, ao);
  policy.on_change([](const train::adaptation_event& e) {
    std::cout << "  step " << e.step << " " << e.layer_name << ": " << e.from << " -> " << e.to << " (" << e.reason
              << ")\n";
  });
  // The probe: the first 64 training images, the same at every probe step.
  const data::dataset probe_set = data::head(sets->train, 64);
  const xt::xarray<float> probe_batch = probe_set.images;
  const result ad = train_run("adaptive from bfp<2,16>", compression_plan{&ladder[0], lossless, &policy, &probe_batch},
                              sets->train, sets->validation, test, epochs, &adaptive_bytes);
  std::size_t widenings = 0;
  for (const auto& e : policy.events()) widenings += e.to_rung > e.from_rung ? 1 : 0;

  // The claim is on the test set for Fashion-MNIST, on the validation split for MNIST.
  auto claimed = [&](const result& r) { return test != nullptr ? r.test : r.validation; };
  const double floor = sets->fashion ? 70.0 : 85.0;
  check(f32.validation >= floor, "float32 >= " + std::to_string(static_cast<int>(floor)) + "% (chance is 10%)");
  check(fixed_bytes.ratio() >= 4.0, "fixed policy stores >= 4x fewer activation bytes than float32");
  check(widenings > 0, "adaptive policy widened from 2-bit mantissas");
  if (!full) {
    check(fx.validation >= f32.validation - 2.0, "fixed policy within 2 points of float32 (reduced run)");
    check(ad.validation >= f32.validation - 3.0, "adaptive policy within 3 points of float32 (reduced run)");
  } else {
    const std::string on = test != nullptr ? " (test set)" : " (validation)";
    check(claimed(fx) >= claimed(f32) - 0.5, "fixed policy within 0.5 points of float32" + on);
    check(claimed(ad) >= claimed(f32) - 1.0, "adaptive policy within 1 point of float32" + on);
  }
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("06_activation_compression", [&] { return run(argc, argv); });
}
