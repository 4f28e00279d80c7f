// Example 9: quantization-aware NAS with an LSTM controller over topology, BFP precisions and accelerator parameters.
//
// One heterogeneous decision list, sampled step by step by an autoregressive LSTM controller
// (search/lstm_controller.hpp) and trained by REINFORCE:
//   topology      conv.layers in {1, 2, 3}; filters of each conv layer
//   quantization  BFP mantissa bits (sign included, blocks of 16, 8-bit shared exponent) of the
//                 weights and of the activations of each conv layer, and of the dense head's
//                 weights: bfp<M, 16> with M in {3, 4, 5, 8}
//   hardware      PE array rows and columns in {4, 8, 16, 32}; on-chip buffer in {2, 8, 32, 128} KiB
// Decisions of the conv layers beyond conv.layers are sampled but unused: their choices earn no
// credit or blame, so only the used ones are shaped by the rewards. The network of a candidate is
//   28x28x1 -> [conv 3x3/2 -> relu -> BFP activation] x conv.layers -> flatten -> dense 10
// trained on a proxy task (search/train_evaluator.hpp). On the chosen accelerator it is priced by
//   latency   the roofline of energy/latency.hpp (model_cycles): per layer max(compute, DRAM)
//             cycles; PEs run 8x8-bit multipliers packing two 4-bit MACs (bfp<3|4,16> operands),
//             a layer whose tensors overflow the buffer streams them through DRAM; 1 GHz clock,
//             128 DRAM bits per cycle (the library's default accelerator)
//   energy    Horowitz 45 nm (energy/horowitz_45nm.hpp): MACs, plus every tensor read and write
//             from an SRAM the size of the chosen buffer (a bigger buffer costs more per access),
//             plus the DRAM traffic of the roofline at 20.3 pJ per bit
//   area      PE array + buffer at 45 nm: a PE is one 8-bit multiplier (282 um^2) and one 32-bit
//             accumulator adder (137 um^2), Horowitz ISSCC 2014's area figures; the buffer is
//             0.346 um^2 per bit cell (Intel 45 nm 6T SRAM, IEDM 2007) at 50 % array efficiency
//             (decoders, sense amplifiers), 0.692 um^2 per bit. Arithmetic and storage only:
//             wiring, control and the vector unit are left out, so it is a lower bound.
// Reward (higher is better), each cost relative to a reference design (2 conv layers of 16 and 32
// filters, bfp<8,16> everywhere, 16x16 PEs, 32 KiB buffer):
//   reward = accuracy - 0.05 log2(T / T_ref) - 0.025 log2(E / E_ref) - 0.025 log2(A / A_ref)
// A design twice as slow must be 5 accuracy points better to tie, as with MnasNet's soft latency
// exponent (-0.07 ln 2 = 0.049 of the accuracy per doubling); energy and area together (the
// hardware cost) weigh as much as latency. Log ratios make every halving worth the same, however
// small the design already is: the costs span two orders of magnitude over this space.
//
// The claim checked: the controller learns. The mean reward of the last third of the trials is
// above that of the first third (a policy that stayed uniform would not improve on average).
//
// Usage: 09_qnas_lstm_controller [--mnist DIR] [--out DIR] [--resume] [--full] [--trials N]
//                                [--epochs N] [--threads N] [--seed N]
// Default (ctest): synthetic data, 1,500 training / 500 validation images, 120 trials of 1 epoch
//   (batches of 16), stopping early if the search passes 75 s on a busy machine.
// --full: MNIST (--mnist DIR, else $QNAS_SHARED_DATA/mnist, else ../shared/data/mnist) split
//   8,000 / 2,000, 240 trials of 1 epoch, within 14 minutes.
// --mnist DIR alone: MNIST with the default trial count. --trials, --epochs override either mode;
// --seed seeds the controller and the trainings; --threads trains that many candidates at once
// (the same seed gives the same trials on any number of threads).
// Writes into --out (default qnas_lstm_out): settings.txt, log.jsonl, checkpoint.json (after
// every batch), report.txt, pareto.csv, pareto.svg (accuracy vs latency), learning.svg (mean
// reward per batch of trials) and latency.svg (mean latency per batch). An --out that is not
// empty is refused (exit status 2) unless --resume continues the run in it from its checkpoint,
// with the options it was started with. Errors: the reason on stderr, exit status 1.
#include <qnas/data/dataset.hpp>
#include <qnas/data/idx.hpp>
#include <qnas/data/synthetic.hpp>
#include <qnas/energy/estimate.hpp>
#include <qnas/energy/horowitz_45nm.hpp>
#include <qnas/energy/latency.hpp>
#include <qnas/nn/energy.hpp>
#include <qnas/formats/bfp.hpp>
#include <qnas/formats/fixed_point.hpp>
#include <qnas/io/svg_plot.hpp>
#include <qnas/nn.hpp>
#include <qnas/search/lstm_controller.hpp>
#include <qnas/search/runner.hpp>
#include <qnas/search/train_evaluator.hpp>
#include <qnas/space.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "search_cli.hpp"

using namespace qnas;
namespace qs = qnas::search;
namespace en = qnas::energy;

namespace {

// ---- the decision list ----------------------------------------------------------------------------

// BFP with M-bit sign-magnitude mantissas in blocks of 16 (M = 4 is MSFP12, M = 8 is MSFP16).
template <fixed_string Name>
using mantissa_choice = type_choice<Name, bfp<3, 16>, bfp<4, 16>, bfp<5, 16>, bfp<8, 16>>;

using qnas_space = space<choice<"conv.layers", 1, 2, 3>,  // topology ...
                         choice<"conv1.filters", 8, 16, 24, 32>,
                         mantissa_choice<"conv1.w">, mantissa_choice<"conv1.a">,  // ... and quantization
                         choice<"conv2.filters", 16, 32, 48, 64>,
                         mantissa_choice<"conv2.w">, mantissa_choice<"conv2.a">,
                         choice<"conv3.filters", 16, 32, 48, 64>,
                         mantissa_choice<"conv3.w">, mantissa_choice<"conv3.a">,
                         mantissa_choice<"dense.w">,
                         choice<"pe.rows", 4, 8, 16, 32>, choice<"pe.cols", 4, 8, 16, 32>,  // hardware
                         choice<"buffer.kib", 2, 8, 32, 128>>;

// The reference design the costs are measured against: 2 layers of 16 and 32 filters, MSFP16
// (bfp<8,16>) everywhere, a 16x16 PE array and a 32 KiB buffer (the conv3 decisions are unused).
// Given by labels, so it stays right when alternatives are added or reordered.
candidate reference_candidate() {
  return candidate_from_json({{"conv.layers", "2"},
                              {"conv1.filters", "16"}, {"conv1.w", "bfp<8,16>"}, {"conv1.a", "bfp<8,16>"},
                              {"conv2.filters", "32"}, {"conv2.w", "bfp<8,16>"}, {"conv2.a", "bfp<8,16>"},
                              {"conv3.filters", "16"}, {"conv3.w", "bfp<8,16>"}, {"conv3.a", "bfp<8,16>"},
                              {"dense.w", "bfp<8,16>"},
                              {"pe.rows", "16"}, {"pe.cols", "16"}, {"buffer.kib", "32"}},
                             describe<qnas_space>());
}

template <fixed_string F, fixed_string W, fixed_string A>
void add_conv(nn::sequential& net, const qnas_space& s, const candidate& c) {
  const quantizer w = quantizer_of<W>(s, c);
  const auto filters = static_cast<std::size_t>(get<F>(s, c));
  net.emplace<nn::conv2d_layer>(filters, 3, 2, nn::padding::same, nn::layer_formats{w, w, {}});
  net.emplace<nn::relu_layer>().set_output_quantizer(quantizer_of<A>(s, c));
}

/// The candidate's network (the hardware decisions do not change it).
std::unique_ptr<nn::sequential> build(const candidate& c) {
  const qnas_space s;
  auto net = std::make_unique<nn::sequential>(nn::image(28, 28, 1));
  const int layers = get<"conv.layers">(s, c);
  add_conv<"conv1.filters", "conv1.w", "conv1.a">(*net, s, c);
  if (layers >= 2) add_conv<"conv2.filters", "conv2.w", "conv2.a">(*net, s, c);
  if (layers >= 3) add_conv<"conv3.filters", "conv3.w", "conv3.a">(*net, s, c);
  net->emplace<nn::flatten_layer>();
  const quantizer w = quantizer_of<"dense.w">(s, c);
  net->emplace<nn::dense_layer>(10, nn::layer_formats{w, w, {}});
  return net;
}

/// The accelerator of a candidate: its PE array and buffer on the library's default machine
/// (1 GHz, 128 DRAM bits per cycle, 8x8-bit PEs packing 1, 2 or 4-bit operands).
en::accelerator accelerator_of(const candidate& c) {
  const qnas_space s;
  en::accelerator a;
  a.pe_rows = get<"pe.rows">(s, c);
  a.pe_cols = get<"pe.cols">(s, c);
  a.buffer_bits = 8.0 * 1024 * get<"buffer.kib">(s, c);
  return a;
}

// ---- hardware figures -----------------------------------------------------------------------------

// 45 nm areas (see the header comment): a PE is an 8-bit multiplier and a 32-bit accumulator
// adder (Horowitz, ISSCC 2014); SRAM is a 0.346 um^2 6T cell at 50 % array efficiency.
constexpr double pe_area_um2 = 282.0 + 137.0;
constexpr double sram_um2_per_bit = 0.346 / 0.5;

// Model input: 8-bit pixels. Accumulators are as wide as the products and fan-in need.
const nn::bridge_options bridge{.input_format = info_of<uint8>()};

/// Latency, energy and area of a candidate's network on the candidate's accelerator.
qs::metrics hardware_costs(nn::sequential& net, const candidate& c) {
  const en::accelerator a = accelerator_of(c);
  const en::network_desc d = nn::describe_network(net, bridge);
  const en::model_latency lat = en::model_cycles(d.view(), a);
  double dram_bits = 0;
  for (std::size_t i = 0; i < d.size(); ++i) dram_bits += en::layer_cycles(d[i], a, en::role_of(i, d.size())).dram_bits;
  // On-chip traffic from an SRAM of the buffer's size; the model input and output are charged
  // there too, their DRAM crossing is in dram_bits.
  const en::energy_options eo{.parameters = en::memory_kind::sram, .activations = en::memory_kind::sram,
                              .min_sram_size = a.buffer_bits, .rd_wr_on_io = false};
  const double chip_pj = en::price_model<en::horowitz_45nm>(d.view(), eo).total_pj;
  const double dram_pj = dram_bits * en::horowitz_45nm::dram_pj_per_bit;
  const double pe_mm2 = static_cast<double>(a.pes()) * pe_area_um2 * 1e-6;
  const double buffer_mm2 = a.buffer_bits * sram_um2_per_bit * 1e-6;
  return qs::metrics{{"latency_cycles", static_cast<double>(lat.cycles)},
                     {"latency_s", lat.seconds},
                     {"supported", lat.supported ? 1.0 : 0.0},
                     {"energy_pj", chip_pj + dram_pj},
                     {"dram_energy_pj", dram_pj},
                     {"dram_bits", dram_bits},
                     {"area_mm2", pe_mm2 + buffer_mm2},
                     {"pe_area_mm2", pe_mm2},
                     {"buffer_area_mm2", buffer_mm2}};
}

/// Trains the candidate (train_evaluator: accuracy, bits, MACs) and prices it on its
/// accelerator. The hardware figures replace the evaluator's accelerator-blind energy.
struct qnas_evaluator {
  qs::train_evaluator<en::horowitz_45nm> trainer;

  qs::metrics operator()(const candidate& c, const qs::evaluation_context& ctx) const {
    qs::metrics m = trainer(c, ctx);
    return m.merge(hardware(c));
  }
  [[nodiscard]] qs::metrics hardware(const candidate& c) const {
    auto net = trainer.build(c);
    return hardware_costs(*net, c);
  }
};

/// reward = accuracy - w_t log2(T / T_ref) - w_e log2(E / E_ref) - w_a log2(A / A_ref).
struct qnas_reward {
  double latency_ref = 1, energy_ref = 1, area_ref = 1;
  double w_latency = 0.05, w_energy = 0.025, w_area = 0.025;

  [[nodiscard]] double hardware_penalty(const qs::metrics& m) const {
    return w_latency * std::log2(m.at("latency_cycles") / latency_ref) +
           w_energy * std::log2(m.at("energy_pj") / energy_ref) + w_area * std::log2(m.at("area_mm2") / area_ref);
  }
  double operator()(const qs::metrics& m) const { return m.at("accuracy") - hardware_penalty(m); }
};

/// "2L 16/bfp<4,16>/bfp<5,16> 32/... | dense bfp<4,16> | 16x8 PEs, 32 KiB"
std::string summary(const candidate& c, const space_description& desc) {
  const qnas_space s;
  auto label = [&](std::size_t i) { return desc.decisions()[i].labels[c[i]]; };
  const int layers = get<"conv.layers">(s, c);
  std::string r = std::to_string(layers) + "L";
  for (int l = 0; l < layers; ++l) {
    const auto i = static_cast<std::size_t>(1 + 3 * l);
    r += " " + label(i) + "/" + label(i + 1) + "/" + label(i + 2);
  }
  r += " | dense " + label(10) + " | " + label(11) + "x" + label(12) + " PEs, " + label(13) + " KiB";
  return r;
}

/// One line per trial.
struct trial_printer {
  const space_description* desc;
  void on_trial_end(const qs::trial_record& r, const qs::search_progress& p) const {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "trial %3zu  acc %.3f  %7.0f cycles  %7.1f nJ  %.3f mm2  reward %+.4f  %4.1f s  best %+.4f  %s\n",
                  r.index, r.values.at("accuracy"), r.values.at("latency_cycles"), r.values.at("energy_pj") * 1e-3,
                  r.values.at("area_mm2"), *r.reward, r.wall_s, p.best_reward.value_or(0.0),
                  summary(r.cand, *desc).c_str());
    std::cout << buf << std::flush;
  }
};

double mean_of(const std::vector<double>& v, std::size_t from, std::size_t to) {
  double s = 0;
  for (std::size_t i = from; i < to; ++i) s += v[i];
  return s / static_cast<double>(to - from);
}

/// A line plot of per-batch means (x: the last trial of the batch).
void plot_batches(const std::filesystem::path& file, const std::string& title, const std::string& y_label,
                  const std::vector<double>& per_trial, std::size_t batch, const std::string& color, bool log_y) {
  io::svg_plot plot;
  plot.title = title;
  plot.log_y = log_y;
  plot.x_label = "trial";
  plot.y_label = y_label;
  io::plot_series trials{"trial", {}, io::plot_series::style::scatter, "#c5ccd6"};
  for (std::size_t i = 0; i < per_trial.size(); ++i) trials.points.emplace_back(static_cast<double>(i), per_trial[i]);
  io::plot_series means{"mean of " + std::to_string(batch) + " trials", {}, io::plot_series::style::line_and_points,
                        color};
  for (std::size_t b = 0; b * batch < per_trial.size(); ++b) {
    const std::size_t from = b * batch, to = std::min(per_trial.size(), from + batch);
    means.points.emplace_back(static_cast<double>(to - 1), mean_of(per_trial, from, to));
  }
  plot.add(std::move(trials));
  plot.add(std::move(means));
  plot.save(file);
}

int run(int argc, char** argv) {
  const auto set = qnas::examples::parse_search_cli(
      argc, argv, "09_qnas_lstm_controller",
      "09_qnas_lstm_controller [--mnist DIR] [--out DIR] [--resume] [--full] [--trials N] [--epochs N]\n"
      "                               [--threads N] [--seed N]",
      "qnas_lstm_out");
  const auto t_start = std::chrono::steady_clock::now();
  const std::size_t trials = set.trials ? set.trials : set.full ? 240 : 120;
  const std::size_t epochs = set.epochs ? set.epochs : 1;
  // Asks per runner batch, fixed so that --threads does not change the search (the runner's
  // trial sequence depends on the batch size only); the controller is told every reward.
  const std::size_t runner_batch = 4;
  // Parallelism is across trials; one BLAS thread each avoids oversubscribing the cores.
  if (set.threads > 1) nn::set_blas_threads(1);

  // ---- data -----------------------------------------------------------------------------------
  const std::filesystem::path mnist = qnas::examples::find_mnist(set);
  if (set.full && mnist.empty())
    set.fail("--full needs MNIST: not in $QNAS_SHARED_DATA/mnist nor ../shared/data/mnist (use --mnist DIR)");
  // Before anything slow: a rerun must not overwrite a search, and a resumed one must search the
  // same way (the trial budget and the threads may change; the batch is fixed).
  const qnas::examples::run_settings settings = {{"--mnist", mnist.empty() ? "synthetic" : mnist.string()},
                                                 {"--epochs", std::to_string(epochs)},
                                                 {"--seed", std::to_string(set.seed)}};
  qnas::examples::check_out(set, set.out, set.resume, settings);
  const auto [all, source] = qnas::examples::load_proxy_data(mnist, 2000);
  // MNIST: 8,000 training / 2,000 validation; synthetic: 1,500 / 500.
  const std::size_t validation = mnist.empty() ? 500 : 2000, training = mnist.empty() ? 1500 : 8000;
  auto parts = data::split(all, validation, 11);
  parts.train = data::head(parts.train, std::min(training, parts.train.size()));
  qnas::examples::print_blas_advice();
  std::cout << "data: " << source << ": " << parts.train.size() << " training / " << parts.validation.size()
            << " validation images; " << trials << " trials, " << epochs << " epoch(s) each, " << set.threads
            << " thread(s)\n";

  // ---- evaluator, reference, reward ---------------------------------------------------------------
  qs::train_evaluator_options eo;
  eo.training = {.epochs = epochs, .batch_size = 16, .learning_rate = 2e-3f};
  eo.bridge = bridge;
  const auto& desc = describe<qnas_space>();
  const qnas_evaluator evaluator{qs::train_evaluator<en::horowitz_45nm>(desc, build, std::move(parts.train),
                                                                        std::move(parts.validation), eo)};
  std::cout << "decisions (" << desc.num_decisions() << ", " << space_size_v<qnas_space> << " candidates):";
  for (const auto& d : desc.decisions()) std::cout << ' ' << d.name << '(' << d.cardinality << ')';
  std::cout << '\n';

  const qs::metrics ref = evaluator.hardware(reference_candidate());
  const qnas_reward reward{.latency_ref = ref.at("latency_cycles"), .energy_ref = ref.at("energy_pj"),
                           .area_ref = ref.at("area_mm2")};
  std::printf("reference design %s:\n  %.0f cycles (%.2f us at %.0f MHz), %.1f nJ per inference (%.1f nJ DRAM), "
              "%.3f mm2 (%.3f PEs + %.3f buffer)\n\n",
              summary(reference_candidate(), desc).c_str(), ref.at("latency_cycles"), ref.at("latency_s") * 1e6,
              accelerator_of(reference_candidate()).clock_hz * 1e-6,
              ref.at("energy_pj") * 1e-3, ref.at("dram_energy_pj") * 1e-3, ref.at("area_mm2"),
              ref.at("pe_area_mm2"), ref.at("buffer_area_mm2"));

  // ---- search -----------------------------------------------------------------------------------
  qnas::examples::keep_settings(set.out, settings);
  qs::runner_options ro;
  ro.max_trials = trials;
  ro.threads = set.threads;
  ro.batch_size = runner_batch;
  ro.evaluation_seed = set.seed;
  // Budgets that keep a slow or busy machine within bounds (ctest's default mode, and 15 minutes
  // for --full); the runner checks them between batches and the claim reads the trials that ran.
  ro.time_budget_s = set.full ? 14 * 60.0 : 75.0;
  ro.log_path = set.out / "log.jsonl";
  ro.checkpoint_path = set.out / "checkpoint.json";
  ro.checkpoint_every = 1;  // after every batch: a kill loses at most the trainings in flight
  ro.resume = set.resume;
  ro.pareto_axes = {{"accuracy", qs::direction::maximize}, {"latency_cycles", qs::direction::minimize},
                    {"energy_pj", qs::direction::minimize}, {"area_mm2", qs::direction::minimize}};
  // The controller's defaults: 32 hidden units, Adam at 0.01, an EMA baseline over ~20 rewards,
  // no entropy bonus.
  qs::lstm_controller controller(desc, set.seed);
  const qs::search_result res = qs::run_search(controller, evaluator, reward, ro, trial_printer{&desc});
  qnas::examples::stop_if_interrupted(res.stop_signal, set.out);

  // ---- the learning curve ---------------------------------------------------------------------------
  std::vector<double> rewards, accuracies, penalties, latencies;
  for (const auto& r : res.history) {
    rewards.push_back(*r.reward);
    accuracies.push_back(r.values.at("accuracy"));
    penalties.push_back(reward.hardware_penalty(r.values));
    latencies.push_back(r.values.at("latency_cycles"));
  }
  const std::size_t n = rewards.size(), third = n / 3;
  const std::size_t plot_batch = std::max<std::size_t>(4, n / 12);
  plot_batches(set.out / "learning.svg", "LSTM controller: reward per trial and per batch", "reward", rewards,
               plot_batch, "#d62728", false);
  plot_batches(set.out / "latency.svg", "LSTM controller: latency (cycles) per trial and per batch", "latency_cycles",
               latencies, plot_batch, "#1f77b4", /*log_y=*/true);
  std::string curve = "mean reward per batch of " + std::to_string(plot_batch) + " trials:";
  std::string lat_curve = "mean latency per batch (cycles):";
  for (std::size_t b = 0; b * plot_batch < n; ++b) {
    const std::size_t from = b * plot_batch, to = std::min(n, from + plot_batch);
    char buf[32];
    std::snprintf(buf, sizeof buf, " %+.3f", mean_of(rewards, from, to));
    curve += buf;
    std::snprintf(buf, sizeof buf, " %.0f", mean_of(latencies, from, to));
    lat_curve += buf;
  }
  std::cout << '\n' << curve << '\n' << lat_curve << '\n';
  {
    std::ofstream rep(set.out / "report.txt");
    rep << "reward = accuracy - " << reward.w_latency << " log2(T / " << reward.latency_ref << " cycles) - "
        << reward.w_energy << " log2(E / " << reward.energy_ref << " pJ) - " << reward.w_area << " log2(A / "
        << reward.area_ref << " mm2)\n"
        << curve << '\n'
        << lat_curve << '\n';
    res.print_report(rep);
  }
  res.write_report_files(set.out / "");

  // ---- the result --------------------------------------------------------------------------------
  const qs::trial_record& best = res.best_trial();
  const auto& v = best.values;
  const double clock_mhz = accelerator_of(best.cand).clock_hz * 1e-6;
  std::cout << "\nbest candidate (trial " << best.index << ", reward " << *best.reward << "):\n";
  for (std::size_t i = 0; i < desc.num_decisions(); ++i)
    std::printf("  %-14s %s\n", desc.decisions()[i].name.c_str(), desc.decisions()[i].labels[best.cand[i]].c_str());
  std::cout << *build(best.cand);
  std::printf("accuracy %.4f\nlatency  %.0f cycles = %.2f us at %.0f MHz (reference %.0f cycles)\n"
              "energy   %.1f nJ per inference, %.1f nJ of it DRAM (reference %.1f nJ)\n"
              "area     %.3f mm2: PEs %.3f + buffer %.3f (reference %.3f mm2)\n",
              v.at("accuracy"), v.at("latency_cycles"), v.at("latency_s") * 1e6, clock_mhz, reward.latency_ref,
              v.at("energy_pj") * 1e-3, v.at("dram_energy_pj") * 1e-3, reward.energy_ref * 1e-3, v.at("area_mm2"),
              v.at("pe_area_mm2"), v.at("buffer_area_mm2"), reward.area_ref);
  std::cout << "the controller's most probable candidate now: " << summary(controller.argmax(), desc) << '\n';
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::printf("search: %zu trials, %.1f s (%s); whole run %.1f s\n", n, res.elapsed_s, qs::to_string(res.reason), wall);
  std::cout << "files: " << (set.out / "log.jsonl").string() << " (one line per trial), "
            << (set.out / "checkpoint.json").string() << ", " << (set.out / "report.txt").string() << ", "
            << (set.out / "pareto.csv").string() << ", " << (set.out / "pareto.svg").string()
            << " (accuracy vs latency), " << (set.out / "learning.svg").string() << " (reward per batch), "
            << (set.out / "latency.svg").string()
            << " (latency per batch)\n";

  // ---- the claim -------------------------------------------------------------------------------------
  // Too few trials (a very slow machine hit the time budget) make thirds meaningless: that fails.
  const bool enough = third >= 10;
  const double first = enough ? mean_of(rewards, 0, third) : 0, last = enough ? mean_of(rewards, n - third, n) : 0;
  if (enough)
    std::printf("first third (trials 0-%zu): mean reward %+.4f = accuracy %.4f - hardware term %+.4f\n"
                "last third (trials %zu-%zu): mean reward %+.4f = accuracy %.4f - hardware term %+.4f\n",
                third - 1, first, mean_of(accuracies, 0, third), mean_of(penalties, 0, third), n - third, n - 1, last,
                mean_of(accuracies, n - third, n), mean_of(penalties, n - third, n));
  const bool ok = enough && last > first;
  std::printf("claim: the controller learns (mean reward of the last third > the first third's): %s\n",
              ok ? "holds" : enough ? "FAILS" : "FAILS (fewer than 30 trials ran)");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("09_qnas_lstm_controller", [&] { return run(argc, argv); });
}
