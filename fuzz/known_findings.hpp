// Fuzz findings that are reported but not yet fixed in the library, tolerated unless QNAS_FUZZ_STRICT=1.
//
// A fuzz smoke run in CI guards against new bugs; a known, reported one would only keep it red.
// Each tolerated case is printed once per run (so it stays visible), and QNAS_FUZZ_STRICT=1
// turns it back into a crash to reproduce it or to check a fix. docs/bad_input.md lists them.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace qnas_fuzz {

inline bool strict() {
  static const bool s = [] {
    const char* v = std::getenv("QNAS_FUZZ_STRICT");
    return v && *v == '1';
  }();
  return s;
}

/// A known, reported contract violation by `who`, described by `what`.
inline void known_finding(const char* target, const std::string& who, const char* what) {
  if (strict()) {
    std::fprintf(stderr, "%s: %s: %s (QNAS_FUZZ_STRICT=1)\n", target, who.c_str(), what);
    std::abort();
  }
  static std::set<std::string> told;
  if (told.insert(who).second)
    std::fprintf(stderr, "%s: known finding (tolerated, reported): %s: %s\n", target,
                 who.c_str(), what);
}

/// Known finding: qnas::io::get_field<T> (io/json.hpp) and trial_record_from_json read integer
/// fields with nlohmann's get<T>(), which static_casts a JSON float: {"batch_size": 1e65} or
/// {"trial": -2.5} is a float-to-integer conversion out of range (undefined behaviour, caught by
/// UBSan) instead of a refusal. True when `j` holds such a value under one of the integer keys
/// of checkpoints and trial records; the harness then skips the input (unless strict).
inline bool float_in_integer_field(const nlohmann::json& j) {
  static constexpr std::string_view keys[] = {"version", "bytes", "crc32", "trials", "rejected", "batch_size", "trial"};
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it->is_number_float()) {
        const double v = it->get<double>();
        for (auto k : keys)
          if (it.key() == k && !(v > -1.0 && v < 2147483648.0)) return true;
      }
      if (float_in_integer_field(*it)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& e : j)
      if (float_in_integer_field(e)) return true;
  }
  return false;
}

}  // namespace qnas_fuzz
