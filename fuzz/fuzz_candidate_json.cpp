// libFuzzer target: the JSON readers of search data (candidate, space description, metrics, trial record).
//
// Contract under test (space/candidate.hpp, search/objectives.hpp, search/evaluator.hpp): any
// JSON value either reads into a valid value or is refused with qnas::invalid_argument naming
// what is wrong; what reads back writes and reads back to the same value. The input is JSON
// text; text that is not JSON is skipped (nlohmann's parser is not what is under test).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "qnas/search/evaluator.hpp"
#include "qnas/space/candidate.hpp"

namespace {

using namespace qnas;
using namespace qnas::search;

[[noreturn]] void fail(const char* what, const char* detail = "") {
  std::fprintf(stderr, "fuzz_candidate_json: %s %s\n", what, detail);
  std::abort();
}

const space_description& the_space() {
  static const space_description s({{"conv1.filters", decision_kind::ordinal, 3, {"16", "32", "64"}},
                                    {"conv1.w", decision_kind::categorical, 2, {"int8", "fp8_e4m3"}},
                                    {"block2", decision_kind::categorical, 3, {"skip", "conv3x3", "conv1x1"}}});
  return s;
}

/// Reads `j` with `read`; a refusal must be qnas::invalid_argument. A value that was read must
/// write and read back (outside the try: a refusal there is a bug, not bad input).
template <class Read, class Same>
void check_reader(const char* who, const nlohmann::json& j, Read&& read, Same&& round_trip_ok) {
  std::optional<decltype(read(j))> v;
  try {
    v.emplace(read(j));
  } catch (const qnas::invalid_argument&) {
    return;
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "fuzz_candidate_json: %s let a nlohmann exception escape: %s\n", who, e.what());
    std::abort();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_candidate_json: %s threw something other than qnas::invalid_argument: %s\n", who,
                 e.what());
    std::abort();
  }
  try {
    if (!round_trip_ok(*v)) fail(who, "round trip changed the value");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_candidate_json: %s: a value it read does not write and read back: %s\n", who, e.what());
    std::abort();
  }
}

void check_all(const nlohmann::json& j) {
  const auto& sp = the_space();
  check_reader("candidate_from_json", j, [&](const nlohmann::json& x) { return candidate_from_json(x, sp); },
               [&](const candidate& c) {
                 check_candidate(c, sp, "fuzz");
                 return candidate_from_json(to_json(c, sp), sp) == c;
               });
  check_reader("space_description_from_json", j, [](const nlohmann::json& x) { return space_description_from_json(x); },
               [](const space_description& s) { return space_description_from_json(to_json(s)) == s; });
  check_reader("metrics_from_json", j, [](const nlohmann::json& x) { return metrics_from_json(x); },
               [](const metrics& m) { return metrics_from_json(to_json(m)) == m; });
  check_reader("trial_record_from_json", j, [&](const nlohmann::json& x) { return trial_record_from_json(x, sp); },
               [&](const trial_record& r) {
                 const trial_record r2 = trial_record_from_json(to_json(r, sp), sp);
                 return r2.cand == r.cand && r2.index == r.index && r2.reward == r.reward && r2.values == r.values &&
                        r2.rejected.has_value() == r.rejected.has_value();
               });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  check_all(j);
  // Also each member and element one level down (records arrive nested in logs and checkpoints).
  if (j.is_structured())
    for (const auto& e : j) check_all(e);
  return 0;
}
