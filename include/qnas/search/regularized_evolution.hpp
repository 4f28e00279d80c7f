// Regularized (aging) evolution and the keep-the-best (1+1) mutation scheme.
//
// Regularized evolution (Real et al., "Regularized Evolution for Image Classifier Architecture
// Search", AAAI 2019): the first P candidates are random; afterwards each candidate is a mutant of
// the best of S individuals sampled (with replacement) from the population, and every told
// candidate joins the population while the OLDEST one leaves (aging, not the worst). The paper
// uses P = 100, S = 25 for 20,000 evaluations and the NAS-Bench-201 protocol P = 10, S = 3 for
// about 100: a good P depends on the budget, because the first P candidates are random. Unset,
// P and S follow the rule of default_population_size() from the declared trial budget
// (options::expected_trials or expect_trials()), measured by bench/bench_strategy_defaults.cpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/io/json.hpp"
#include "qnas/search/strategy.hpp"

namespace qnas::search {

namespace detail {

/// Changes one decision (picked uniformly among those with more than one alternative) to a
/// DIFFERENT alternative: uniformly among the others for a categorical decision; for an
/// ordinal decision, with `ordinal_step`, one step up or down (a neighbour), else uniformly.
/// A space whose decisions all have one alternative returns the parent unchanged.
inline candidate mutate(const candidate& parent, const space_description& space, bool ordinal_step, engine_type& e) {
  std::size_t mutable_count = 0;
  for (std::size_t i = 0; i < space.num_decisions(); ++i) mutable_count += space.cardinality(i) > 1;
  candidate child = parent;
  if (mutable_count == 0) return child;
  std::size_t pick = uniform_index(e, mutable_count);
  std::size_t d = 0;
  for (;; ++d)
    if (space.cardinality(d) > 1 && pick-- == 0) break;
  const auto n = space.cardinality(d);
  const auto old = parent[d];
  if (ordinal_step && space[d].kind == decision_kind::ordinal) {
    const bool up = old == 0 || (old + 1 < n && uniform_index(e, 2) == 1);
    child[d] = up ? old + 1 : old - 1;
  } else {
    // A uniform draw among the n-1 other alternatives: skip over the old one.
    auto k = static_cast<std::uint32_t>(uniform_index(e, n - 1));
    child[d] = k >= old ? k + 1 : k;
  }
  return child;
}

inline nlohmann::json scored_to_json(const candidate& c, double r) { return {{"c", c.choices}, {"r", r}}; }

}  // namespace detail

/// Regularized (aging) evolution. Supports asking a batch before telling: while the population
/// is still empty every ask is random; tells may come in any order.
class regularized_evolution {
 public:
  struct options {
    std::optional<std::size_t> population_size = std::nullopt;  ///< P; unset: default_population_size(expected_trials)
    std::optional<std::size_t> sample_size = std::nullopt;      ///< S, the tournament size; unset: default_sample_size(P)
    bool ordinal_step = true;  ///< ordinal mutations move to a neighbouring value
    /// The declared trial budget B (0: unknown). It only derives P and S when they are unset;
    /// saved with the state so a checkpoint says what the search was told. Last, so that
    /// options written positionally before it existed ({P, S, ordinal_step}) keep their meaning.
    std::size_t expected_trials = 0;
  };
  struct individual {
    candidate c;
    double reward;
  };

  regularized_evolution(const space_description& space, options opt, std::uint64_t seed)
      : space_(space), requested_(opt), opt_(resolve(opt)), engine_(seed) {
    check_options(opt, "regularized_evolution");
  }
  regularized_evolution(const space_description& space, std::uint64_t seed)
      : regularized_evolution(space, options{}, seed) {}

  /// The default population for a declared budget of B evaluations:
  ///   P = clamp(B / 20, 10, 100)  (integer division), and P = 10 when B is unknown (0).
  /// Why: the first P asks are random, so P must stay a small fraction of B for evolution to act
  /// (P >= B is random search: the paper's P = 100 loses to it at 50 and 100 evaluations). On
  /// NAS-Bench-201 P = 10 is at or near the best population at every budget from 20 to 3,000
  /// evaluations. Past 200 evaluations P grows as B / 20 towards the paper's P = 100 (which it
  /// used for 20,000): more diversity for long searches on spaces harder than that table, where
  /// with S = 5 it costs nothing measurable (bench/bench_strategy_defaults.cpp).
  static constexpr std::size_t default_population_size(std::size_t expected_trials) noexcept {
    if (expected_trials == 0) return 10;
    return std::clamp<std::size_t>(expected_trials / 20, 10, 100);
  }
  /// The default tournament size for population P: S = min(5, P). The selection pressure of a
  /// tournament grows with S, not with S / P, so S stays fixed as P grows: on NAS-Bench-201 a
  /// tournament proportional to P (S = P / 2) turns greedy at P = 50 and loses 0.04 points at
  /// 1,000 evaluations, while the protocol's S = 3 of P = 10 is about 0.1 points short at 50 and
  /// 100 (docs/search_spaces_and_strategies.md, section 3.1).
  static constexpr std::size_t default_sample_size(std::size_t population_size) noexcept {
    return std::min<std::size_t>(5, population_size);
  }
  /// Options with P and S filled in by the rules above where they are unset.
  static options resolve(options o) noexcept {
    if (!o.population_size) o.population_size = default_population_size(o.expected_trials);
    if (!o.sample_size) o.sample_size = default_sample_size(*o.population_size);
    return o;
  }

  /// Declares the trial budget after construction (a runner that knows its max_trials calls this
  /// before the first ask; see search::expect_trials): sets expected_trials unless the options
  /// set it, and re-derives P and S where the constructor's options left them unset. Values the
  /// caller wrote are never overridden. After load() every value is the saved one, so only an
  /// unknown expected_trials is filled in. Throws qnas::invalid_argument after the first ask (P
  /// decides which asks are random: changing it mid-search would make a different search).
  void expect_trials(std::size_t n) {
    if (asked_ != 0)
      throw invalid_argument("regularized_evolution::expect_trials",
                             detail::cat("the budget must be declared before the first ask (", asked_, " were asked)"));
    if (requested_.expected_trials == 0) requested_.expected_trials = n;
    const options o = resolve(requested_);
    check_options(o, "regularized_evolution::expect_trials");
    opt_ = o;
  }

  [[nodiscard]] candidate ask() {
    if (asked_ < *opt_.population_size || population_.empty()) {
      ++asked_;
      return detail::uniform_candidate(space_, engine_);
    }
    ++asked_;
    const individual* parent = nullptr;
    for (std::size_t s = 0; s < *opt_.sample_size; ++s) {
      const auto& x = population_[detail::uniform_index(engine_, population_.size())];
      if (!parent || x.reward > parent->reward) parent = &x;  // ties: the first sampled wins
    }
    return detail::mutate(parent->c, space_, opt_.ordinal_step, engine_);
  }

  void tell(const candidate& c, double reward) {
    detail::check_tell(c, reward, space_, "regularized_evolution::tell");
    population_.push_back({c, reward});
    if (population_.size() > *opt_.population_size) population_.pop_front();  // aging: the oldest dies
  }

  /// The rules for options, checked by the constructor and by load(): P >= 1 and 1 <= S <= P (a
  /// tournament larger than the population only repeats its members). Unset values are checked
  /// as the rules derive them, and a message about one says so.
  static void check_options(const options& o, std::string_view where) {
    const options r = resolve(o);
    const auto p = *r.population_size, s = *r.sample_size;
    const std::string derived_p =
        o.population_size ? "" : detail::cat(", derived from expected_trials = ", o.expected_trials);
    if (p == 0) throw invalid_argument(where, "population_size must be >= 1");
    if (s == 0) throw invalid_argument(where, "sample_size must be >= 1");
    if (s > p)
      throw invalid_argument(where, detail::cat("sample_size (", s, ") must not exceed population_size (", p, derived_p,
                                                ")"));
  }
  /// Against a checkpoint: one ask per trial, and the population holds the last min(told, P).
  void check_counts(const trial_counts& n) const {
    constexpr const char* where = "regularized_evolution::load";
    if (asked_ != n.asked)
      throw invalid_argument(where, detail::cat("field 'asked' is ", asked_, ", but ", n.asked, " trials were asked"));
    const std::size_t expected = std::min(n.told, *opt_.population_size);
    if (population_.size() != expected)
      throw invalid_argument(where, detail::cat("field 'population' holds ", population_.size(), " individuals, but ",
                                                n.told, " rewards were told (population_size ", *opt_.population_size,
                                                "): expected ", expected));
  }

  /// The current population, oldest first.
  [[nodiscard]] const std::deque<individual>& population() const noexcept { return population_; }
  /// The options in use: P and S always set (derived where the caller left them unset).
  [[nodiscard]] const options& get_options() const noexcept { return opt_; }
  [[nodiscard]] std::size_t population_size() const noexcept { return *opt_.population_size; }
  [[nodiscard]] std::size_t sample_size() const noexcept { return *opt_.sample_size; }

  [[nodiscard]] nlohmann::json save() const {
    auto j = detail::save_header(name(), space_, engine_);
    // P and S are saved as used (derived or not), so a resumed search is the same search even if
    // the rule changes in a later version.
    j["options"] = {{"population_size", *opt_.population_size}, {"sample_size", *opt_.sample_size},
                    {"ordinal_step", opt_.ordinal_step}, {"expected_trials", opt_.expected_trials}};
    j["asked"] = asked_;
    nlohmann::json pop = nlohmann::json::array();
    for (const auto& x : population_) pop.push_back(detail::scored_to_json(x.c, x.reward));
    j["population"] = std::move(pop);
    return j;
  }

  void load(const nlohmann::json& j) {
    detail::read_state("qnas::search::regularized_evolution::load", [&] {
      constexpr const char* where = "regularized_evolution::load";
      engine_type e;
      detail::load_header(j, name(), space_, e);
      options o;
      o.population_size = io::get_integer<std::size_t>(j.at("options").at("population_size"), "population_size", "qnas::search::regularized_evolution::load");
      o.sample_size = io::get_integer<std::size_t>(j.at("options").at("sample_size"), "sample_size", "qnas::search::regularized_evolution::load");
      o.ordinal_step = j.at("options").at("ordinal_step").get<bool>();
      // States saved before expected_trials existed lack it: their budget was not declared.
      if (j.at("options").contains("expected_trials"))
        o.expected_trials = io::get_integer<std::size_t>(j.at("options").at("expected_trials"), "expected_trials",
                                                         "qnas::search::regularized_evolution::load");
      std::deque<individual> pop;
      for (const auto& x : j.at("population"))
        pop.push_back({detail::candidate_from_indices(x.at("c"), space_, where), x.at("r").get<double>()});
      const auto asked = io::get_integer<std::size_t>(j.at("asked"), "asked", "qnas::search::regularized_evolution::load");
      check_options(o, where);
      // Every member was asked and told once; the population never exceeds P.
      if (pop.size() > *o.population_size)
        throw invalid_argument(where, detail::cat("field 'population' holds ", pop.size(),
                                                  " individuals, more than population_size ", *o.population_size));
      if (pop.size() > asked)
        throw invalid_argument(where, detail::cat("field 'asked' is ", asked, ", fewer than the ", pop.size(),
                                                  " individuals of 'population' (each was asked)"));
      opt_ = o;
      requested_ = o;  // every value of a saved search is fixed: expect_trials() must not re-derive them
      engine_ = e;
      asked_ = asked;
      population_ = std::move(pop);
    });
  }

  [[nodiscard]] std::string name() const { return "regularized_evolution"; }
  [[nodiscard]] const space_description& space() const noexcept { return space_; }

 private:
  space_description space_;
  options requested_;  // as the caller wrote them: what expect_trials() may still derive
  options opt_;        // as used: P and S set
  engine_type engine_;
  std::size_t asked_ = 0;
  std::deque<individual> population_;
};

/// The keep-the-best (1+1) mutation scheme: every ask mutates the best candidate told so far (a
/// random candidate before the first tell); a told candidate replaces the best when its reward is
/// at least as high (>=, so the search drifts across plateaus).
class one_plus_one_evolution {
 public:
  struct options {
    bool ordinal_step = true;
  };

  one_plus_one_evolution(const space_description& space, options opt, std::uint64_t seed)
      : space_(space), opt_(opt), engine_(seed) {}
  one_plus_one_evolution(const space_description& space, std::uint64_t seed)
      : one_plus_one_evolution(space, options{}, seed) {}

  [[nodiscard]] candidate ask() {
    if (!best_) return detail::uniform_candidate(space_, engine_);
    return detail::mutate(best_->first, space_, opt_.ordinal_step, engine_);
  }

  /// Against a checkpoint: there is a best candidate exactly when a reward was told.
  void check_counts(const trial_counts& n) const {
    if (best_.has_value() != (n.told > 0))
      throw invalid_argument("one_plus_one_evolution::load",
                             detail::cat("field 'best' is ", best_ ? "set" : "null", ", but ", n.told, " rewards were told"));
  }

  void tell(const candidate& c, double reward) {
    detail::check_tell(c, reward, space_, "one_plus_one_evolution::tell");
    if (!best_ || reward >= best_->second) best_ = {c, reward};
  }

  /// The parent of the next mutants: the best candidate so far and its reward.
  [[nodiscard]] const std::optional<std::pair<candidate, double>>& best() const noexcept { return best_; }

  [[nodiscard]] nlohmann::json save() const {
    auto j = detail::save_header(name(), space_, engine_);
    j["ordinal_step"] = opt_.ordinal_step;
    j["best"] = best_ ? detail::scored_to_json(best_->first, best_->second) : nlohmann::json(nullptr);
    return j;
  }

  void load(const nlohmann::json& j) {
    detail::read_state("qnas::search::one_plus_one_evolution::load", [&] {
      engine_type e;
      detail::load_header(j, name(), space_, e);
      std::optional<std::pair<candidate, double>> b;
      if (!j.at("best").is_null())
        b = {detail::candidate_from_indices(j["best"].at("c"), space_, "one_plus_one_evolution::load"),
             j["best"].at("r").get<double>()};
      opt_.ordinal_step = j.at("ordinal_step").get<bool>();
      engine_ = e;
      best_ = std::move(b);
    });
  }

  [[nodiscard]] std::string name() const { return "one_plus_one_evolution"; }
  [[nodiscard]] const space_description& space() const noexcept { return space_; }

 private:
  space_description space_;
  options opt_;
  engine_type engine_;
  std::optional<std::pair<candidate, double>> best_;
};

static_assert(strategy<regularized_evolution>);
static_assert(strategy<one_plus_one_evolution>);

}  // namespace qnas::search
