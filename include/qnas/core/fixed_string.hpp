// A string usable as a template argument: choice<"conv1.filters", 16, 32>.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace qnas {

/// A compile-time string literal that can be a non-type template parameter.
template <std::size_t N>
struct fixed_string {
  char data[N]{};  // includes the terminating '\0'

  constexpr fixed_string(const char (&s)[N]) noexcept { std::copy_n(s, N, data); }

  [[nodiscard]] constexpr std::size_t size() const noexcept { return N - 1; }
  [[nodiscard]] constexpr std::string_view view() const noexcept { return {data, N - 1}; }
  [[nodiscard]] constexpr operator std::string_view() const noexcept { return view(); }
  [[nodiscard]] constexpr const char* c_str() const noexcept { return data; }

  template <std::size_t M>
  [[nodiscard]] constexpr bool operator==(const fixed_string<M>& o) const noexcept {
    return view() == o.view();
  }
};

template <std::size_t N>
fixed_string(const char (&)[N]) -> fixed_string<N>;

}  // namespace qnas
