// A search space as a type, space<D1, D2, ...>, and typed access to a candidate's values.
//
// The space type knows every decision at compile time (decisions_of, space_size_v); its run-time
// description (describe) is what strategies see. A candidate's value for one decision is read
// with get<"name"> (a choice's value) or dispatched to a generic visitor with visit<"name">
// through a table of one handler per alternative of THAT decision, built once per
// (decision, visitor) pair: instantiations grow with the sum of alternatives, never their
// product (DESIGN.md section 3, rule 1). candidate_of<S>(value<"name", V>, type<"name", T>, ...)
// builds a candidate from decision names and alternatives, checked at compile time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/hana/core/tag_of.hpp>
#include <boost/hana/size.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>
#include <boost/hana/unpack.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/core/fixed_string.hpp"
#include "qnas/space/candidate.hpp"
#include "qnas/space/decision.hpp"

namespace qnas {

/// A search space: a flat list of decisions with unique names. The position of a decision in
/// the list is its index in a candidate.
template <class... Ds>
struct space {
  static_assert((decision<Ds> && ...),
                "space<Decisions...>: every parameter must be a decision (choice, type_choice, optional)");

  static constexpr std::size_t num_decisions = sizeof...(Ds);
  static constexpr std::array<std::string_view, sizeof...(Ds)> names{Ds::name.view()...};
  static_assert(detail::distinct_values(names), "space<Decisions...>: decision names must be unique (a name is used twice)");

  /// Index of the decision called `name`, or num_decisions when there is none.
  static constexpr std::size_t index_of(std::string_view name) noexcept {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return i;
    return num_decisions;
  }
};

template <class S>
struct is_space : std::false_type {};
template <class... Ds>
struct is_space<space<Ds...>> : std::true_type {};

/// A type that is a qnas::space<...>.
template <class S>
concept space_type = is_space<S>::value;

namespace detail {
template <class S>
struct space_traits;
template <class... Ds>
struct space_traits<space<Ds...>> {
  static constexpr auto decisions = boost::hana::tuple_t<Ds...>;
  static constexpr double size = (1.0 * ... * static_cast<double>(Ds::cardinality));
  template <std::size_t I>
  using decision_at = std::tuple_element_t<I, std::tuple<Ds...>>;
  static space_description describe() { return space_description({info_of_decision<Ds>()...}); }
};
}  // namespace detail

/// The decisions of a space as a Boost.Hana tuple of hana::type<D>: iterate over it with
/// hana::for_each to read names, kinds, cardinalities and alternatives at compile time.
template <space_type S>
inline constexpr auto decisions_of = detail::space_traits<S>::decisions;

/// The number of candidates of a space (a double: the product overflows integers quickly).
template <space_type S>
inline constexpr double space_size_v = detail::space_traits<S>::size;

/// The decision type called Name in S (the static_assert names an unknown Name).
template <space_type S, fixed_string Name>
struct decision_named {
  static constexpr std::size_t index = S::index_of(Name.view());
  static_assert(index < S::num_decisions, "get<Name>/visit<Name>: the space has no decision with this Name");
  using type = typename detail::space_traits<S>::template decision_at<(index < S::num_decisions ? index : 0)>;
};

/// The run-time description of S (names, kinds, cardinalities, labels); built once.
template <space_type S>
const space_description& describe() {
  static const space_description d = detail::space_traits<S>::describe();
  return d;
}
template <space_type S>
const space_description& describe(const S&) {
  return describe<S>();
}

namespace detail {
template <space_type S>
void check_for_space(const candidate& c, std::string_view where) {
  // Cheap checks on the hot path: length and the one index that is read.
  if (c.size() != S::num_decisions)
    throw invalid_argument(where, cat("candidate ", c, " has ", c.size(), " choices, the space has ",
                                      S::num_decisions, " decisions"));
}

template <class D>
std::size_t checked_index(const candidate& c, std::size_t i, std::string_view where) {
  if (c[i] >= D::cardinality)
    throw invalid_argument(where, cat("candidate ", c, ": decision '", D::name.view(), "' has index ", c[i],
                                      ", it has only ", D::cardinality, " alternatives"));
  return c[i];
}

// The handler of one alternative: calls the visitor with that alternative's tag.
template <class F, class R, class Tag>
R invoke_alternative(F& f) {
  return static_cast<R>(f(Tag{}));
}

// Function objects for hana::unpack (named, not lambdas: GCC 12 crashes on a lambda pack
// expansion inside a constexpr static member initialiser).
template <class F>
struct visit_result {
  template <class... Tags>
  std::common_type<std::invoke_result_t<F&, Tags>...> operator()(Tags...) const;  // decltype only
};
template <class F, class R>
struct make_handlers {
  template <class... Tags>
  constexpr std::array<R (*)(F&), sizeof...(Tags)> operator()(Tags...) const {
    return {&invoke_alternative<F, R, Tags>...};
  }
};

/// One handler per alternative of decision D for visitor F: the dispatch table. Its size is
/// D::cardinality; nothing here depends on any other decision.
template <class D, class F>
struct dispatch_table {
  using result_type = typename decltype(boost::hana::unpack(D::alternatives, visit_result<F>{}))::type;
  static constexpr std::array<result_type (*)(F&), D::cardinality> table =
      boost::hana::unpack(D::alternatives, make_handlers<F, result_type>{});
};
}  // namespace detail

/// The value a candidate chose for decision Name: a choice's value, a type_choice's index, or
/// whether an optional is included.
template <fixed_string Name, space_type S>
auto get(const S&, const candidate& c) {
  using named = decision_named<S, Name>;
  using D = typename named::type;
  detail::check_for_space<S>(c, "qnas::get");
  const auto k = detail::checked_index<D>(c, named::index, "qnas::get");
  if constexpr (requires { D::values; })
    return D::values[k];
  else if constexpr (requires { typename D::type; })  // optional
    return k == 1;
  else
    return k;
}

/// Calls `f(tag)` with the tag of the alternative the candidate chose for decision Name
/// (`hana::type<T>` for type_choice and optional, `std::integral_constant<T, V>` for choice) and
/// returns what f returns (the common type over alternatives). Dispatch is one indexed call
/// through a table of D::cardinality handlers.
template <fixed_string Name, space_type S, class F>
decltype(auto) visit(const S&, const candidate& c, F&& f) {
  using named = decision_named<S, Name>;
  using D = typename named::type;
  using table = detail::dispatch_table<D, std::remove_reference_t<F>>;
  detail::check_for_space<S>(c, "qnas::visit");
  const auto k = detail::checked_index<D>(c, named::index, "qnas::visit");
  return table::table[k](f);
}

/// One decision's alternative given by value, for candidate_of: `value<"conv1.filters", 32>` (a
/// choice's value; integers compare by value whatever their type, other values must have the
/// choice's value type) or `value<"block3", true>` (an optional decision included; false: skipped).
template <fixed_string Name, auto V>
struct named_value {
  static constexpr fixed_string name = Name;
  static constexpr auto alternative = V;
};
/// One decision's alternative given by type, for candidate_of: `type<"conv1.w", fixed_point<8, 0>>`
/// (a type_choice's type; for an optional decision its layer type, or qnas::skip).
template <fixed_string Name, class T>
struct named_type {
  static constexpr fixed_string name = Name;
  using alternative = T;
};

template <fixed_string Name, auto V>
inline constexpr named_value<Name, V> value{};
template <fixed_string Name, class T>
inline constexpr named_type<Name, T> type{};

namespace detail {
template <class A>
struct is_named_alternative : std::false_type {};
template <fixed_string Name, auto V>
struct is_named_alternative<named_value<Name, V>> : std::true_type {};
template <fixed_string Name, class T>
struct is_named_alternative<named_type<Name, T>> : std::true_type {};

template <class D>
struct is_optional_decision : std::false_type {};
template <fixed_string Name, class Layer>
struct is_optional_decision<optional<Name, Layer>> : std::true_type {};

template <class Tag>
inline constexpr bool is_type_tag_v = std::is_same_v<boost::hana::tag_of_t<Tag>, boost::hana::type_tag>;

// Whether the alternative tagged Tag (integral_constant<U, W> or hana::type<U>) is the value V.
template <class Tag, auto V>
constexpr bool alternative_is_value() {
  if constexpr (is_type_tag_v<Tag> || !requires { Tag::value; }) {
    return false;
  } else {
    using A = std::remove_cv_t<decltype(Tag::value)>;
    using B = std::remove_cv_t<decltype(V)>;
    if constexpr (std::is_integral_v<A> && std::is_integral_v<B> && !std::is_same_v<A, bool> && !std::is_same_v<B, bool>)
      return std::cmp_equal(Tag::value, V);
    else if constexpr (std::is_same_v<A, B>)
      return Tag::value == V;
    else
      return false;
  }
}
// Whether the alternative tagged Tag is the type T.
template <class Tag, class T>
constexpr bool alternative_is_type() {
  if constexpr (is_type_tag_v<Tag>)
    return std::is_same_v<typename Tag::type, T>;
  else
    return false;
}

// Function objects for hana::unpack over D::alternatives: the index of the matching
// alternative, or the number of alternatives when none matches.
template <class Named>
struct find_alternative {
  template <class... Tags>
  constexpr std::size_t operator()(Tags...) const {
    constexpr bool match[] = {matches<Tags>()..., false};
    for (std::size_t k = 0; k < sizeof...(Tags); ++k)
      if (match[k]) return k;
    return sizeof...(Tags);
  }
  template <class Tag>
  static constexpr bool matches() {
    if constexpr (requires { typename Named::alternative; })
      return alternative_is_type<Tag, typename Named::alternative>();
    else
      return alternative_is_value<Tag, Named::alternative>();
  }
};

template <class D, class Named>
constexpr std::size_t alternative_index() {
  constexpr std::size_t k = boost::hana::unpack(D::alternatives, find_alternative<Named>{});
  if constexpr (k == D::cardinality && is_optional_decision<D>::value && !requires { typename Named::alternative; }) {
    if constexpr (std::is_same_v<std::remove_cv_t<decltype(Named::alternative)>, bool>)
      return Named::alternative ? 1 : 0;  // value<"block3", true>: included
    else
      return k;
  } else {
    return k;
  }
}

// The checks, one function per rule, so the compiler's "in instantiation of" line names the
// decision (Name = "...") whose value is wrong.
template <fixed_string Name, bool Known>
constexpr void candidate_of_name_is_known() {
  static_assert(Known, "candidate_of<Space>(value<Name, V> / type<Name, T>, ...): the space has no decision with this Name");
}
template <fixed_string Name, bool Once>
constexpr void candidate_of_name_given_once() {
  static_assert(Once, "candidate_of<Space>(...): the decision Name is given more than once");
}
template <fixed_string Name, bool IsAlternative>
constexpr void candidate_of_alternative_exists() {
  static_assert(IsAlternative,
                "candidate_of<Space>(value<Name, V> / type<Name, T>, ...): V / T is not one of the alternatives of "
                "decision Name");
}
template <fixed_string Name, bool Given>
constexpr void candidate_of_decision_given() {
  static_assert(Given, "candidate_of<Space>(...): decision Name has no value; name every decision of the space");
}

template <class S, class... Named>
struct candidate_builder;
template <class... Ds, class... Named>
struct candidate_builder<space<Ds...>, Named...> {
  using S = space<Ds...>;
  template <class D>
  static constexpr bool given = ((Named::name.view() == D::name.view()) || ... || false);

  template <class N>
  static constexpr std::uint32_t index_of_argument() {
    constexpr std::size_t d = S::index_of(N::name.view());
    candidate_of_name_is_known<N::name, (d < S::num_decisions)>();
    if constexpr (d < S::num_decisions) {
      constexpr std::size_t times = (std::size_t{0} + ... + std::size_t{Named::name.view() == N::name.view()});
      candidate_of_name_given_once<N::name, (times == 1)>();
      using D = typename space_traits<S>::template decision_at<d>;
      constexpr std::size_t k = alternative_index<D, N>();
      candidate_of_alternative_exists<N::name, (k < D::cardinality)>();
      return static_cast<std::uint32_t>(k < D::cardinality ? k : 0);
    } else {
      return 0;
    }
  }

  // The arguments are checked first (unknown name, named twice, not an alternative), then that
  // every decision is named: a misspelt name is reported as such, not as the decision it missed.
  static constexpr std::array<std::uint32_t, sizeof...(Ds)> indices() {
    std::array<std::uint32_t, sizeof...(Ds)> out{};
    ((out[S::index_of(Named::name.view()) < sizeof...(Ds) ? S::index_of(Named::name.view()) : 0] =
          index_of_argument<Named>()),
     ...);
    (candidate_of_decision_given<Ds::name, given<Ds>>(), ...);
    return out;
  }
};
}  // namespace detail

/// The candidate of S that takes, for every decision, the alternative named by an argument:
///
///   const candidate ref = candidate_of<my_space>(value<"conv1.filters", 32>,
///                                                type<"conv1.w", fixed_point<8, 0>>,
///                                                value<"block3", false>);
///
/// Arguments may come in any order; every decision of S must be named exactly once (no silent
/// default: a decision added to the space later is an error here, not a quiet alternative 0).
/// A name that is not a decision of S, a value or type that is not one of the decision's
/// alternatives, a decision named twice or not at all fail to compile with a message stating the
/// rule, and the "in instantiation of" line that goes with it names the decision (Name = "...").
template <space_type S, class... Named>
candidate candidate_of(Named...) {
  static_assert((detail::is_named_alternative<Named>::value && ...),
                "candidate_of<Space>(args...): every argument must be value<Name, V> or type<Name, T>");
  static constexpr std::array<std::uint32_t, S::num_decisions> indices = detail::candidate_builder<S, Named...>::indices();
  return candidate(std::vector<std::uint32_t>(indices.begin(), indices.end()));
}

}  // namespace qnas
