// Seeded splits and mini-batches: determinism, coverage (every index exactly once per epoch),
// stratification, content, and reuse of the batch buffers.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <set>
#include <type_traits>
#include <vector>

// Other headers may open qnas::train::detail or qnas::data::detail before these are included;
// qualified lookups inside the headers must still reach qnas::detail.
namespace qnas::train::detail {}
namespace qnas::data::detail {}

#include "qnas/data/batching.hpp"
#include "qnas/data/dataset.hpp"

using namespace qnas;

namespace {
// n images of 2x2x1 whose pixels encode their index (so content checks are exact), labels
// i % classes but with class 0 over-represented to exercise stratification.
data::dataset indexed(std::size_t n, std::size_t classes) {
  data::dataset d;
  d.classes = classes;
  d.images.resize({n, 2, 2, 1});
  d.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 4; ++k) d.images.data()[i * 4 + k] = static_cast<float>(i * 4 + k) / static_cast<float>(4 * n);
    d.labels[i] = static_cast<data::label_t>(i % 3 == 0 ? 0 : i % classes);
  }
  return d;
}
}  // namespace

TEST_CASE("split: deterministic, disjoint, complete, stratified") {
  const auto d = indexed(10000, 10);
  const auto a = data::split_indices(d, 2000, 42);
  const auto b = data::split_indices(d, 2000, 42);
  const auto c = data::split_indices(d, 2000, 43);
  CHECK(a.train == b.train);
  CHECK(a.validation == b.validation);
  CHECK(a.validation != c.validation);
  REQUIRE(a.train.size() == 8000);
  REQUIRE(a.validation.size() == 2000);
  CHECK(std::is_sorted(a.train.begin(), a.train.end()));
  CHECK(std::is_sorted(a.validation.begin(), a.validation.end()));
  std::vector<int> seen(d.size(), 0);
  for (auto i : a.train) ++seen[i];
  for (auto i : a.validation) ++seen[i];
  CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
  // Stratified: validation class counts are the data set's shares of 2000 (largest remainder).
  const auto all = d.class_counts();
  std::vector<std::size_t> val(10, 0);
  for (auto i : a.validation) ++val[static_cast<std::size_t>(d.labels[i])];
  for (std::size_t k = 0; k < 10; ++k) {
    const double exact = 2000.0 * static_cast<double>(all[k]) / 10000.0;
    CHECK(static_cast<double>(val[k]) >= std::floor(exact));
    CHECK(static_cast<double>(val[k]) <= std::ceil(exact));
  }

  const auto s = data::split(d, 2000, 42);
  REQUIRE(s.validation.size() == 2000);
  for (std::size_t k = 0; k < 2000; k += 97) {
    const std::size_t i = a.validation[k];
    CHECK(s.validation.labels[k] == d.labels[i]);
    CHECK(s.validation.images(k, 1, 1, 0) == d.images(i, 1, 1, 0));
  }
  CHECK(s.train.images(7999, 0, 1, 0) == d.images(a.train[7999], 0, 1, 0));

  CHECK(data::split_indices(d, 0, 1).validation.empty());
  CHECK(data::split_indices(d, 10000, 1).train.empty());
  CHECK_THROWS_AS((void)data::split(d, 10001, 1), invalid_argument);
}

TEST_CASE("batcher: every index exactly once per epoch; seeded by (seed, epoch)") {
  const auto d = indexed(1000, 10);
  for (bool drop_last : {false, true}) {
    CAPTURE(drop_last);
    data::batcher b(d, {.batch_size = 64, .shuffle = true, .drop_last = drop_last, .seed = 9});
    CHECK(b.batches_per_epoch() == (drop_last ? 15u : 16u));
    std::vector<std::vector<std::size_t>> orders;
    for (std::size_t epoch = 0; epoch < 3; ++epoch) {
      b.start_epoch(epoch);
      std::vector<int> seen(d.size(), 0);
      std::vector<std::size_t> order;
      std::size_t batches = 0;
      while (const data::batch* mb = b.next()) {
        ++batches;
        REQUIRE(mb->indices.size() == mb->size());
        REQUIRE(mb->images.shape()[0] == mb->size());
        CHECK((mb->size() == 64 || (!drop_last && mb->size() == 1000 % 64)));
        for (std::size_t k = 0; k < mb->size(); ++k) {
          const std::size_t i = mb->indices[k];
          ++seen[i];
          order.push_back(i);
          // contents are the indexed image and label
          CHECK(mb->labels[k] == d.labels[i]);
          for (std::size_t q = 0; q < 4; ++q) REQUIRE(mb->images.data()[k * 4 + q] == d.images.data()[i * 4 + q]);
        }
      }
      CHECK(b.next() == nullptr);  // stays exhausted
      CHECK(batches == b.batches_per_epoch());
      const auto once = std::count(seen.begin(), seen.end(), 1);
      const auto never = std::count(seen.begin(), seen.end(), 0);
      CHECK(once == (drop_last ? 960 : 1000));
      CHECK(never == (drop_last ? 40 : 0));
      orders.push_back(order);
    }
    CHECK(orders[0] != orders[1]);
    CHECK(orders[1] != orders[2]);
    // Replaying an epoch, on a fresh batcher too, gives the same order.
    data::batcher again(d, {.batch_size = 64, .shuffle = true, .drop_last = drop_last, .seed = 9});
    again.start_epoch(1);
    std::vector<std::size_t> replay;
    while (const data::batch* mb = again.next()) replay.insert(replay.end(), mb->indices.begin(), mb->indices.end());
    CHECK(replay == orders[1]);
    data::batcher other(d, {.batch_size = 64, .shuffle = true, .drop_last = drop_last, .seed = 10});
    other.start_epoch(1);
    std::vector<std::size_t> o;
    while (const data::batch* mb = other.next()) o.insert(o.end(), mb->indices.begin(), mb->indices.end());
    CHECK(o != orders[1]);
  }
}

TEST_CASE("batcher: data-set order without shuffle; buffers are reused, not reallocated") {
  const auto d = indexed(100, 10);
  data::batcher b(d, {.batch_size = 32, .shuffle = false});
  std::vector<std::size_t> order;
  const float* full_buffer = nullptr;
  const float* tail_buffer = nullptr;
  for (std::size_t epoch = 0; epoch < 2; ++epoch) {
    b.start_epoch(epoch);
    order.clear();
    while (const data::batch* mb = b.next()) {
      order.insert(order.end(), mb->indices.begin(), mb->indices.end());
      const float*& buf = mb->size() == 32 ? full_buffer : tail_buffer;
      if (buf == nullptr) buf = mb->images.data();
      CHECK(mb->images.data() == buf);  // same storage every batch and every epoch
    }
    std::vector<std::size_t> expected(100);
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    CHECK(order == expected);
  }
  CHECK_THROWS_AS(data::batcher(d, {.batch_size = 0}), invalid_argument);
  static_assert(!std::is_constructible_v<data::batcher, data::dataset&&, data::batch_options>,
                "a batcher over a temporary data set would dangle");
}
