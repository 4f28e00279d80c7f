// Example 0, the copy-me start: a typed search space, a network builder, a training evaluator,
// the runner and its report. It searches a small convolutional network's width and weight
// format on synthetic images, scoring accuracy x the AutoQKeras forgiving factor on energy, and
// checks that the chosen model learned (>= 60 %, chance 10 %) and costs less energy than the
// 8-bit, 16-filter reference. Exits 1 with the reason when a check fails or on an error.
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <qnas/formats/fixed_point.hpp>
#include <qnas/nn.hpp>
#include <qnas/search/random_search.hpp>
#include <qnas/search/runner.hpp>
#include <qnas/search/train_evaluator.hpp>
#include <qnas/space.hpp>

#include "search_cli.hpp"  // run_main: an exception's what() on stderr, exit status 1

using namespace qnas;
namespace qs = qnas::search;

using my_space = space<choice<"conv.filters", 4, 8, 16>,
                       type_choice<"weights", fixed_point<2, 0>, fixed_point<4, 1>, fixed_point<8, 1>>>;

// The network of a candidate: conv 3x3/2 -> relu (8-bit) -> flatten -> dense 10.
std::unique_ptr<nn::sequential> build(const candidate& c) {
  const my_space s;
  const quantizer w = quantizer_of<"weights">(s, c);
  auto net = std::make_unique<nn::sequential>(nn::image(14, 14, 1));
  net->emplace<nn::conv2d_layer>(std::size_t(get<"conv.filters">(s, c)), 3, 2, nn::padding::same, nn::layer_formats{w, w, {}});
  net->emplace<nn::relu_layer>().set_output_quantizer(quantizer::of<fixed_relu<8, 3>>());
  net->emplace<nn::flatten_layer>();
  net->emplace<nn::dense_layer>(10, nn::layer_formats{w, w, {}});
  return net;
}

int main(int argc, char** argv) {
  return examples::run_main("00_minimal_search", [&] {
    examples::parse_cli(argc, argv, {"00_minimal_search", "00_minimal_search (no options)"}, {});
    auto data = data::split(data::make_synthetic({.size = 4000, .height = 14, .width = 14, .seed = 1}), 1000, 1);
    const qs::train_evaluator<> evaluator(describe<my_space>(), build, data.train, data.validation,
                                          {.training = {.epochs = 8, .batch_size = 32, .learning_rate = 3e-3f}});
    const candidate reference = candidate_of<my_space>(value<"conv.filters", 16>, type<"weights", fixed_point<8, 1>>);
    const double reference_pj = evaluator.estimate(reference).at("energy_pj");

    qs::random_search strategy(describe<my_space>(), {.deduplicate = true}, /*seed=*/1);
    qs::runner_options options;
    options.max_trials = 6;
    options.threads = 2;  // trainings at once
    const qs::forgiving_factor_score score{.reference = reference_pj};
    const qs::search_result result = qs::run_search(strategy, evaluator, score, options);
    result.print_report(std::cout);

    const qs::trial_record& best = result.best_trial();
    const double accuracy = best.values.at("accuracy"), energy = best.values.at("energy_pj") / reference_pj;
    std::printf("best: %s, accuracy %.3f, %.0f %% of the reference's energy\n",
                to_string(best.cand, result.space).c_str(), accuracy, 100 * energy);
    if (accuracy < 0.6 || energy >= 1) throw std::runtime_error("the best model did not learn or is not cheaper");
    return 0;
  });
}
