// Exceptions that tell a person what went wrong, where, and why.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace qnas {

/// Base of every exception qnas throws. `what()` reads "<where>: <message>".
class error : public std::runtime_error {
 public:
  error(std::string_view where, std::string_view message)
      : std::runtime_error(std::string(where) + ": " + std::string(message)), where_(where) {}
  [[nodiscard]] const std::string& where() const noexcept { return where_; }

 private:
  std::string where_;
};

/// A value the caller passed is outside what the callee accepts.
class invalid_argument : public error {
  using error::error;
};

/// A file or stream could not be read or written, or its content is malformed.
class io_error : public error {
  using error::error;
};

namespace detail {
/// Concatenates streamable pieces into one message: cat("axis ", 3, " out of range").
template <class... Ts>
std::string cat(const Ts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
}  // namespace detail

}  // namespace qnas
