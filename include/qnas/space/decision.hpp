// Decision types: choice (ordinal values), type_choice (categorical over types), optional (skip or include).
//
// A decision is a type that carries, at compile time, its name (a fixed_string), its kind, its
// number of alternatives and the alternatives themselves as a Boost.Hana tuple of *tags*
// (`std::integral_constant<T, V>` for a choice value, `hana::type<T>` for a type). Hardware
// parameters are ordinary choices: `choice<"hw.pe_rows", 8, 16, 32>`.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include "qnas/core/fixed_string.hpp"
#include "qnas/space/candidate.hpp"

namespace qnas {

namespace detail {

/// A readable name of a type for labels when it has no `name()`: parsed from the compiler's
/// pretty function name (GCC and Clang spell it "... [with T = <type>; ...]" / "[T = <type>]").
template <class T>
constexpr std::string_view pretty_type_name() noexcept {
  std::string_view p = __PRETTY_FUNCTION__;
  const auto b = p.find("T = ") + 4;
  auto e = p.find_first_of(";]", b);
  return p.substr(b, e - b);
}

/// The label of a type alternative: T::name() when T has one (formats, layers), else its
/// spelled type.
template <class T>
std::string type_label() {
  if constexpr (requires { { T::name() } -> std::convertible_to<std::string>; })
    return std::string(T::name());
  else
    return std::string(pretty_type_name<T>());
}

template <class V>
std::string value_label(const V& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

template <class... Vs>
struct common_value {
  using type = std::common_type_t<Vs...>;
};
template <>
struct common_value<> {  // only reached by an empty choice, which its static_assert rejects
  using type = int;
};

template <class T, class... Us>
inline constexpr std::size_t count_same_v = (std::size_t{0} + ... + std::size_t{std::is_same_v<T, Us>});

template <class... Ts>
inline constexpr bool distinct_types_v = ((count_same_v<Ts, Ts...> == 1) && ...);

template <class V, std::size_t N>
constexpr bool distinct_values(const std::array<V, N>& a) noexcept {
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (a[i] == a[j]) return false;
  return true;
}

}  // namespace detail

/// An ordinal decision over values (filters, units, bits, hardware sizes):
/// `choice<"conv1.filters", 16, 32, 64>`. The index order is the order given: a mutation may
/// step to a neighbouring index, so list the values in their natural order.
template <fixed_string Name, auto... Values>
struct choice {
  static_assert(Name.size() > 0, "choice<Name, Values...>: Name must not be empty");
  static_assert(sizeof...(Values) > 0, "choice<Name, Values...>: Values must not be empty (a decision needs at least one alternative)");

  using value_type = typename detail::common_value<decltype(Values)...>::type;
  static constexpr fixed_string name = Name;
  static constexpr decision_kind kind = decision_kind::ordinal;
  static constexpr std::size_t cardinality = sizeof...(Values);
  static constexpr std::array<value_type, cardinality> values{static_cast<value_type>(Values)...};
  static_assert(detail::distinct_values(values), "choice<Name, Values...>: Values must be distinct (a value is listed twice)");

  /// The alternatives as compile-time tags, passed to visitors: integral_constant<T, V>.
  static constexpr auto alternatives = boost::hana::make_tuple(std::integral_constant<decltype(Values), Values>{}...);

  static std::vector<std::string> labels() { return {detail::value_label(Values)...}; }
};

/// A categorical decision over types: number formats, layer ops, user types.
/// `type_choice<"conv1.w", fixed_point<8, 0>, fixed_point<4, 0>>`. Labels are the types'
/// `name()` (or their spelled type).
template <fixed_string Name, class... Ts>
struct type_choice {
  static_assert(Name.size() > 0, "type_choice<Name, Ts...>: Name must not be empty");
  static_assert(sizeof...(Ts) > 0, "type_choice<Name, Ts...>: Ts must not be empty (a decision needs at least one alternative)");
  static_assert(detail::distinct_types_v<Ts...>, "type_choice<Name, Ts...>: Ts must be distinct (a type is listed twice)");

  static constexpr fixed_string name = Name;
  static constexpr decision_kind kind = decision_kind::categorical;
  static constexpr std::size_t cardinality = sizeof...(Ts);
  /// The alternatives as compile-time tags, passed to visitors: hana::type<T>.
  static constexpr auto alternatives = boost::hana::tuple_t<Ts...>;

  static std::vector<std::string> labels() { return {detail::type_label<Ts>()...}; }
};

/// The "absent" alternative of an optional decision.
struct skip {
  static std::string name() { return "skip"; }
};

/// Whether a block is in the network: `optional<"block3", Layer>`; alternative 0 is `skip`,
/// alternative 1 is `Layer`. Labels are "skip" and "include".
template <fixed_string Name, class Layer>
struct optional {
  static_assert(Name.size() > 0, "optional<Name, Layer>: Name must not be empty");
  static_assert(!std::is_same_v<Layer, skip>, "optional<Name, Layer>: Layer must not be qnas::skip");

  using type = Layer;
  static constexpr fixed_string name = Name;
  static constexpr decision_kind kind = decision_kind::categorical;
  static constexpr std::size_t cardinality = 2;
  static constexpr auto alternatives = boost::hana::tuple_t<skip, Layer>;

  static std::vector<std::string> labels() { return {"skip", "include"}; }
};

/// What a space accepts as a decision: a named, non-empty list of alternatives with labels.
template <class D>
concept decision = requires {
  { D::name.view() } -> std::same_as<std::string_view>;
  { D::kind } -> std::convertible_to<decision_kind>;
  { D::cardinality } -> std::convertible_to<std::size_t>;
  { D::labels() } -> std::same_as<std::vector<std::string>>;
  D::alternatives;
} && (D::cardinality > 0);

/// The run-time description of one decision type.
template <decision D>
decision_info info_of_decision() {
  return {std::string(D::name.view()), D::kind, D::cardinality, D::labels()};
}

}  // namespace qnas
