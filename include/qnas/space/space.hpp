// A search space as a type, space<D1, D2, ...>, and typed access to a candidate's values.
//
// The space type knows every decision at compile time (decisions_of, space_size_v); its run-time
// description (describe) is what strategies see. A candidate's value for one decision is read
// with get<"name"> (a choice's value) or dispatched to a generic visitor with visit<"name">
// through a table of one handler per alternative of THAT decision, built once per
// (decision, visitor) pair: instantiations grow with the sum of alternatives, never their
// product (DESIGN.md section 3, rule 1).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

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

}  // namespace qnas
