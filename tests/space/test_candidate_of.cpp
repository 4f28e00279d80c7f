// candidate_of<Space>(value<"name", V>, type<"name", T>, ...): candidates by decision name, checked at compile time.
#include <doctest/doctest.h>

#include <string>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/space/space.hpp"

using namespace qnas;

namespace {
struct conv3x3 {
  static std::string name() { return "conv3x3"; }
};
struct conv1x1 {
  static std::string name() { return "conv1x1"; }
};

using my_space = space<choice<"conv1.filters", 16, 32, 64>,                           //
                       type_choice<"conv1.w", fixed_point<8, 0>, fixed_point<4, 0>>,  //
                       type_choice<"conv1.op", conv3x3, conv1x1>,                     //
                       qnas::optional<"block3", conv1x1>,                             //
                       choice<"hw.pe_rows", 8u, 16u, 32u, 64u>,                       //
                       choice<"lr", 0.5, 0.25>,                                       //
                       choice<"bn", false, true>>;

// The indices are computed at compile time ("if it builds, it passes").
using builder = detail::candidate_builder<my_space, named_value<"conv1.filters", 64>, named_type<"conv1.w", fixed_point<4, 0>>,
                                          named_type<"conv1.op", conv1x1>, named_value<"block3", true>,
                                          named_value<"hw.pe_rows", 32>, named_value<"lr", 0.25>, named_value<"bn", false>>;
static_assert(builder::indices() == std::array<std::uint32_t, 7>{2, 1, 1, 1, 2, 1, 0});
}  // namespace

TEST_CASE("candidate_of picks each decision's alternative by name, in any argument order") {
  const my_space s;
  const candidate c = candidate_of<my_space>(value<"conv1.filters", 32>, type<"conv1.w", fixed_point<4, 0>>,
                                             type<"conv1.op", conv3x3>, value<"block3", false>,
                                             value<"hw.pe_rows", 64u>, value<"lr", 0.5>, value<"bn", true>);
  CHECK(c == candidate({1, 1, 0, 0, 3, 0, 1}));
  CHECK(get<"conv1.filters">(s, c) == 32);
  CHECK(get<"hw.pe_rows">(s, c) == 64u);
  CHECK(get<"lr">(s, c) == 0.5);
  CHECK(get<"block3">(s, c) == false);
  CHECK(get<"bn">(s, c) == true);

  // The same candidate with the arguments shuffled.
  CHECK(candidate_of<my_space>(value<"bn", true>, value<"lr", 0.5>, value<"hw.pe_rows", 64u>, value<"block3", false>,
                               type<"conv1.op", conv3x3>, type<"conv1.w", fixed_point<4, 0>>,
                               value<"conv1.filters", 32>) == c);
  CHECK(to_string(c, describe<my_space>()) ==
        "conv1.filters=32 conv1.w=" + fixed_point<4, 0>::name() + " conv1.op=conv3x3 block3=skip hw.pe_rows=64 lr=0.5 bn=1");
}

TEST_CASE("candidate_of: integers compare by value whatever their type; an optional takes a bool or a type") {
  // hw.pe_rows holds unsigned values; an int (or a long) of the same value names the same alternative.
  const auto with_rows = [](auto rows) {
    return candidate_of<my_space>(value<"conv1.filters", 16>, type<"conv1.w", fixed_point<8, 0>>, type<"conv1.op", conv3x3>,
                                  value<"block3", false>, rows, value<"lr", 0.25>, value<"bn", false>);
  };
  CHECK(with_rows(value<"hw.pe_rows", 16>)[4] == 1u);
  CHECK(with_rows(value<"hw.pe_rows", 16L>)[4] == 1u);
  CHECK(with_rows(value<"hw.pe_rows", 8u>)[4] == 0u);

  const auto with_block = [](auto block) {
    return candidate_of<my_space>(value<"conv1.filters", 16>, type<"conv1.w", fixed_point<8, 0>>, type<"conv1.op", conv3x3>,
                                  block, value<"hw.pe_rows", 8>, value<"lr", 0.25>, value<"bn", false>);
  };
  CHECK(with_block(value<"block3", true>)[3] == 1u);
  CHECK(with_block(type<"block3", conv1x1>)[3] == 1u);
  CHECK(with_block(value<"block3", false>)[3] == 0u);
  CHECK(with_block(type<"block3", skip>)[3] == 0u);
}

TEST_CASE("candidate_of gives every candidate of a space, each once") {
  using small = space<choice<"a", 1, 2, 3>, type_choice<"b", conv3x3, conv1x1>>;
  const candidate all[] = {
      candidate_of<small>(value<"a", 1>, type<"b", conv3x3>), candidate_of<small>(value<"a", 1>, type<"b", conv1x1>),
      candidate_of<small>(value<"a", 2>, type<"b", conv3x3>), candidate_of<small>(value<"a", 2>, type<"b", conv1x1>),
      candidate_of<small>(value<"a", 3>, type<"b", conv3x3>), candidate_of<small>(value<"a", 3>, type<"b", conv1x1>)};
  for (std::uint32_t a = 0; a < 3; ++a)
    for (std::uint32_t b = 0; b < 2; ++b) CHECK(all[a * 2 + b] == candidate({a, b}));
}
