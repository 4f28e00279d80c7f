// Block-by-block search (AutoQKeras): search groups of decisions one after another, in order of decreasing energy share, freezing each group's best.
//
// Searching every layer's quantizer at once multiplies the space; AutoQKeras instead searches
// one block of layers at a time, starting with the block that costs the most energy (where a
// good choice saves the most), and freezes the best choice found before moving on. Blocks not
// yet searched keep the `initial` candidate's values (typically the reference, e.g. 8-bit).
//
// block_schedule is a strategy adapter: it models `strategy` over the FULL space, so the
// ordinary runner (threads, log, checkpoints, resume) drives it unchanged. For each block it
// builds a fresh inner strategy over the block's sub-space with a user factory. Give the runner
// max_trials = total_trials().
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/io/json.hpp"
#include "qnas/core/diagnostics.hpp"
#include "qnas/search/strategy.hpp"
#include "qnas/space/candidate.hpp"

namespace qnas::search {

/// A group of decisions searched together (e.g. the quantizers and filters of one layer).
struct block {
  std::string name;
  std::vector<std::string> decisions;  ///< decision names of the full space
  double energy_share = 0;             ///< this block's share of the model's energy (any unit; only the order matters)
  std::size_t trials = 0;              ///< trials spent on this block
};

template <strategy Inner>
class block_schedule {
 public:
  /// Makes the inner strategy for one block: (the block's sub-space, the block's position in
  /// the search order). Vary the seed with the position so blocks do not share random streams.
  using factory = std::function<Inner(const space_description&, std::size_t)>;

  /// Validates the blocks (known, non-overlapping decisions, trials >= 1, finite shares >= 0)
  /// and `initial` (a candidate of `space`); qnas::invalid_argument names the problem.
  block_schedule(space_description space, std::vector<block> blocks, candidate initial, factory make)
      : space_(std::move(space)), blocks_(std::move(blocks)), frozen_(std::move(initial)), make_(std::move(make)) {
    constexpr const char* where = "qnas::search::block_schedule";
    check_candidate(frozen_, space_, where);
    if (blocks_.empty()) throw invalid_argument(where, "needs at least one block");
    std::vector<int> owner(space_.num_decisions(), -1);
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      const auto& bl = blocks_[b];
      if (bl.decisions.empty()) throw invalid_argument(where, qnas::detail::cat("block '", bl.name, "' has no decisions"));
      if (bl.trials == 0) throw invalid_argument(where, qnas::detail::cat("block '", bl.name, "' has trials = 0"));
      if (!(bl.energy_share >= 0) || !std::isfinite(bl.energy_share))
        throw invalid_argument(where, qnas::detail::cat("block '", bl.name, "' has energy_share ", bl.energy_share,
                                                        " (must be finite and >= 0)"));
      for (const auto& n : bl.decisions) {
        const auto i = space_.index_of(n);
        if (!i) throw invalid_argument(where, qnas::detail::cat("block '", bl.name, "': no decision '", n, "' in the space"));
        if (owner[*i] >= 0)
          throw invalid_argument(where, qnas::detail::cat("decision '", n, "' is in block '", blocks_[owner[*i]].name,
                                                          "' and in block '", bl.name, "'"));
        owner[*i] = static_cast<int>(b);
      }
    }
    // Decreasing energy share; ties keep the given order (stable), so the schedule is reproducible.
    std::stable_sort(blocks_.begin(), blocks_.end(),
                     [](const block& a, const block& b) { return a.energy_share > b.energy_share; });
    start_block(0);
  }

  /// The blocks in search order.
  [[nodiscard]] const std::vector<block>& blocks() const noexcept { return blocks_; }
  /// Sum of the blocks' trials: the runner's max_trials.
  [[nodiscard]] std::size_t total_trials() const noexcept {
    std::size_t n = 0;
    for (const auto& b : blocks_) n += b.trials;
    return n;
  }
  /// Position (in search order) of the block being searched; blocks().size() when all are done.
  [[nodiscard]] std::size_t current_block() const noexcept { return current_; }
  [[nodiscard]] bool finished() const noexcept { return current_ >= blocks_.size(); }
  /// The candidate with every finished block at its best and the others at their current frozen value.
  [[nodiscard]] const candidate& frozen() const noexcept { return frozen_; }
  [[nodiscard]] const Inner* inner() const noexcept { return inner_ ? &*inner_ : nullptr; }

  /// A candidate of the full space: the current block's decisions from the inner strategy, all
  /// others frozen. After the last block, the final frozen candidate.
  candidate ask() {
    if (finished()) return frozen_;
    ++asked_;
    return embed(inner_->ask());
  }

  /// Passes the reward to the current block's inner strategy and keeps the block's best. The
  /// block ends when it has been told `trials` rewards and no ask is pending (with a batching
  /// runner, use block trial counts that are multiples of the batch size to avoid overshoot).
  void tell(const candidate& c, double reward) {
    detail::check_tell(c, reward, space_, "qnas::search::block_schedule::tell");
    if (finished()) return;
    inner_->tell(extract(c), reward);
    ++told_;
    if (!best_ || reward > best_reward_) best_ = c, best_reward_ = reward;
    if (told_ >= blocks_[current_].trials && told_ >= asked_) {
      frozen_ = *best_;  // this block at its best; earlier blocks are already frozen in c
      start_block(current_ + 1);
    }
  }

  [[nodiscard]] nlohmann::json save() const {
    auto j = detail::save_header(name(), space_, engine_type{});
    j["block"] = current_;
    j["asked"] = asked_;
    j["told"] = told_;
    j["frozen"] = frozen_.choices;
    j["best"] = best_ ? nlohmann::json(best_->choices) : nlohmann::json(nullptr);
    j["best_reward"] = best_reward_;
    j["inner"] = inner_ ? inner_->save() : nlohmann::json(nullptr);
    return j;
  }

  /// Restores a saved state. All or nothing, as the strategies' loads: a state that is refused
  /// (invalid_argument naming the problem) leaves the schedule as it was.
  void load(const nlohmann::json& j) {
    const nlohmann::json before = save();
    try {
      load_state(j);
    } catch (...) {
      load_state(before);
      throw;
    }
  }

  [[nodiscard]] std::string name() const {
    return "block_schedule<" + (inner_ ? inner_->name() : last_inner_name_) + ">";
  }
  [[nodiscard]] const space_description& space() const noexcept { return space_; }

 private:
  void load_state(const nlohmann::json& j) {
    const std::string where = name() + "::load";
    detail::read_state(where, [&] {
      engine_type unused;
      detail::load_header(j, name(), space_, unused);
      const auto b = io::get_integer<std::size_t>(j.at("block"), "block", "qnas::search::block_schedule::load");
      if (b > blocks_.size()) throw invalid_argument(where, qnas::detail::cat("block ", b, " out of range"));
      start_block(b);
      asked_ = io::get_integer<std::size_t>(j.at("asked"), "asked", "qnas::search::block_schedule::load");
      told_ = io::get_integer<std::size_t>(j.at("told"), "told", "qnas::search::block_schedule::load");
      frozen_ = detail::candidate_from_indices(j.at("frozen"), space_, where);
      best_.reset();
      if (!j.at("best").is_null()) best_ = detail::candidate_from_indices(j.at("best"), space_, where);
      best_reward_ = j.at("best_reward").get<double>();
      if (inner_) inner_->load(j.at("inner"));
      check_block_counters(where);
    });
  }

  /// The block's counters must describe a state tell() can leave: tells follow asks, a block
  /// that has all its tells and no pending ask has ended, and a best exists once a reward came.
  void check_block_counters(const std::string& where) const {
    if (finished()) {
      if (asked_ != 0 || told_ != 0 || best_)
        throw invalid_argument(where, qnas::detail::cat("fields 'asked' (", asked_, "), 'told' (", told_,
                                                        ") and 'best' must be empty once every block has ended"));
      return;
    }
    if (told_ > asked_)
      throw invalid_argument(where, qnas::detail::cat("field 'told' is ", told_, ", more than the ", asked_, " asked"));
    if (told_ >= blocks_[current_].trials && told_ >= asked_)
      throw invalid_argument(where, qnas::detail::cat("field 'told' is ", told_, ": block '", blocks_[current_].name,
                                                      "' (", blocks_[current_].trials, " trials) would have ended"));
    if (best_.has_value() != (told_ > 0))
      throw invalid_argument(where, qnas::detail::cat("field 'best' is ", best_ ? "set" : "null", ", but ", told_,
                                                      " rewards were told in this block"));
  }

 public:
  /// Against a checkpoint: the current block's asks are among the trials, and the inner strategy
  /// agrees with the block's own counters.
  void check_counts(const trial_counts& n) const {
    if (asked_ > n.asked || told_ > n.told)
      throw invalid_argument(name() + "::load", qnas::detail::cat("fields 'asked' (", asked_, ") and 'told' (", told_,
                                                                  ") exceed the checkpoint's ", n.asked, " asks and ",
                                                                  n.told, " tells"));
    if (inner_) search::check_counts(*inner_, trial_counts{asked_, told_});
  }

 private:

  void start_block(std::size_t b) {
    if (inner_) last_inner_name_ = inner_->name();
    current_ = b;
    asked_ = told_ = 0;
    best_.reset();
    best_reward_ = 0;
    inner_.reset();
    index_.clear();
    if (b >= blocks_.size()) return;
    std::vector<decision_info> sub;
    for (std::size_t i = 0; i < space_.num_decisions(); ++i)  // full-space order, whatever the block lists
      if (std::find(blocks_[b].decisions.begin(), blocks_[b].decisions.end(), space_[i].name) != blocks_[b].decisions.end()) {
        index_.push_back(i);
        sub.push_back(space_[i]);
      }
    sub_ = space_description(std::move(sub));
    inner_.emplace(make_(sub_, b));
    if (inner_->space() != sub_)
      throw invalid_argument("qnas::search::block_schedule",
                             qnas::detail::cat("the factory's strategy for block '", blocks_[b].name,
                                               "' is not over the block's sub-space"));
    if (last_inner_name_.empty()) last_inner_name_ = inner_->name();
  }
  candidate embed(const candidate& part) const {
    check_candidate(part, sub_, "qnas::search::block_schedule (inner ask)");
    candidate c = frozen_;
    for (std::size_t k = 0; k < index_.size(); ++k) c[index_[k]] = part[k];
    return c;
  }
  candidate extract(const candidate& full) const {
    candidate p;
    for (auto i : index_) p.choices.push_back(full[i]);
    return p;
  }

  space_description space_;
  std::vector<block> blocks_;
  candidate frozen_;
  factory make_;
  std::size_t current_ = 0, asked_ = 0, told_ = 0;
  std::optional<candidate> best_;
  double best_reward_ = 0;
  space_description sub_;
  std::vector<std::size_t> index_;
  std::optional<Inner> inner_;
  std::string last_inner_name_;
};

}  // namespace qnas::search
