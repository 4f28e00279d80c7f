// JSON helpers over nlohmann::json: parsing that names the file and byte, and typed field access that names the key.
//
// nlohmann's own exceptions say "parse error at byte 812" but not of *which* file, and
// `j.at("x").get<int>()` says "type must be number" but not which field of which record. Logs and
// checkpoints are read back by people who need both.
#pragma once

#include <cmath>
#include <filesystem>
#include <string>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/atomic_file.hpp"

namespace qnas::io {

using json = nlohmann::json;

/// Parses `text`; on malformed or truncated input throws qnas::io_error "<source>: ..." with
/// nlohmann's byte position and reason.
inline json parse_json(std::string_view text, std::string_view source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    throw io_error("qnas::io::parse_json",
                   qnas::detail::cat("'", source, "' is not valid JSON (truncated or corrupt?): ", e.what()));
  }
}

/// `v` as the integer type T, refusing what get<T>() would convert silently or with undefined
/// behaviour: a fractional or out-of-range float, a negative value for an unsigned T, or a
/// value beyond T's range. Throws qnas::io_error naming `where` and `key`.
template <class T>
T get_integer(const json& v, std::string_view key, std::string_view where) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "get_integer<T>: T must be an integer type");
  auto refuse = [&](const char* why) {
    return io_error(where, qnas::detail::cat("field '", key, "' ", why, " (it is ", v.dump().substr(0, 40), ")"));
  };
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) throw refuse("is out of range");
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (i < 0 && std::is_unsigned_v<T>) throw refuse("must not be negative");
    if constexpr (std::is_signed_v<T>)
      if (i < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          i > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
        throw refuse("is out of range");
    if constexpr (std::is_unsigned_v<T>)
      if (static_cast<std::uint64_t>(i) > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        throw refuse("is out of range");
    return static_cast<T>(i);
  }
  if (!v.is_number())
    throw io_error(where, qnas::detail::cat("field '", key, "' has the wrong type (", v.type_name(), "): an integer is expected"));
  throw refuse("must be an integer");
}

/// Reads and parses a JSON file (see parse_json for the errors).
inline json read_json_file(const std::filesystem::path& path) { return parse_json(read_file(path), path.string()); }

/// The member `key` of object `j` as T. Throws qnas::io_error naming `where` (e.g. the file),
/// the key and what was found when the member is missing or has the wrong type.
template <class T>
T get_field(const json& j, std::string_view key, std::string_view where) {
  if (!j.is_object())
    throw io_error(where, qnas::detail::cat("expected a JSON object holding '", key, "', got ", j.type_name()));
  const auto it = j.find(key);
  if (it == j.end()) throw io_error(where, qnas::detail::cat("missing field '", key, "'"));
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) return get_integer<T>(*it, key, where);
  try {
    return it->template get<T>();
  } catch (const json::exception& e) {
    throw io_error(where, qnas::detail::cat("field '", key, "' has the wrong type (", it->type_name(), "): ", e.what()));
  }
}

/// The member `key` of `j`, which must exist (any type). Same errors as get_field.
inline const json& get_member(const json& j, std::string_view key, std::string_view where) {
  if (!j.is_object())
    throw io_error(where, qnas::detail::cat("expected a JSON object holding '", key, "', got ", j.type_name()));
  const auto it = j.find(key);
  if (it == j.end()) throw io_error(where, qnas::detail::cat("missing field '", key, "'"));
  return *it;
}

/// A double as JSON, refusing NaN and infinities: nlohmann would silently write `null`, which
/// reads back as a different value (DESIGN.md rule 5: nothing silently dropped).
inline json finite_number(double v, std::string_view what) {
  if (!std::isfinite(v))
    throw invalid_argument("qnas::io::finite_number", qnas::detail::cat(what, " is ", v, ": JSON cannot hold it"));
  return json(v);
}

}  // namespace qnas::io
