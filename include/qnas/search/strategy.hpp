// The strategy concept: ask for a candidate, tell its reward, save and load the complete state.
//
// A strategy knows a space only through its space_description and learns only from rewards
// (DESIGN.md section 3, rule 3): it never sees a network, a dataset or a trainer.
//
// Protocol, for every strategy in qnas::search:
//   * constructed from (const space_description&, options, seed);
//   * `ask()` proposes a candidate; `tell(c, reward)` reports the reward of a candidate that was
//     asked (higher is better; a reward must be finite, NaN/Inf throw qnas::invalid_argument);
//   * a runner may ask a batch of k candidates before telling any of them, and tell them in any
//     order (parallel evaluation): every strategy supports this;
//   * deterministic: the same seed and the same tells (in the same order, interleaved with the
//     asks in the same way) give the same asks, on any machine with the same standard library;
//   * `save()` captures the complete state (including the random engine), and `load(j)` into a
//     freshly constructed strategy over the same space continues exactly: the next asks equal
//     those the saved strategy would have made. `load` refuses state saved for another strategy
//     or another space (fingerprint) with qnas::invalid_argument.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/space/candidate.hpp"

namespace qnas::search {

/// The random engine every strategy owns: its state streams as text, so it serialises exactly.
using engine_type = std::mt19937_64;

// One named sub-concept per member of a strategy, so check_strategy names the one missing.
template <class S>
concept strategy_asks = requires(S& s) {
  { s.ask() } -> std::same_as<candidate>;
};
template <class S>
concept strategy_tells = requires(S& s, const candidate& c, double reward) {
  { s.tell(c, reward) } -> std::same_as<void>;
};
template <class S>
concept strategy_saves = requires(const S& cs) {
  { cs.save() } -> std::same_as<nlohmann::json>;
};
template <class S>
concept strategy_loads = requires(S& s, const nlohmann::json& j) {
  { s.load(j) } -> std::same_as<void>;
};
template <class S>
concept strategy_has_name = requires(const S& cs) {
  { cs.name() } -> std::convertible_to<std::string>;
};
template <class S>
concept strategy_has_space = requires(const S& cs) {
  { cs.space() } -> std::same_as<const space_description&>;
};

/// What the runner needs from a search strategy (see the protocol at the top of this header).
template <class S>
concept strategy = strategy_asks<S> && strategy_tells<S> && strategy_saves<S> && strategy_loads<S> &&
                   strategy_has_name<S> && strategy_has_space<S>;

/// The entry-point check of a strategy (run_search, runner, run_search_mpi): one static_assert
/// per member, so the first error names the member S lacks. True when S is a strategy.
template <class S>
consteval bool check_strategy() {
  static_assert(strategy_asks<S>, "qnas: a search strategy needs `qnas::candidate ask()`");
  static_assert(strategy_tells<S>,
                "qnas: a search strategy needs `void tell(const qnas::candidate& c, double reward)`");
  static_assert(strategy_saves<S>, "qnas: a search strategy needs `nlohmann::json save() const`");
  static_assert(strategy_loads<S>, "qnas: a search strategy needs `void load(const nlohmann::json& state)`");
  static_assert(strategy_has_name<S>, "qnas: a search strategy needs `std::string name() const`");
  static_assert(strategy_has_space<S>,
                "qnas: a search strategy needs `const qnas::space_description& space() const`");
  return true;
}

namespace detail {

using qnas::detail::cat;

/// Uniform integer in [0, n), n >= 1, by rejection on 64-bit draws. Written out (instead of
/// std::uniform_int_distribution) because its result is specified exactly, so a search replays
/// identically with any standard library, and it keeps no state outside the engine.
inline std::uint64_t uniform_index(engine_type& e, std::uint64_t n) noexcept {
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t x;
  do x = e();
  while (x >= limit);
  return x % n;
}

/// Uniform double in [0, 1) with 53 random bits.
inline double uniform01(engine_type& e) noexcept { return static_cast<double>(e() >> 11) * 0x1.0p-53; }

/// Candidate drawn uniformly from the space.
inline candidate uniform_candidate(const space_description& space, engine_type& e) {
  candidate c;
  c.choices.resize(space.num_decisions());
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::uint32_t>(uniform_index(e, space.cardinality(i)));
  return c;
}

inline std::string engine_to_string(const engine_type& e) {
  std::ostringstream os;
  os << e;
  return os.str();
}

inline void engine_from_string(engine_type& e, const std::string& s, std::string_view where) {
  std::istringstream is(s);
  engine_type tmp;
  is >> tmp;
  if (is.fail()) throw invalid_argument(where, "the saved random engine state is malformed");
  e = tmp;
}

/// Throws unless `reward` is finite and `c` belongs to `space`; names the candidate.
inline void check_tell(const candidate& c, double reward, const space_description& space, std::string_view where) {
  check_candidate(c, space, where);
  if (!std::isfinite(reward))
    throw invalid_argument(where, cat("reward ", reward, " for candidate {", to_string(c, space),
                                              "} is not finite (an evaluator failed? penalise it with a finite value)"));
}

/// The part of save() every strategy shares: who wrote it, for which space, and the engine.
inline nlohmann::json save_header(std::string_view strategy_name, const space_description& space,
                                  const engine_type& engine) {
  return {{"strategy", std::string(strategy_name)},
          {"space_fingerprint", space.fingerprint_hex()},
          {"engine", engine_to_string(engine)}};
}

/// Runs `read`, a strategy's reading of its saved state, so that a member that is missing or of
/// the wrong JSON type (a corrupt or hand-edited checkpoint) is refused as invalid_argument naming
/// `where`, not as one of nlohmann's exceptions or io::get_integer's io_error. Random search,
/// both evolutions, REINFORCE and the LSTM controller apply what they read only after reading
/// all of it, so a refused state leaves them unchanged (tests/strategies/test_protocol.cpp).
template <class F>
void read_state(std::string_view where, F&& read) {
  try {
    static_cast<F&&>(read)();
  } catch (const nlohmann::json::exception& e) {
    throw invalid_argument(where, std::string("malformed saved state: ") + e.what());
  } catch (const io_error& e) {  // io::get_integer's refusal of a non-integer counter
    throw invalid_argument(where, std::string("malformed saved state: ") + e.what());
  }
}

/// Checks what save_header wrote and restores the engine; throws when the state is for another
/// strategy or space.
inline void load_header(const nlohmann::json& j, std::string_view strategy_name, const space_description& space,
                        engine_type& engine) {
  const std::string where = std::string(strategy_name) + "::load";
  if (!j.is_object() || !j.contains("strategy") || !j.contains("space_fingerprint") || !j.contains("engine"))
    throw invalid_argument(where, "not a saved strategy state (needs strategy, space_fingerprint, engine)");
  if (j["strategy"].get<std::string>() != strategy_name)
    throw invalid_argument(where, "the state was saved by '" + j["strategy"].get<std::string>() + "'");
  if (j["space_fingerprint"].get<std::string>() != space.fingerprint_hex())
    throw invalid_argument(where, "the state was saved for another space (fingerprint " +
                                      j["space_fingerprint"].get<std::string>() + ", this space has " +
                                      space.fingerprint_hex() + ")");
  engine_from_string(engine, j["engine"].get<std::string>(), where);
}

/// Reads one candidate saved as its index array, checking it against the space.
inline candidate candidate_from_indices(const nlohmann::json& j, const space_description& space, std::string_view where) {
  candidate c(j.get<std::vector<std::uint32_t>>());
  check_candidate(c, space, where);
  return c;
}

/// The option rules the two policy-gradient strategies share (reinforce, lstm_controller):
/// checked by their constructors and load().
inline void check_policy_gradient_options(double learning_rate, double baseline_momentum, double entropy_weight,
                                          double adam_beta1, double adam_beta2, std::string_view where) {
  if (!(learning_rate > 0) || !std::isfinite(learning_rate))
    throw invalid_argument(where, detail::cat("learning_rate must be finite and > 0, got ", learning_rate));
  if (!(baseline_momentum >= 0 && baseline_momentum < 1))
    throw invalid_argument(where, detail::cat("baseline_momentum must be in [0, 1), got ", baseline_momentum));
  if (!std::isfinite(entropy_weight))
    throw invalid_argument(where, detail::cat("entropy_weight must be finite, got ", entropy_weight));
  if (!(adam_beta1 >= 0 && adam_beta1 < 1) || !(adam_beta2 >= 0 && adam_beta2 < 1))
    throw invalid_argument(where, detail::cat("adam_beta1 and adam_beta2 must be in [0, 1), got ", adam_beta1, " and ",
                                              adam_beta2));
}

}  // namespace detail

/// What a checkpoint knows about a strategy's past, to cross-check a state that load() accepted:
/// the runner asks once per trial and tells every trial that got a reward. A state whose own
/// counters disagree (an edited or mixed-up checkpoint) would otherwise resume a different search.
struct trial_counts {
  std::size_t asked = 0;
  std::size_t told = 0;
};

/// A strategy that can check its state against trial_counts (an optional member): throws
/// qnas::invalid_argument naming the field of its saved state that disagrees.
template <class S>
concept checks_counts = requires(const S& s, const trial_counts& n) {
  { s.check_counts(n) } -> std::same_as<void>;
};

/// s.check_counts(n) where the strategy has one; nothing otherwise.
template <class S>
void check_counts(const S& s, const trial_counts& n) {
  if constexpr (checks_counts<S>) s.check_counts(n);
}

/// A strategy whose defaults depend on the trial budget (an optional member): `expect_trials(n)`
/// declares, before the first ask, that the search will evaluate about n candidates, so that
/// options the caller left unset (evolution's population and tournament size, REINFORCE's
/// learning rate) follow the budget. Values the caller set are never overridden.
template <class S>
concept budget_aware = requires(S& s, std::size_t n) {
  { s.expect_trials(n) } -> std::same_as<void>;
};

/// s.expect_trials(n) where the strategy has one; nothing otherwise. A runner that knows its
/// trial budget calls this once, before the first ask of a fresh (not resumed) search.
template <class S>
void expect_trials(S& s, std::size_t n) {
  if constexpr (budget_aware<S>) s.expect_trials(n);
}

/// A strategy chosen at run time (from a configuration file or command line): any type that
/// models `strategy`, behind one value type. The runner can hold this instead of a template.
class any_strategy {
 public:
  template <strategy S>
    requires(!std::same_as<std::remove_cvref_t<S>, any_strategy>)
  any_strategy(S s) : self_(std::make_unique<model<S>>(std::move(s))) {}

  [[nodiscard]] candidate ask() { return self_->ask(); }
  void tell(const candidate& c, double reward) { self_->tell(c, reward); }
  [[nodiscard]] nlohmann::json save() const { return self_->save(); }
  void load(const nlohmann::json& j) { self_->load(j); }
  [[nodiscard]] std::string name() const { return self_->name(); }
  [[nodiscard]] const space_description& space() const { return self_->space(); }
  /// The held strategy's check_counts, when it has one.
  void check_counts(const trial_counts& n) const { self_->check_counts(n); }
  /// The held strategy's expect_trials, when it has one.
  void expect_trials(std::size_t n) { self_->expect_trials(n); }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual candidate ask() = 0;
    virtual void tell(const candidate&, double) = 0;
    virtual nlohmann::json save() const = 0;
    virtual void load(const nlohmann::json&) = 0;
    virtual std::string name() const = 0;
    virtual const space_description& space() const = 0;
    virtual void check_counts(const trial_counts&) const = 0;
    virtual void expect_trials(std::size_t) = 0;
  };
  template <class S>
  struct model final : concept_t {
    S s;
    explicit model(S x) : s(std::move(x)) {}
    candidate ask() override { return s.ask(); }
    void tell(const candidate& c, double r) override { s.tell(c, r); }
    nlohmann::json save() const override { return s.save(); }
    void load(const nlohmann::json& j) override { s.load(j); }
    std::string name() const override { return s.name(); }
    const space_description& space() const override { return s.space(); }
    void check_counts(const trial_counts& n) const override { search::check_counts(s, n); }
    void expect_trials(std::size_t n) override { search::expect_trials(s, n); }
  };
  std::unique_ptr<concept_t> self_;
};

}  // namespace qnas::search
