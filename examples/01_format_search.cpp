// Example 1: choose the cheapest number format for a layer's weights under an error budget.
//
// A small but real search: every candidate format quantizes the same (seeded) Gaussian weight
// tensor; the cheapest format, in amortized bits per weight, whose relative RMS error stays
// under the budget wins. Prints a table and exits non-zero when the claim fails: the winner
// must meet the budget and no cheaper candidate may.
//
// Usage: 01_format_search [BUDGET]   (the relative RMS error budget, a positive number; 0.05)
#include <qnas/qnas.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <boost/hana.hpp>
#include <xtensor/xmath.hpp>

#include "search_cli.hpp"

namespace hana = boost::hana;

namespace {

int run(int argc, char** argv) {
  double budget = 0.05;  // relative RMS error
  bool given = false;
  const qnas::examples::cli_info cli{"01_format_search", "01_format_search [BUDGET]   (relative RMS error, default 0.05)"};
  qnas::examples::parse_cli(argc, argv, cli, [&](const std::string& a, const qnas::examples::cli_value&) {
    if (given || a.starts_with("--")) return false;  // one budget; options are unknown
    const std::optional<double> b = qnas::examples::positive_real(a);
    if (!b) cli.fail("BUDGET needs a positive number, got '" + a + "'");
    budget = *b;
    return given = true;
  });
  std::mt19937 engine(42);
  std::normal_distribution<float> normal(0.0f, 0.25f);
  xt::xarray<float> w = xt::empty<float>({64, 3 * 3 * 32});
  for (auto& v : w) v = normal(engine);
  const double norm = std::sqrt(static_cast<double>(xt::sum(w * w)()));

  struct row {
    std::string name;
    double bits;
    double rel_rms;
  };
  std::vector<row> rows;
  auto candidates = hana::tuple_t<qnas::fixed_point<2, 0>, qnas::fixed_point<3, 0>, qnas::fixed_point<4, 0>,
                                  qnas::fixed_point<6, 0>, qnas::fixed_point<8, 0>, qnas::fixed_point<8, 0, true, true>,
                                  qnas::fixed_point<12, 1>>;
  hana::for_each(candidates, [&](auto t) {
    using F = typename decltype(t)::type;
    const auto q = qnas::quantize<F>(w);
    const double err = std::sqrt(static_cast<double>(xt::sum((q - w) * (q - w))()));
    rows.push_back({F::name(), qnas::amortized_bits_v<F>, err / norm});
  });

  std::printf("%-32s %8s %12s\n", "format", "bits/w", "rel. RMS err");
  const row* best = nullptr;
  for (const auto& r : rows) {
    std::printf("%-32s %8.2f %12.5f%s\n", r.name.c_str(), r.bits, r.rel_rms, r.rel_rms <= budget ? "  ok" : "");
    if (r.rel_rms <= budget && (!best || r.bits < best->bits)) best = &r;
  }
  if (!best) {
    std::printf("no candidate meets the budget %.4f\n", budget);
    return 1;
  }
  for (const auto& r : rows)
    if (r.bits < best->bits && r.rel_rms <= budget) return 1;  // the search missed a cheaper one
  std::printf("best: %s at %.2f bits per weight (relative RMS error %.5f <= budget %.4f)\n", best->name.c_str(),
              best->bits, best->rel_rms, budget);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return qnas::examples::run_main("01_format_search", [&] { return run(argc, argv); });
}
