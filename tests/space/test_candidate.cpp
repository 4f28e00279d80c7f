// space_description and candidate: validation, fingerprint, printing, JSON round trips and errors.
#include <doctest/doctest.h>

#include <string>
#include <unordered_set>

#include "qnas/space/candidate.hpp"

using namespace qnas;

namespace {
space_description small_space() {
  return space_description({{"conv1.filters", decision_kind::ordinal, 3, {"16", "32", "64"}},
                            {"conv1.w", decision_kind::categorical, 2, {"fixed_point<8,0>", "fixed_point<4,0>"}},
                            {"block3", decision_kind::categorical, 2, {"skip", "include"}}});
}

std::string message_of(auto&& f) {
  try {
    f();
  } catch (const qnas::invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}
}  // namespace

TEST_CASE("space_description validates names, cardinalities and labels") {
  const auto s = small_space();
  CHECK(s.num_decisions() == 3);
  CHECK(s.size() == 12.0);
  CHECK(s.exact_size() == 12u);
  CHECK(s.index_of("conv1.w") == 1u);
  CHECK(!s.index_of("conv2.w"));
  // Default labels are the indices.
  const space_description d({{"a", decision_kind::ordinal, 3, {}}});
  CHECK(d[0].labels == std::vector<std::string>{"0", "1", "2"});

  CHECK(message_of([] { space_description({{"a", decision_kind::ordinal, 2, {}}, {"a", decision_kind::ordinal, 2, {}}}); })
            .find("'a' appears twice") != std::string::npos);
  CHECK(message_of([] { space_description({{"a", decision_kind::ordinal, 0, {}}}); }).find("no alternatives") !=
        std::string::npos);
  CHECK(message_of([] { space_description({{"a", decision_kind::ordinal, 2, {"x", "x"}}}); }).find("label 'x'") !=
        std::string::npos);
  CHECK(message_of([] { space_description({{"a", decision_kind::ordinal, 3, {"x", "y"}}}); }).find("2 labels for 3") !=
        std::string::npos);
  CHECK(message_of([] { space_description({{"", decision_kind::ordinal, 3, {}}}); }).find("empty name") !=
        std::string::npos);
}

TEST_CASE("exact_size reports overflow instead of wrapping") {
  std::vector<decision_info> ds;
  for (int i = 0; i < 70; ++i) ds.push_back({"d" + std::to_string(i), decision_kind::categorical, 2, {}});
  const space_description s(ds);
  CHECK(!s.exact_size());           // 2^70 does not fit in 64 bits
  CHECK(s.size() == std::ldexp(1.0, 70));  // but the double is exact
}

TEST_CASE("fingerprint changes with names, kinds, labels and order") {
  const auto s = small_space();
  CHECK(s.fingerprint() == small_space().fingerprint());
  CHECK(s.fingerprint_hex().size() == 16);
  auto ds = s.decisions();
  ds[0].name = "conv1.units";
  CHECK(space_description(ds).fingerprint() != s.fingerprint());
  ds = s.decisions();
  ds[0].kind = decision_kind::categorical;
  CHECK(space_description(ds).fingerprint() != s.fingerprint());
  ds = s.decisions();
  ds[0].labels[2] = "128";
  CHECK(space_description(ds).fingerprint() != s.fingerprint());
  ds = s.decisions();
  std::swap(ds[1], ds[2]);
  CHECK(space_description(ds).fingerprint() != s.fingerprint());
  // Field boundaries count: labels ("ab","c") and ("a","bc") differ.
  const space_description p({{"x", decision_kind::categorical, 2, {"ab", "c"}}});
  const space_description q({{"x", decision_kind::categorical, 2, {"a", "bc"}}});
  CHECK(p.fingerprint() != q.fingerprint());
}

TEST_CASE("candidate prints name=label pairs and round-trips through JSON by name") {
  const auto s = small_space();
  const candidate c({2, 1, 0});
  CHECK(to_string(c, s) == "conv1.filters=64 conv1.w=fixed_point<4,0> block3=skip");
  const auto j = to_json(c, s);
  CHECK(j["conv1.filters"] == "64");
  CHECK(j["block3"] == "skip");
  CHECK(candidate_from_json(j, s) == c);
  // Keys are names: a JSON written in another order reads the same.
  const auto k = nlohmann::json::parse(R"({"block3":"skip","conv1.w":"fixed_point<4,0>","conv1.filters":"64"})");
  CHECK(candidate_from_json(k, s) == c);
  std::ostringstream os;
  os << c;
  CHECK(os.str() == "[2 1 0]");
}

TEST_CASE("candidate_from_json names the decision that is wrong") {
  const auto s = small_space();
  auto j = to_json(candidate({0, 0, 1}), s);
  auto unknown = j;
  unknown["conv2.filters"] = "16";
  CHECK(message_of([&] { (void)candidate_from_json(unknown, s); }).find("unknown decision 'conv2.filters'") !=
        std::string::npos);
  auto missing = j;
  missing.erase("conv1.w");
  CHECK(message_of([&] { (void)candidate_from_json(missing, s); }).find("decision 'conv1.w' is missing") !=
        std::string::npos);
  auto bad = j;
  bad["conv1.filters"] = "48";
  CHECK(message_of([&] { (void)candidate_from_json(bad, s); }).find("'conv1.filters': '48' is not one of") !=
        std::string::npos);
  auto wrong_type = j;
  wrong_type["block3"] = 1;
  CHECK(message_of([&] { (void)candidate_from_json(wrong_type, s); }).find("'block3': expected a label") !=
        std::string::npos);
  CHECK_THROWS_AS((void)candidate_from_json(nlohmann::json::array(), s), qnas::invalid_argument);
  // Out-of-range indices are refused when printing too.
  CHECK(message_of([&] { (void)to_string(candidate({0, 2, 0}), s); }).find("'conv1.w' has index 2") !=
        std::string::npos);
  CHECK_THROWS_AS((void)to_json(candidate({0, 0}), s), qnas::invalid_argument);
}

TEST_CASE("space_description JSON round trip; a tampered fingerprint is refused") {
  const auto s = small_space();
  const auto j = to_json(s);
  CHECK(space_description_from_json(j) == s);
  auto t = j;
  t["decisions"][0]["labels"][0] = "8";
  CHECK_THROWS_AS((void)space_description_from_json(t), qnas::invalid_argument);
  t.erase("fingerprint");
  CHECK(space_description_from_json(t).fingerprint() != s.fingerprint());
  auto wrong_type = j;  // members of the wrong JSON type are refused, not leaked as nlohmann errors
  wrong_type["decisions"][0]["labels"] = 5;
  CHECK_THROWS_WITH_AS((void)space_description_from_json(wrong_type),
                       doctest::Contains("malformed space description"), qnas::invalid_argument);
}

TEST_CASE("candidates hash and compare as values") {
  std::unordered_set<candidate> set;
  set.insert(candidate({0, 1, 1}));
  set.insert(candidate({0, 1, 1}));
  set.insert(candidate({1, 0, 1}));
  CHECK(set.size() == 2);
  CHECK(candidate({0, 1}) < candidate({1, 0}));
}
