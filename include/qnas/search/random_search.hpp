// random_search: candidates drawn uniformly from the space, optionally never the same one twice.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/search/strategy.hpp"

namespace qnas::search {

/// Uniform random search, the baseline every other strategy must beat.
/// With `deduplicate`, a candidate already asked is never asked again (rejection sampling); when
/// every candidate of a (small) space has been asked, ask() throws qnas::error.
class random_search {
 public:
  struct options {
    bool deduplicate = false;
  };

  random_search(const space_description& space, options opt, std::uint64_t seed)
      : space_(space), opt_(opt), engine_(seed) {}
  random_search(const space_description& space, std::uint64_t seed) : random_search(space, options{}, seed) {}

  [[nodiscard]] candidate ask() {
    if (!opt_.deduplicate) return detail::uniform_candidate(space_, engine_);
    if (const auto n = space_.exact_size(); n && seen_.size() >= *n)
      throw error("random_search::ask", detail::cat("all ", *n, " candidates of the space have been asked"));
    for (;;) {
      auto c = detail::uniform_candidate(space_, engine_);
      if (seen_.insert(c).second) {
        order_.push_back(c);  // insertion order: save() must not depend on hash-set iteration order
        return c;
      }
    }
  }

  /// Random search ignores rewards; tell still validates them, like every strategy.
  void tell(const candidate& c, double reward) { detail::check_tell(c, reward, space_, "random_search::tell"); }

  [[nodiscard]] nlohmann::json save() const {
    auto j = detail::save_header(name(), space_, engine_);
    j["deduplicate"] = opt_.deduplicate;
    nlohmann::json seen = nlohmann::json::array();
    for (const auto& c : order_) seen.push_back(c.choices);
    j["seen"] = std::move(seen);
    return j;
  }

  void load(const nlohmann::json& j) {
    detail::read_state("qnas::search::random_search::load", [&] {
      constexpr const char* where = "random_search::load";
      engine_type e;
      detail::load_header(j, name(), space_, e);
      std::vector<candidate> order;
      for (const auto& c : j.at("seen")) order.push_back(detail::candidate_from_indices(c, space_, where));
      const bool deduplicate = j.at("deduplicate").get<bool>();
      // Only a de-duplicating search records its asks, each one once.
      if (!deduplicate && !order.empty())
        throw invalid_argument(where, detail::cat("field 'seen' lists ", order.size(),
                                                  " candidates but 'deduplicate' is false (nothing is recorded then)"));
      std::unordered_set<candidate> seen(order.begin(), order.end());
      if (seen.size() != order.size())
        throw invalid_argument(where, "field 'seen' lists a candidate twice (a de-duplicating search asks each once)");
      engine_ = e;
      opt_.deduplicate = deduplicate;
      order_ = std::move(order);
      seen_ = std::move(seen);
    });
  }

  /// With deduplicate, every ask is recorded in 'seen': their number is the number of asks.
  void check_counts(const trial_counts& n) const {
    if (opt_.deduplicate && order_.size() != n.asked)
      throw invalid_argument("random_search::load", detail::cat("field 'seen' lists ", order_.size(),
                                                                " candidates, but ", n.asked, " were asked"));
  }

  [[nodiscard]] std::string name() const { return "random_search"; }
  [[nodiscard]] const space_description& space() const noexcept { return space_; }

 private:
  space_description space_;
  options opt_;
  engine_type engine_;
  std::unordered_set<candidate> seen_;
  std::vector<candidate> order_;
};

static_assert(strategy<random_search>);

}  // namespace qnas::search
