// The run-time side of a search space: its decision list (space_description) and a candidate.
//
// Strategies, the runner, logs and checkpoints only ever see these two values, never the space
// *type* (DESIGN.md section 3, rules 1 and 3). `describe<Space>()` (space/space.hpp) builds a
// space_description from a space type; a strategy over a plain description needs no types at all.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/core/diagnostics.hpp"

namespace qnas {

/// How a strategy may treat the alternatives of a decision. Ordinal alternatives are ordered
/// (filters 16 < 32 < 64: a mutation may step to a neighbour); categorical ones are not
/// (formats, layer ops).
enum class decision_kind { ordinal, categorical };

constexpr const char* to_string(decision_kind k) noexcept {
  return k == decision_kind::ordinal ? "ordinal" : "categorical";
}

/// One decision of a space: its unique name, kind, number of alternatives and their labels
/// (labels are what logs and JSON show, so they must be unique within the decision).
struct decision_info {
  std::string name;
  decision_kind kind = decision_kind::categorical;
  std::size_t cardinality = 0;
  std::vector<std::string> labels;

  bool operator==(const decision_info&) const = default;
};

namespace detail {
// FNV-1a, 64 bit: stable across compilers and platforms (std::hash is not), so a checkpoint
// fingerprint written by one build is recognised by another.
struct fnv1a64 {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  void bytes(std::string_view s) noexcept {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  }
  void field(std::string_view s) noexcept {  // length-prefixed: ("ab","c") != ("a","bc")
    number(s.size());
    bytes(s);
  }
  void number(std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xffU;
      h *= 0x100000001b3ULL;
    }
  }
};
}  // namespace detail

/// The decision list of a search space as a value: what every strategy is constructed from.
/// Invariants (checked by the constructor, which throws qnas::invalid_argument): names are
/// non-empty and unique, every cardinality is >= 1, there is one unique label per alternative.
class space_description {
 public:
  space_description() = default;

  /// Validates `decisions`. A decision given with no labels gets "0", "1", ... as labels.
  explicit space_description(std::vector<decision_info> decisions) : decisions_(std::move(decisions)) {
    constexpr const char* where = "qnas::space_description";
    for (std::size_t i = 0; i < decisions_.size(); ++i) {
      auto& d = decisions_[i];
      if (d.name.empty()) throw invalid_argument(where, detail::cat("decision #", i, " has an empty name"));
      for (std::size_t j = 0; j < i; ++j)
        if (decisions_[j].name == d.name)
          throw invalid_argument(where, detail::cat("decision name '", d.name, "' appears twice (#", j, " and #", i, ")"));
      if (d.cardinality == 0)
        throw invalid_argument(where, detail::cat("decision '", d.name, "' has no alternatives"));
      if (d.cardinality > std::numeric_limits<std::uint32_t>::max())
        throw invalid_argument(where, detail::cat("decision '", d.name, "' has more than 2^32-1 alternatives"));
      if (d.labels.empty())
        for (std::size_t k = 0; k < d.cardinality; ++k) d.labels.push_back(std::to_string(k));
      if (d.labels.size() != d.cardinality)
        throw invalid_argument(where, detail::cat("decision '", d.name, "' has ", d.labels.size(), " labels for ",
                                                  d.cardinality, " alternatives"));
      for (std::size_t a = 0; a < d.labels.size(); ++a)
        for (std::size_t b = 0; b < a; ++b)
          if (d.labels[a] == d.labels[b])
            throw invalid_argument(where, detail::cat("decision '", d.name, "': label '", d.labels[a],
                                                      "' is used by alternatives ", b, " and ", a));
    }
  }

  [[nodiscard]] const std::vector<decision_info>& decisions() const noexcept { return decisions_; }
  [[nodiscard]] std::size_t num_decisions() const noexcept { return decisions_.size(); }
  [[nodiscard]] const decision_info& operator[](std::size_t i) const noexcept { return decisions_[i]; }
  [[nodiscard]] std::size_t cardinality(std::size_t i) const noexcept { return decisions_[i].cardinality; }

  /// Number of candidates (product of cardinalities) as a double: spaces of 10^30 are common.
  [[nodiscard]] double size() const noexcept {
    double s = 1.0;
    for (const auto& d : decisions_) s *= static_cast<double>(d.cardinality);
    return s;
  }
  /// The exact number of candidates, or nullopt when it does not fit in 64 bits.
  [[nodiscard]] std::optional<std::uint64_t> exact_size() const noexcept {
    std::uint64_t s = 1;
    for (const auto& d : decisions_) {
      if (s > std::numeric_limits<std::uint64_t>::max() / d.cardinality) return std::nullopt;
      s *= d.cardinality;
    }
    return s;
  }

  /// Position of the decision called `name`, or nullopt.
  [[nodiscard]] std::optional<std::size_t> index_of(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < decisions_.size(); ++i)
      if (decisions_[i].name == name) return i;
    return std::nullopt;
  }

  /// A stable 64-bit hash of the names, kinds and labels (in order). Two descriptions with the
  /// same fingerprint accept the same candidates with the same meaning, so a checkpoint or log
  /// written for one space is refused by another.
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    detail::fnv1a64 f;
    f.number(decisions_.size());
    for (const auto& d : decisions_) {
      f.field(d.name);
      f.number(d.kind == decision_kind::ordinal ? 1 : 2);
      f.number(d.labels.size());
      for (const auto& l : d.labels) f.field(l);
    }
    return f.h;
  }
  /// fingerprint() as 16 lower-case hex digits (JSON numbers cannot hold 64 bits exactly everywhere).
  [[nodiscard]] std::string fingerprint_hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s(16, '0');
    auto v = fingerprint();
    for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 0xfU];
    return s;
  }

  bool operator==(const space_description&) const = default;

 private:
  std::vector<decision_info> decisions_;
};

/// One point of a space: the index of the chosen alternative of every decision, in the order
/// of the space_description. A plain value: cheap to copy, hash and compare.
struct candidate {
  std::vector<std::uint32_t> choices;

  candidate() = default;
  explicit candidate(std::vector<std::uint32_t> c) : choices(std::move(c)) {}

  [[nodiscard]] std::size_t size() const noexcept { return choices.size(); }
  [[nodiscard]] std::uint32_t operator[](std::size_t i) const noexcept { return choices[i]; }
  [[nodiscard]] std::uint32_t& operator[](std::size_t i) noexcept { return choices[i]; }

  bool operator==(const candidate&) const = default;
  auto operator<=>(const candidate&) const = default;

  /// Prints the raw indices, "[0 2 1]" (use to_string(c, space) for names and labels).
  friend std::ostream& operator<<(std::ostream& os, const candidate& c) {
    os << '[';
    for (std::size_t i = 0; i < c.choices.size(); ++i) os << (i ? " " : "") << c.choices[i];
    return os << ']';
  }
};

/// Throws qnas::invalid_argument unless `c` has one in-range index per decision of `space`.
inline void check_candidate(const candidate& c, const space_description& space, std::string_view where) {
  if (c.size() != space.num_decisions())
    throw invalid_argument(where, detail::cat("candidate ", c, " has ", c.size(), " choices, the space has ",
                                              space.num_decisions(), " decisions"));
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c[i] >= space.cardinality(i))
      throw invalid_argument(where, detail::cat("candidate ", c, ": decision '", space[i].name, "' has index ", c[i],
                                                ", it has only ", space.cardinality(i), " alternatives"));
}

/// "conv1.filters=32 conv1.w=fixed_point<8,0> block3=skip": what logs and reports print.
inline std::string to_string(const candidate& c, const space_description& space) {
  check_candidate(c, space, "qnas::to_string(candidate)");
  std::string s;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (i) s += ' ';
    s += space[i].name;
    s += '=';
    s += space[i].labels[c[i]];
  }
  return s;
}

/// {"conv1.filters": "32", "conv1.w": "fixed_point<8,0>"}: keyed by decision names and labels,
/// so it stays meaningful when a later build reorders or extends the space.
inline nlohmann::json to_json(const candidate& c, const space_description& space) {
  check_candidate(c, space, "qnas::to_json(candidate)");
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t i = 0; i < c.size(); ++i) j[space[i].name] = space[i].labels[c[i]];
  return j;
}

/// Reads what to_json wrote. Throws qnas::invalid_argument naming the decision when a name is
/// unknown or missing, or a label is not one of the decision's alternatives.
inline candidate candidate_from_json(const nlohmann::json& j, const space_description& space) {
  constexpr const char* where = "qnas::candidate_from_json";
  if (!j.is_object()) throw invalid_argument(where, "expected a JSON object {decision name: label}, got " + j.dump());
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!space.index_of(it.key()))
      throw invalid_argument(where, detail::cat("unknown decision '", it.key(), "' (not in this space)"));
  candidate c;
  c.choices.resize(space.num_decisions());
  for (std::size_t i = 0; i < space.num_decisions(); ++i) {
    const auto& d = space[i];
    const auto it = j.find(d.name);
    if (it == j.end()) throw invalid_argument(where, detail::cat("decision '", d.name, "' is missing"));
    if (!it->is_string())
      throw invalid_argument(where, detail::cat("decision '", d.name, "': expected a label string, got ", it->dump()));
    const auto& label = it->get_ref<const std::string&>();
    std::size_t k = 0;
    while (k < d.labels.size() && d.labels[k] != label) ++k;
    if (k == d.labels.size())
      throw invalid_argument(where, detail::cat("decision '", d.name, "': '", label, "' is not one of its ",
                                                d.cardinality, " alternatives"));
    c[i] = static_cast<std::uint32_t>(k);
  }
  return c;
}

/// The description as JSON: {"fingerprint": "...", "decisions": [{name, kind, labels}, ...]}.
inline nlohmann::json to_json(const space_description& space) {
  nlohmann::json ds = nlohmann::json::array();
  for (const auto& d : space.decisions())
    ds.push_back({{"name", d.name}, {"kind", to_string(d.kind)}, {"labels", d.labels}});
  return {{"fingerprint", space.fingerprint_hex()}, {"decisions", std::move(ds)}};
}

/// Reads what to_json(space_description) wrote; validates like the constructor and checks the
/// stored fingerprint when present.
inline space_description space_description_from_json(const nlohmann::json& j) {
  constexpr const char* where = "qnas::space_description_from_json";
  try {
    if (!j.is_object() || !j.contains("decisions") || !j["decisions"].is_array())
      throw invalid_argument(where, "expected {\"decisions\": [...]}");
    std::vector<decision_info> ds;
    for (const auto& e : j["decisions"]) {
      if (!e.is_object() || !e.contains("name") || !e.contains("kind") || !e.contains("labels"))
        throw invalid_argument(where, "each decision needs name, kind and labels: " + e.dump());
      decision_info d;
      d.name = e["name"].get<std::string>();
      const auto kind = e["kind"].get<std::string>();
      if (kind == "ordinal")
        d.kind = decision_kind::ordinal;
      else if (kind == "categorical")
        d.kind = decision_kind::categorical;
      else
        throw invalid_argument(where, detail::cat("decision '", d.name, "': unknown kind '", kind, "'"));
      d.labels = e["labels"].get<std::vector<std::string>>();
      d.cardinality = d.labels.size();
      ds.push_back(std::move(d));
    }
    space_description s(std::move(ds));
    if (j.contains("fingerprint") && j["fingerprint"].get<std::string>() != s.fingerprint_hex())
      throw invalid_argument(where, "stored fingerprint " + j["fingerprint"].get<std::string>() +
                                        " does not match the decisions (" + s.fingerprint_hex() + ")");
    return s;
  } catch (const nlohmann::json::exception& e) {  // a member of the wrong JSON type
    throw invalid_argument(where, detail::cat("malformed space description: ", e.what()));
  }
}

}  // namespace qnas

/// Hashing, so candidates can key unordered containers (de-duplication, caches).
template <>
struct std::hash<qnas::candidate> {
  std::size_t operator()(const qnas::candidate& c) const noexcept {
    qnas::detail::fnv1a64 f;
    for (auto v : c.choices) f.number(v);
    return static_cast<std::size_t>(f.h);
  }
};
