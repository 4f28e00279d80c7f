// Example 10: automated per-layer precision under a hard bit budget, distillation fine-tuning from the float teacher, export of the chosen model.
//
// Deeplite's "automated precision configuration" in one program. A float32 teacher (the
// reference CNN: 28x28x1 -> conv 3x3/2 16 -> relu -> conv 3x3/2 32 -> relu -> conv 3x3/2 64 ->
// relu -> flatten -> dense 10) is trained first. A REINFORCE policy then picks, per layer, the
// weight precision (fixed point 8/4/2-bit, po2 4-bit, ternary, bfp<4,16>) and the activation
// precision (relu fixed point 8/4/2-bit, relu po2 4-bit, bfp<4,16>) from that supported list.
// A hard budget on the bits of the parameters (energy/size.hpp), 40 % of the 8-bit model's, is
// checked on every candidate BEFORE training: a candidate over budget is reported, rewarded 0
// and never trained. Each
// accepted candidate starts from the teacher's weights and is fine-tuned briefly with the
// knowledge-distillation loss against the teacher's logits (train/loss.hpp); its reward is its
// validation accuracy. The best configuration is exported with nn/export.hpp (manifest + blob
// packed in each layer's own format), read back from disk, and its outputs on the whole
// validation set are compared bit for bit with the in-memory model.
//
// Usage: 10_precision_config [--mnist DIR] [--out DIR] [--resume] [--full] [--trials N] [--epochs N]
//                            [--seed N] [--threads N]   (--epochs: fine-tuning epochs per candidate, default 1)
// Default (ctest): synthetic data, 3,200 training / 800 validation images, 40 trials, one
//   fine-tuning epoch each; the teacher trains for 8 epochs.
// --mnist DIR: the MNIST test set split 8,000 / 2,000.
// --full: MNIST (--mnist DIR, else $QNAS_SHARED_DATA/mnist, else ../shared/data/mnist, else
//   10,000 synthetic images), 8,000 / 2,000, 128 trials.
// Exits non-zero unless (1) the re-loaded model's outputs equal the in-memory model's bit for
// bit, (2) the best configuration is within the bit budget and the budget rejected at least one
// candidate (it binds), (3) fine-tuning the best configuration again from its trial's seed gives
// the logged accuracy, (4) the best configuration's validation accuracy is within 3 points of the
// teacher's (2 points with --full), and (5) for that configuration, distillation fine-tuning from
// the teacher gives at least the accuracy of the teacher's weights quantized without fine-tuning.
// Writes into --out (default precision_config_out): settings.txt, log.jsonl, checkpoint.json
// (after every batch), report.txt, pareto.csv, pareto.svg (accuracy against parameter bits),
// model.json and model.bin. An --out that is not empty is refused (exit status 2) unless
// --resume continues the run in it from its checkpoint, with the options it was started with.
// Errors: the reason on stderr, exit status 1.
#include <qnas/data/batching.hpp>
#include <qnas/data/dataset.hpp>
#include <qnas/data/idx.hpp>
#include <qnas/data/synthetic.hpp>
#include <qnas/energy/qtools_compat.hpp>
#include <qnas/formats/bfp.hpp>
#include <qnas/formats/fixed_point.hpp>
#include <qnas/formats/po2.hpp>
#include <qnas/formats/ternary.hpp>
#include <qnas/nn.hpp>
#include <qnas/nn/export.hpp>
#include <qnas/search/reinforce.hpp>
#include <qnas/search/runner.hpp>
#include <qnas/search/train_evaluator.hpp>
#include <qnas/space.hpp>
#include <qnas/train/loss.hpp>
#include <qnas/train/optimizer.hpp>
#include <qnas/train/trainer.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "search_cli.hpp"

using namespace qnas;
namespace qs = qnas::search;
namespace en = qnas::energy;

namespace {

using qnas::examples::pow2;

// The supported weight precisions of a layer whose trained weights mostly lie within +-2^(S+1)
// (the teacher's ranges are printed at the start): fixed point 8/4/2-bit over [-2^(S+1), 2^(S+1)),
// po2 4-bit up to 2^(S+1), ternary {-2^S, 0, 2^S} (threshold 2^(S-1)), and bfp<4,16>, which needs no
// scale: every 16 weights share an exponent.
template <fixed_string Name, int S>
using weight_choice = type_choice<Name, fixed_point<8, S + 1>, fixed_point<4, S + 1>, fixed_point<2, S + 1>,
                                  po2<4, pow2(S + 1)>, ternary<S, pow2(S) / 2>, bfp<4, 16>>;
// The supported activation precisions after each relu: fixed point 8/4/2-bit over [0, 8), [0, 4)
// and [0, 2), po2 4-bit up to 8, and bfp<4,16> along the channels.
template <fixed_string Name>
using activation_choice = type_choice<Name, fixed_relu<8, 3>, fixed_relu<4, 2>, fixed_relu<2, 1>, relu_po2<4, 8.0>,
                                      bfp<4, 16>>;

using precision_space =
    space<weight_choice<"conv1.w", -1>, activation_choice<"conv1.a">, weight_choice<"conv2.w", -2>,
          activation_choice<"conv2.a">, weight_choice<"conv3.w", -3>, activation_choice<"conv3.a">,
          weight_choice<"dense.w", -3>>;

/// Every format the space can choose (each decision's alternatives), for the exporter's registry.
template <class>
struct registry_of;
template <class... Ds>
struct registry_of<space<Ds...>> {
  static nn::format_registry make() {
    nn::format_registry r;
    auto add_all = [&](auto alternatives) {
      boost::hana::unpack(alternatives, [&](auto... tags) { (r.add<typename decltype(tags)::type>(), ...); });
    };
    (add_all(Ds::alternatives), ...);
    return r;
  }
};

constexpr std::array<const char*, 4> layer_names = {"conv1", "conv2", "conv3", "dense"};
constexpr std::array<std::size_t, 3> filters = {16, 32, 64};

/// The reference CNN with the given quantizers: weights (and biases) of conv1..3 and dense, and
/// the outputs of the three relus. All identity quantizers: the float teacher.
std::unique_ptr<nn::sequential> build_network(const std::array<quantizer, 4>& w, const std::array<quantizer, 3>& a) {
  auto net = std::make_unique<nn::sequential>(nn::image(28, 28, 1));
  for (std::size_t l = 0; l < 3; ++l) {
    net->emplace<nn::conv2d_layer>(filters[l], 3, 2, nn::padding::same, nn::layer_formats{w[l], w[l], {}});
    net->emplace<nn::relu_layer>().set_output_quantizer(a[l]);
  }
  net->emplace<nn::flatten_layer>();
  net->emplace<nn::dense_layer>(10, nn::layer_formats{w[3], w[3], {}});
  return net;
}

std::unique_ptr<nn::sequential> build(const candidate& c) {
  const precision_space s;
  return build_network({quantizer_of<"conv1.w">(s, c), quantizer_of<"conv2.w">(s, c), quantizer_of<"conv3.w">(s, c),
                        quantizer_of<"dense.w">(s, c)},
                       {quantizer_of<"conv1.a">(s, c), quantizer_of<"conv2.a">(s, c), quantizer_of<"conv3.a">(s, c)});
}

std::unique_ptr<nn::sequential> build_teacher() { return build_network({}, {}); }

/// Distillation loss against the teacher's logits of the images in the batch (precomputed once
/// for the whole training set).
struct distill_loss {
  std::shared_ptr<const xt::xarray<float>> teacher_logits;
  train::distillation_options options;
  mutable xt::xarray<float> t;  // the batch's teacher logits; each trainer holds its own copy

  float operator()(const xt::xarray<float>& z, std::span<const data::label_t> y, xt::xarray<float>& g,
                   const data::batch& b) const {
    const std::size_t k = teacher_logits->shape()[1];
    if (t.dimension() != 2 || t.shape()[0] != b.size()) t = xt::zeros<float>({b.size(), k});
    for (std::size_t i = 0; i < b.size(); ++i)
      std::memcpy(t.data() + i * k, teacher_logits->data() + b.indices[i] * k, k * sizeof(float));
    return train::distillation_loss(z, t, y, options, g);
  }
};

enum class fine_tuning { distillation, cross_entropy, none };

/// What every evaluation shares (read-only): the data, the teacher's weights and logits.
struct shared_state {
  data::dataset train, validation;
  std::vector<xt::xarray<float>> teacher_weights;  // in parameters() order
  std::shared_ptr<const xt::xarray<float>> teacher_logits;
  std::size_t epochs = 1;
  float learning_rate = 5e-4f;
  train::distillation_options distillation{.temperature = 4.0f, .alpha = 0.9f};
  nn::bridge_options bridge{.input_format = info_of<uint8>(), .accumulator_bits = 0, .max_accumulator_bits = 16};
  en::energy_options energy{en::memory_kind::sram, en::memory_kind::sram, 134217728.0, false};
};

/// The candidate's network with the teacher's weights, fine-tuned as asked; every random draw
/// (batch order) comes from `seed`, so the same call gives the same network on any thread.
std::unique_ptr<nn::sequential> fine_tuned(const shared_state& st, const candidate& c, std::uint64_t seed, fine_tuning how) {
  auto net = build(c);
  const auto params = net->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) params[i]->value = st.teacher_weights.at(i);
  if (how == fine_tuning::none) return net;
  train::adam opt({.learning_rate = st.learning_rate});
  const train::fit_options fo{.epochs = st.epochs, .batch_size = 32, .seed = seed, .top_k = 1, .eval_batch_size = 250};
  if (how == fine_tuning::distillation) {
    train::trainer t(*net, opt, train::no_schedule{}, distill_loss{st.teacher_logits, st.distillation, {}});
    t.fit(st.train, nullptr, fo);
  } else {
    train::trainer t(*net, opt);
    t.fit(st.train, nullptr, fo);
  }
  return net;
}

double accuracy(nn::sequential& net, const data::dataset& d) {
  const double a = train::evaluate(net, d, 250, 1).accuracy;
  return std::isfinite(a) ? a : 0.0;  // a diverged fine-tuning is a bad candidate, not a broken search
}

/// Parameter bits (the budget's metric), energy and the other static costs, without training.
qs::metrics costs(const shared_state& st, nn::sequential& net) {
  return qs::network_costs<en::qtools_compat>(net, st.bridge, st.energy);
}

/// The search's evaluator: fine-tune from the teacher with distillation, measure validation accuracy.
struct distillation_evaluator {
  std::shared_ptr<const shared_state> st;
  qs::metrics operator()(const candidate& c, const qs::evaluation_context& ctx) const {
    const auto t0 = std::chrono::steady_clock::now();
    auto net = fine_tuned(*st, c, ctx.seed, fine_tuning::distillation);
    qs::metrics m = costs(*st, *net);
    m.set("accuracy", accuracy(*net, st->validation));
    m.set("train_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return m;
  }
};

/// One line per trial: trained (bits, accuracy) or rejected before training (why).
struct trial_printer {
  double budget;
  void on_trial_end(const qs::trial_record& r, const qs::search_progress& p) const {
    char buf[320];
    if (r.rejected)
      std::snprintf(buf, sizeof buf, "trial %3zu  rejected before training: %s (%.0f%% of the budget)\n", r.index,
                    r.rejected->detail.c_str(), 100.0 * r.values.at("parameter_bits") / budget);
    else
      std::snprintf(buf, sizeof buf, "trial %3zu  %6.0f parameter bits (%5.1f%% of the budget)  acc %.4f  %5.1f s  best %.4f (trial %zu)\n",
                    r.index, r.values.at("parameter_bits"), 100.0 * r.values.at("parameter_bits") / budget,
                    r.values.at("accuracy"), r.wall_s, p.best_reward.value_or(0.0), p.best_trial.value_or(0));
    std::cout << buf << std::flush;
  }
};

/// Whether two networks give bit-identical outputs on every validation batch.
bool same_outputs(nn::sequential& a, nn::sequential& b, const data::dataset& d, std::size_t& compared) {
  data::batcher batches(d, {.batch_size = 250, .shuffle = false, .drop_last = false, .seed = 0});
  xt::xarray<float> x;
  compared = 0;
  while (const data::batch* mb = batches.next()) {
    x = mb->images;
    const xt::xarray<float>& ya = a.forward(x, false);
    const xt::xarray<float>& yb = b.forward(x, false);
    if (ya.shape() != yb.shape() || std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)) != 0) return false;
    compared += ya.size();
  }
  return true;
}

int run(int argc, char** argv) {
  const auto set = qnas::examples::parse_search_cli(
      argc, argv, "10_precision_config",
      "10_precision_config [--mnist DIR] [--out DIR] [--resume] [--full] [--trials N] [--epochs N] [--seed N]\n"
      "                           [--threads N]",
      "precision_config_out");
  const auto t_start = std::chrono::steady_clock::now();
  const std::size_t trials = set.trials ? set.trials : set.full ? 128 : 40;
  // Parallelism is across trials; one BLAS thread each avoids oversubscribing the cores.
  if (set.threads > 1) nn::set_blas_threads(1);

  // ---- data -----------------------------------------------------------------------------------
  const std::filesystem::path mnist = qnas::examples::find_mnist(set);
  const bool full_size = set.full || !mnist.empty();
  // Before anything slow: a rerun must not overwrite a search, and a resumed one must search the
  // same way (the trial budget may grow; the batch is --threads).
  const qnas::examples::run_settings settings = {
      {"--mnist", mnist.empty() ? "synthetic" : mnist.string()}, {"--full", set.full ? "yes" : "no"},
      {"--epochs", std::to_string(set.epochs ? set.epochs : shared_state{}.epochs)},
      {"--threads", std::to_string(set.threads)}, {"--seed", std::to_string(set.seed)}};
  qnas::examples::check_out(set, set.out, set.resume, settings);
  const auto [all, source] = qnas::examples::load_proxy_data(mnist, full_size ? 10000u : 4000u);
  auto parts = data::split(all, all.size() / 5, 11);
  auto st = std::make_shared<shared_state>();
  if (set.epochs) st->epochs = set.epochs;
  st->train = std::move(parts.train);
  st->validation = std::move(parts.validation);
  qnas::examples::print_blas_advice();
  std::cout << "data: " << source << ": " << st->train.size() << " training / " << st->validation.size()
            << " validation images; " << trials << " trials, " << set.threads << " thread(s), seed " << set.seed << "\n";

  // ---- the float teacher ----------------------------------------------------------------------
  const std::size_t teacher_epochs = 8;
  auto teacher = build_teacher();
  {
    std::mt19937_64 init(qs::trial_seed(set.seed, 1u << 20));
    teacher->initialize(init);
    train::adam opt({.learning_rate = 2e-3f});
    train::trainer t(*teacher, opt);
    t.fit(st->train, nullptr, {.epochs = teacher_epochs, .batch_size = 32, .seed = set.seed, .top_k = 1});
  }
  const double teacher_acc = accuracy(*teacher, st->validation);
  for (nn::parameter* p : teacher->parameters()) st->teacher_weights.push_back(p->value);
  {
    xt::xarray<float> x = st->train.images;
    st->teacher_logits = std::make_shared<const xt::xarray<float>>(teacher->forward(x, false));
  }
  std::cout << "\nteacher (float32, " << teacher_epochs << " epochs):\n" << *teacher;
  std::printf("teacher validation accuracy %.4f\n", teacher_acc);
  std::cout << "teacher weight ranges (the fixed-point, po2 and ternary scales of the space are set from these):\n";
  {
    const auto params = teacher->parameters();
    for (std::size_t l = 0; l < 4; ++l) {
      const auto& w = params[2 * l]->value;
      double mx = 0, ss = 0;
      for (float v : w) mx = std::max(mx, std::abs(static_cast<double>(v))), ss += static_cast<double>(v) * v;
      std::printf("  %-6s max |w| %.3f  rms %.3f\n", layer_names[l], mx, std::sqrt(ss / static_cast<double>(w.size())));
    }
  }

  // ---- the bit budget ---------------------------------------------------------------------------
  const auto& desc = describe<precision_space>();
  const candidate int8_candidate({0, 0, 0, 0, 0, 0, 0});  // fixed 8-bit everywhere
  auto int8_net = build(int8_candidate);
  const double int8_bits = costs(*st, *int8_net).at("parameter_bits");
  constexpr double budget_share = 0.40;
  const double budget = budget_share * int8_bits;
  std::printf("\nbit budget: parameter bits <= %.0f (%.0f%% of the %.0f bits of the 8-bit model), checked before training\n",
              budget, 100 * budget_share, int8_bits);

  // ---- search -----------------------------------------------------------------------------------
  qnas::examples::keep_settings(set.out, settings);
  qs::runner_options ro;
  ro.max_trials = trials;
  ro.threads = set.threads;
  ro.batch_size = set.threads;
  ro.evaluation_seed = set.seed;
  ro.log_path = set.out / "log.jsonl";
  ro.checkpoint_path = set.out / "checkpoint.json";
  ro.checkpoint_every = 1;  // after every batch: a kill loses at most the trainings in flight
  ro.resume = set.resume;
  ro.estimate = [st](const candidate& c) {
    auto net = build(c);
    return costs(*st, *net);
  };
  ro.constraints.at_most("parameter_bits", budget);
  ro.rejected_reward = 0.0;  // the policy learns to stay inside the budget
  ro.pareto_axes = {{"accuracy", qs::direction::maximize}, {"parameter_bits", qs::direction::minimize}};
  qs::reinforce strategy(desc, {.learning_rate = 0.1, .baseline_momentum = 0.8}, set.seed);
  std::cout << "\nsearch: REINFORCE over " << desc.num_decisions() << " decisions (per-layer weight and activation "
            << "precision), reward = validation accuracy after distillation fine-tuning ("
            << st->epochs << " epoch, T = " << st->distillation.temperature << ", alpha = " << st->distillation.alpha
            << ")\n";
  const qs::search_result res = qs::run_search(strategy, distillation_evaluator{st}, qs::maximize_metric{}, ro,
                                               trial_printer{budget}, qs::progress_printer{&std::cout, 8});
  qnas::examples::stop_if_interrupted(res.stop_signal, set.out);
  res.write_report_files(set.out / "");

  // ---- the best configuration ---------------------------------------------------------------------
  // The most accurate fine-tuned trial; among equally accurate ones the smallest (the runner's
  // best is the first of them, which a later, smaller one may dominate).
  const qs::trial_record* best_ptr = &res.best_trial();
  for (const auto& r : res.history)
    if (!r.rejected && r.values.at("accuracy") == best_ptr->values.at("accuracy") &&
        r.values.at("parameter_bits") < best_ptr->values.at("parameter_bits"))
      best_ptr = &r;
  const qs::trial_record& best = *best_ptr;
  const std::uint64_t best_seed = qs::trial_seed(set.seed, best.index);
  auto best_net = fine_tuned(*st, best.cand, best_seed, fine_tuning::distillation);
  const double best_acc = accuracy(*best_net, st->validation);
  const double best_bits = costs(*st, *best_net).at("parameter_bits");
  auto ptq_net = fine_tuned(*st, best.cand, best_seed, fine_tuning::none);
  const double ptq_acc = accuracy(*ptq_net, st->validation);
  auto ce_net = fine_tuned(*st, best.cand, best_seed, fine_tuning::cross_entropy);
  const double ce_acc = accuracy(*ce_net, st->validation);

  std::cout << "\nbest configuration (trial " << best.index << "):\n";
  std::printf("  %-6s %-30s %s\n", "layer", "weights", "activations");
  for (std::size_t l = 0; l < 4; ++l) {
    const std::size_t wi = 2 * l;
    const std::string w = desc.decisions()[wi].labels[best.cand[wi]];
    const std::string a = l < 3 ? desc.decisions()[wi + 1].labels[best.cand[wi + 1]] : std::string("- (logits)");
    std::printf("  %-6s %-30s %s\n", layer_names[l], w.c_str(), a.c_str());
  }
  std::cout << *best_net;

  // ---- export, re-load, compare ---------------------------------------------------------------------
  const nn::format_registry formats = registry_of<precision_space>::make();
  const std::filesystem::path manifest = set.out / "model.json";
  const nn::export_summary ex = nn::export_model(*best_net, manifest, formats);
  auto loaded = nn::load_model(manifest, formats);
  std::size_t compared = 0;
  const bool bit_exact = same_outputs(*best_net, *loaded, st->validation, compared);
  const double loaded_acc = accuracy(*loaded, st->validation);
  const double loaded_bits = costs(*st, *loaded).at("parameter_bits");

  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::ostringstream summary;
  char buf[512];
  std::snprintf(buf, sizeof buf, "teacher (float32): validation accuracy %.4f, %.0f parameter bits (%zu bytes as float32)\n",
                teacher_acc, 32.0 * static_cast<double>(ex.elements), ex.float32_bytes);
  summary << buf;
  std::snprintf(buf, sizeof buf, "best (trial %zu): validation accuracy %.4f (%+.2f points vs the teacher), %.0f parameter bits = "
                "%.1f%% of the budget, %.1f%% of the 8-bit model, %.1f%% of float32\n",
                best.index, best_acc, 100 * (best_acc - teacher_acc), best_bits, 100 * best_bits / budget,
                100 * best_bits / int8_bits, 100 * best_bits / (32.0 * static_cast<double>(ex.elements)));
  summary << buf;
  std::snprintf(buf, sizeof buf, "same configuration: teacher weights quantized, no fine-tuning %.4f; cross-entropy fine-tuning "
                "%.4f; distillation fine-tuning %.4f\n", ptq_acc, ce_acc, best_acc);
  summary << buf;
  std::snprintf(buf, sizeof buf, "search: %zu trials, %zu rejected before training by the bit budget, %zu fine-tuned; %.1f s\n",
                res.history.size(), res.rejected, res.history.size() - res.rejected, res.elapsed_s);
  summary << buf;
  {
    // Where the policy ended: its most probable configuration (information, not a check).
    const candidate mode = strategy.argmax();
    auto mode_net = build(mode);
    const double mode_bits = costs(*st, *mode_net).at("parameter_bits");
    std::snprintf(buf, sizeof buf, "policy's most probable configuration: %.0f parameter bits (%s the budget): %s\n",
                  mode_bits, mode_bits <= budget ? "within" : "over", to_string(mode, desc).c_str());
    summary << buf;
  }
  std::snprintf(buf, sizeof buf, "export: %s %zu bytes + %s %zu bytes; the packed weights take %.1f%% of their %zu float32 bytes "
                "(%.2fx smaller)\n", manifest.filename().c_str(), ex.manifest_bytes, ex.blob.filename().c_str(),
                ex.blob_bytes, 100.0 * static_cast<double>(ex.blob_bytes) / static_cast<double>(ex.float32_bytes),
                ex.float32_bytes, static_cast<double>(ex.float32_bytes) / static_cast<double>(ex.blob_bytes));
  summary << buf;
  std::snprintf(buf, sizeof buf, "re-loaded from disk: %zu validation logits %s the in-memory model's; accuracy %.4f, %.0f parameter bits\n",
                compared, bit_exact ? "equal bit for bit to" : "DIFFER from", loaded_acc, loaded_bits);
  summary << buf;
  std::snprintf(buf, sizeof buf, "whole run %.1f s\n", wall);
  summary << buf;
  std::cout << "\n" << summary.str();
  {
    std::ofstream rep(set.out / "report.txt");
    rep << "data: " << source << ", " << st->train.size() << " / " << st->validation.size() << " images, seed "
        << set.seed << "\n";
    std::snprintf(buf, sizeof buf, "bit budget: parameter bits <= %.0f (%.0f%% of the 8-bit model's %.0f)\n", budget,
                  100 * budget_share, int8_bits);
    rep << buf << "best configuration: " << to_string(best.cand, desc) << "\n" << summary.str() << "\n";
    res.print_report(rep);
  }
  std::cout << "files: " << (set.out / "log.jsonl").string() << ", " << (set.out / "checkpoint.json").string() << ", "
            << (set.out / "report.txt").string() << ", " << (set.out / "pareto.csv").string() << ", "
            << (set.out / "pareto.svg").string() << ", " << manifest.string() << ", " << ex.blob.string() << "\n";

  // ---- the checks ----------------------------------------------------------------------------------
  const double margin = set.full ? 0.02 : 0.03;
  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    std::cout << (ok ? "ok:   " : "FAIL: ") << what << "\n";
    failures += !ok;
  };
  check(bit_exact && loaded_acc == best_acc && loaded_bits == best_bits,
        "the model re-loaded from model.json + model.bin gives the in-memory model's outputs bit for bit");
  check(best_bits <= budget && best.values.at("parameter_bits") <= budget, "the best configuration is within the bit budget");
  check(res.rejected > 0, "the budget binds: it rejected candidates before training");
  check(best_acc == best.values.at("accuracy"), "re-running the best trial's fine-tuning reproduces its accuracy");
  std::snprintf(buf, sizeof buf, "the best configuration keeps validation accuracy within %.0f points of the teacher", 100 * margin);
  check(best_acc >= teacher_acc - margin, buf);
  check(best_acc >= ptq_acc, "distillation fine-tuning from the teacher is at least as good as no fine-tuning");
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("10_precision_config", [&] { return run(argc, argv); });
}
