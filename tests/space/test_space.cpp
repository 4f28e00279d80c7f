// Spaces as types: compile-time decision lists, describe(), get<>, visit<> and quantizer_of<>.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <boost/hana/for_each.hpp>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/space.hpp"

using namespace qnas;

namespace {
struct conv3x3 {
  static std::string name() { return "conv3x3"; }
  static constexpr int macs = 9;
};
struct conv1x1 {
  static std::string name() { return "conv1x1"; }
  static constexpr int macs = 1;
};
struct unnamed_op {
  static constexpr int macs = 0;
};

using my_space = space<choice<"conv1.filters", 16, 32, 64>,                                   //
                       type_choice<"conv1.w", fixed_point<8, 0>, fixed_point<4, 0>>,          //
                       type_choice<"conv1.op", conv3x3, conv1x1, unnamed_op>,                 //
                       qnas::optional<"block3", conv1x1>,                                     //
                       choice<"hw.pe_rows", 8, 16, 32, 64>>;

// Compile-time facts ("if it builds, it passes").
static_assert(my_space::num_decisions == 5);
static_assert(space_size_v<my_space> == 3.0 * 2 * 3 * 2 * 4);
static_assert(my_space::index_of("block3") == 3);
static_assert(std::is_same_v<decision_named<my_space, "conv1.op">::type, type_choice<"conv1.op", conv3x3, conv1x1, unnamed_op>>);
static_assert(decltype(boost::hana::size(decisions_of<my_space>))::value == 5);
static_assert(choice<"x", 1, 2>::kind == decision_kind::ordinal);
static_assert(type_choice<"x", int, long>::kind == decision_kind::categorical);
}  // namespace

TEST_CASE("decisions_of exposes names, kinds and cardinalities at compile time") {
  std::vector<std::string> names;
  std::size_t total_alternatives = 0;
  boost::hana::for_each(decisions_of<my_space>, [&](auto d) {
    using D = typename decltype(d)::type;
    names.emplace_back(D::name.view());
    total_alternatives += D::cardinality;
  });
  CHECK(names == std::vector<std::string>{"conv1.filters", "conv1.w", "conv1.op", "block3", "hw.pe_rows"});
  CHECK(total_alternatives == 3 + 2 + 3 + 2 + 4);
}

TEST_CASE("describe builds the run-time description with labels") {
  const auto& d = describe<my_space>();
  REQUIRE(d.num_decisions() == 5);
  CHECK(d.size() == space_size_v<my_space>);
  CHECK(d[0].name == "conv1.filters");
  CHECK(d[0].kind == decision_kind::ordinal);
  CHECK(d[0].labels == std::vector<std::string>{"16", "32", "64"});
  CHECK(d[1].kind == decision_kind::categorical);
  CHECK(d[1].labels == std::vector<std::string>{fixed_point<8, 0>::name(), fixed_point<4, 0>::name()});
  CHECK(d[2].labels[0] == "conv3x3");
  CHECK(d[2].labels[2].find("unnamed_op") != std::string::npos);  // spelled type when no name()
  CHECK(d[3].labels == std::vector<std::string>{"skip", "include"});
  CHECK(&describe(my_space{}) == &d);  // built once
}

TEST_CASE("get<Name> reads a candidate's value by name") {
  const my_space s;
  const candidate c({2, 1, 0, 1, 3});
  CHECK(get<"conv1.filters">(s, c) == 64);
  CHECK(get<"hw.pe_rows">(s, c) == 64);
  CHECK(get<"conv1.w">(s, c) == 1u);
  CHECK(get<"block3">(s, c) == true);
  CHECK(get<"block3">(s, candidate({0, 0, 0, 0, 0})) == false);
  CHECK_THROWS_AS((void)get<"conv1.filters">(s, candidate({3, 0, 0, 0, 0})), qnas::invalid_argument);
  CHECK_THROWS_AS((void)get<"conv1.filters">(s, candidate({0, 0})), qnas::invalid_argument);
  try {
    (void)get<"hw.pe_rows">(s, candidate({0, 0, 0, 0, 4}));
    FAIL("expected an exception");
  } catch (const qnas::invalid_argument& e) {
    CHECK(std::string(e.what()).find("'hw.pe_rows' has index 4") != std::string::npos);
  }
}

TEST_CASE("visit<Name> dispatches to the chosen alternative's type") {
  const my_space s;
  for (std::uint32_t k = 0; k < 3; ++k) {
    const candidate c({0, 0, k, 0, 0});
    const int macs = visit<"conv1.op">(s, c, [](auto tag) { return decltype(tag)::type::macs; });
    CHECK(macs == (k == 0 ? 9 : k == 1 ? 1 : 0));
  }
  // A choice dispatches to integral_constant: the value is usable at compile time.
  const candidate c({1, 0, 0, 0, 2});
  const int filters = visit<"conv1.filters">(s, c, [](auto v) {
    constexpr int f = decltype(v)::value;
    static_assert(f == 16 || f == 32 || f == 64);
    return f;
  });
  CHECK(filters == 32);
  // optional: skip or the layer.
  const bool included = visit<"block3">(s, candidate({0, 0, 0, 1, 0}), [](auto tag) {
    return !std::is_same_v<typename decltype(tag)::type, skip>;
  });
  CHECK(included);
  // A void visitor with state.
  int calls = 0;
  visit<"conv1.w">(s, c, [&](auto) { ++calls; });
  CHECK(calls == 1);
}

TEST_CASE("quantizer_of gives the run-time quantizer of the chosen format") {
  const my_space s;
  const auto q8 = quantizer_of<"conv1.w">(s, candidate({0, 0, 0, 0, 0}));
  const auto q4 = quantizer_of<"conv1.w">(s, candidate({0, 1, 0, 0, 0}));
  CHECK(q8.name() == fixed_point<8, 0>::name());
  CHECK(q4.name() == fixed_point<4, 0>::name());
  CHECK(q4 == quantizer::of<fixed_point<4, 0>>());
  CHECK(q4.info().bits == 4);
}
