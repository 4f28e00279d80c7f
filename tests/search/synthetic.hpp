// Shared by the search tests: a 10-decision synthetic space with an accuracy/energy trade-off,
// its evaluator, and a small tell-dependent strategy (so a wrong ask/tell order shows up).
#pragma once

#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "qnas/search/evaluator.hpp"
#include "qnas/search/strategy.hpp"

namespace synth {

using namespace qnas;
using namespace qnas::search;

/// 10 decisions "layer<i>.bits" with labels 2, 4, 6, 8 (ordinal).
inline space_description space(std::size_t n = 10) {
  std::vector<decision_info> d;
  for (std::size_t i = 0; i < n; ++i)
    d.push_back({"layer" + std::to_string(i) + ".bits", decision_kind::ordinal, 4, {"2", "4", "6", "8"}});
  return space_description(std::move(d));
}

inline double bits_of(std::uint32_t c) { return 2.0 * (c + 1); }

/// accuracy = 0.99 - sum_i 0.02 * w_i * 2^-(bits_i - 2)   (more bits, less quantization error)
/// energy   = sum_i (i + 1) * bits_i^2                   (later layers are costlier)
/// plus a +-0.0005 term from the evaluation seed, so seeding is visible in the results.
struct evaluator_fn {
  std::atomic<int>* calls = nullptr;
  metrics operator()(const candidate& c, const evaluation_context& ctx) const {
    if (calls) ++*calls;
    double acc = 0.99, e = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double b = bits_of(c[i]);
      acc -= 0.02 * (1.0 + 0.1 * i) * std::exp2(-(b - 2.0));
      e += (i + 1.0) * b * b;
    }
    acc += 0.0005 * (static_cast<double>(ctx.seed % 2001) / 1000.0 - 1.0);
    double bits = 0;
    for (auto v : c.choices) bits += bits_of(v) * 1000;
    return {{"accuracy", acc}, {"energy_pj", e}, {"bits", bits}};
  }
};

/// Cheap estimate: only the bit count (what a constraint on model size needs).
inline metrics estimate(const candidate& c) {
  double bits = 0;
  for (auto v : c.choices) bits += bits_of(v) * 1000;
  return {{"bits", bits}};
}

/// (1+1)-style search: with probability 1/4 a uniform candidate, else the best so far with one
/// decision re-drawn. Its asks depend on the tells, so tell order matters.
class hill_climber {
 public:
  hill_climber(space_description s, std::uint64_t seed) : space_(std::move(s)), engine_(seed) {}
  candidate ask() {
    if (!best_ || qnas::search::detail::uniform01(engine_) < 0.25)
      return qnas::search::detail::uniform_candidate(space_, engine_);
    candidate c = *best_;
    const auto i = qnas::search::detail::uniform_index(engine_, space_.num_decisions());
    c[i] = static_cast<std::uint32_t>(qnas::search::detail::uniform_index(engine_, space_.cardinality(i)));
    return c;
  }
  void tell(const candidate& c, double r) {
    qnas::search::detail::check_tell(c, r, space_, "hill_climber::tell");
    if (!best_ || r > best_reward_) best_ = c, best_reward_ = r;
  }
  nlohmann::json save() const {
    auto j = qnas::search::detail::save_header(name(), space_, engine_);
    j["best"] = best_ ? nlohmann::json(best_->choices) : nlohmann::json(nullptr);
    j["best_reward"] = best_reward_;
    return j;
  }
  void load(const nlohmann::json& j) {
    qnas::search::detail::load_header(j, name(), space_, engine_);
    if (j["best"].is_null())
      best_.reset();
    else
      best_ = qnas::search::detail::candidate_from_indices(j["best"], space_, "hill_climber::load");
    best_reward_ = j["best_reward"].get<double>();
  }
  std::string name() const { return "hill_climber"; }
  const space_description& space() const { return space_; }

 private:
  space_description space_;
  engine_type engine_;
  std::optional<candidate> best_;
  double best_reward_ = 0;
};
static_assert(qnas::search::strategy<hill_climber>);

}  // namespace synth
