// Bad run-time input and the exact message a user sees: the rows of docs/bad_input.md.
//
// Every case checks the exception type and the whole what() text (paths in temporary folders
// are checked by their fixed parts), so a change of wording shows up here and in the document.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "cheap_search.hpp"
#include "qnas/data/idx.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/ops.hpp"
#include "qnas/search/checkpoint.hpp"
#include "qnas/search/random_search.hpp"

using namespace qnas;
using namespace qnas::search;
namespace fs = std::filesystem;

namespace {

template <class E, class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("wrong exception type: " << e.what());
  }
  FAIL("no exception");
  return {};
}

struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& name)
      : path(fs::temp_directory_path() / ("qnas_bad_input_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
};

const space_description& small_space() {
  static const space_description s({{"conv1.filters", decision_kind::ordinal, 3, {"16", "32", "64"}},
                                    {"conv1.w", decision_kind::categorical, 2, {"int8", "fp8_e4m3"}}});
  return s;
}

search_result quick_run(runner_options o) {
  auto s = cheap::make_strategy();
  return run_search(s, cheap::evaluator_fn{}, cheap::objective_fn{}, std::move(o));
}

}  // namespace

TEST_CASE("bad input: formats") {
  const xt::xarray<float> x = {{1.0f, 2.0f}, {3.0f, NAN}};
  CHECK(message_of<invalid_argument>([&] { (void)quantize<int8>(x, 2); }) ==
        "qnas::quantize: axis 2 is out of range for a tensor of rank 2");
  CHECK(message_of<invalid_argument>([&] { (void)encode<int8>(x); }) ==
        "qnas::encode: fixed_point<8,7> has no NaN code; input element 3 is NaN");
  auto e = encode<int8>(xt::xarray<float>{1.0f, 2.0f});
  e.codes.pop_back();
  CHECK(message_of<invalid_argument>([&] { (void)decode(e); }) ==
        "qnas::decode: packed data is shorter than its shape requires");
  std::vector<float> in(6), out(5);
  const std::vector<std::size_t> shape{2, 3};
  CHECK(message_of<invalid_argument>([&] { quantize_into<int8>(in, out, shape); }) ==
        "qnas::quantize_into: buffer sizes (6, 5) do not match the shape's 6 elements");
}

TEST_CASE("bad input: IDX files") {
  using b = std::vector<std::uint8_t>;
  CHECK(message_of<io_error>([] { (void)data::parse_idx(b{0, 0}, "x.idx"); }) ==
        "x.idx: file has 2 bytes, too short for the 4-byte IDX magic number");
  CHECK(message_of<io_error>([] { (void)data::parse_idx(b{0, 0, 7, 1, 0, 0, 0, 0}, "x.idx"); }) ==
        "x.idx: bad IDX magic number 0x701 at byte 0 (expected 0x0000TTDD with type TT in {08,09,0B,0C,0D,0E})");
  CHECK(message_of<io_error>([] { (void)data::parse_idx(b{0, 0, 8, 1, 0, 0, 0, 3, 1, 2}, "x.idx"); }) ==
        "x.idx: file is truncated: the header declares 3 payload bytes, the file has 2 (data ends at byte 10, "
        "expected 11)");
  CHECK(message_of<io_error>([] { (void)data::parse_idx(b{0, 0, 8, 1, 0, 0, 0, 1, 1, 2}, "x.idx"); }) ==
        "x.idx: file has 1 bytes after the declared payload (from byte 9): the dimensions do not match the data");
  CHECK(message_of<io_error>([] { (void)data::read_idx("/nonexistent/t10k-images-idx3-ubyte"); }) ==
        "/nonexistent/t10k-images-idx3-ubyte: no such file");
  temp_dir dir("idx");
  { std::ofstream(dir.path / "labels", std::ios::binary).write("\0\0\x08\x01\0\0\0\x02\x01\x0c", 10); }
  CHECK(message_of<io_error>([&] { (void)data::read_idx_labels(dir.path / "labels", 10); }) ==
        (dir.path / "labels").string() + ": label 1 (byte 9) is 12, not below the 10 classes");
  CHECK(message_of<invalid_argument>([&] { (void)data::load_idx(dir.path / "a", dir.path / "b", 0); }) ==
        "qnas::data::load_idx: classes is 0; byte labels allow 1..256");
}

TEST_CASE("bad input: spaces and candidates") {
  CHECK(message_of<invalid_argument>([] {
          space_description({{"a", decision_kind::ordinal, 2, {}}, {"a", decision_kind::ordinal, 2, {}}});
        }) == "qnas::space_description: decision name 'a' appears twice (#0 and #1)");
  CHECK(message_of<invalid_argument>([] { space_description({{"a", decision_kind::ordinal, 0, {}}}); }) ==
        "qnas::space_description: decision 'a' has no alternatives");
  const auto& sp = small_space();
  CHECK(message_of<invalid_argument>([&] {
          (void)candidate_from_json(nlohmann::json{{"conv1.filters", "32"}, {"conv2.w", "int8"}}, sp);
        }) == "qnas::candidate_from_json: unknown decision 'conv2.w' (not in this space)");
  CHECK(message_of<invalid_argument>([&] { (void)candidate_from_json(nlohmann::json{{"conv1.filters", "32"}}, sp); }) ==
        "qnas::candidate_from_json: decision 'conv1.w' is missing");
  CHECK(message_of<invalid_argument>([&] {
          (void)candidate_from_json(nlohmann::json{{"conv1.filters", "48"}, {"conv1.w", "int8"}}, sp);
        }) == "qnas::candidate_from_json: decision 'conv1.filters': '48' is not one of its 3 alternatives");
  CHECK(message_of<invalid_argument>([&] {
          (void)candidate_from_json(nlohmann::json{{"conv1.filters", 32}, {"conv1.w", "int8"}}, sp);
        }) == "qnas::candidate_from_json: decision 'conv1.filters': expected a label string, got 32");
  random_search rs(sp, 1);
  CHECK(message_of<invalid_argument>([&] { rs.tell(candidate({1, 0}), std::nan("")); }) ==
        "random_search::tell: reward nan for candidate {conv1.filters=32 conv1.w=int8} is not finite (an evaluator "
        "failed? penalise it with a finite value)");
  CHECK(message_of<invalid_argument>([&] { rs.tell(candidate({3, 0}), 0.5); }) ==
        "random_search::tell: candidate [3 0]: decision 'conv1.filters' has index 3, it has only 3 alternatives");
}

TEST_CASE("bad input: checkpoints") {
  temp_dir dir("checkpoint");
  const auto file = dir.path / "checkpoint.json";
  const std::string f = file.string();
  auto o = cheap::options(5, dir.path);
  quick_run(o);
  const std::string good = io::read_file(file);

  CHECK(message_of<io_error>([&] { (void)load_checkpoint(dir.path / "none.json", cheap::space()); }) ==
        "qnas::io::read_file: cannot open '" + (dir.path / "none.json").string() + "': No such file or directory");
  io::write_file_atomic(file, good.substr(0, good.size() / 2));
  CHECK(message_of<io_error>([&] { (void)load_checkpoint(file, cheap::space()); })
            .starts_with("qnas::io::parse_json: '" + f + "' is not valid JSON (truncated or corrupt?): "));
  // One payload byte changed (a metric's digit): the CRC no longer matches.
  std::string flipped = good;
  const auto at = flipped.rfind("\"energy_pj\":") + 12;
  flipped[at] = flipped[at] == '1' ? '2' : '1';
  io::write_file_atomic(file, flipped);
  CHECK(message_of<io_error>([&] { (void)load_checkpoint(file, cheap::space()); })
            .starts_with("qnas::search::load_checkpoint('" + f + "'): corrupt: CRC-32 of the payload is "));
  io::write_file_atomic(file, "{\"hello\": 1}");
  CHECK(message_of<io_error>([&] { (void)load_checkpoint(file, cheap::space()); }) ==
        "qnas::search::load_checkpoint('" + f + "'): not a qnas search checkpoint (no \"format\": \"qnas.search.checkpoint\")");
  io::write_file_atomic(file, good);
  CHECK(message_of<invalid_argument>([&] { (void)load_checkpoint(file, small_space()); })
            .find("written for another search space") != std::string::npos);

  // Resuming with a setting that shapes the trial sequence differently is refused.
  auto other = o;
  other.batch_size = 2;
  CHECK(message_of<invalid_argument>([&] { quick_run(other); }) ==
        "qnas::search::runner: cannot resume from '" + f +
            "': it used batch_size 1, this run 2 (the batch size shapes the trial sequence)");
  other = o;
  other.evaluation_seed = 8;
  CHECK(message_of<invalid_argument>([&] { quick_run(other); }) ==
        "qnas::search::runner: cannot resume from '" + f + "': it used evaluation_seed 7, this run 8");
  random_search rs(cheap::space(), 1);
  CHECK(message_of<invalid_argument>([&] { run_search(rs, cheap::evaluator_fn{}, cheap::objective_fn{}, o); }) ==
        "qnas::search::runner: cannot resume from '" + f +
            "': it was written by strategy 'regularized_evolution', this run uses 'random_search'");
}

TEST_CASE("bad input: runner options and evaluators") {
  auto o = cheap::options(5, {});
  o.threads = 0;
  CHECK(message_of<invalid_argument>([&] { quick_run(o); }) == "qnas::search::runner: threads must be >= 1");
  o = cheap::options(5, {});
  o.batch_size = 0;
  CHECK(message_of<invalid_argument>([&] { quick_run(o); }) == "qnas::search::runner: batch_size must be >= 1");
  o = cheap::options(5, "/tmp");
  o.checkpoint_every = 0;
  CHECK(message_of<invalid_argument>([&] { quick_run(o); }) ==
        "qnas::search::runner: checkpoint_every must be >= 1 when a checkpoint path is set");
  o = cheap::options(5, {});
  o.constraints = constraint_set{}.at_most("bits", 1000);
  CHECK(message_of<invalid_argument>([&] { quick_run(o); }) ==
        "qnas::search::runner: constraints are set but no estimate function computes the metrics they check");

  auto s = cheap::make_strategy();
  const auto nan_eval = [](const candidate&) { return metrics{{"accuracy", std::nan("")}, {"energy_pj", 1.0}}; };
  CHECK(message_of<invalid_argument>([&] {
          run_search(s, make_evaluator(nan_eval), cheap::objective_fn{}, cheap::options(5, {}));
        }) == "qnas::search::check_finite: trial 0: the evaluator reported metric 'accuracy' = nan (NaN and "
              "infinities are not valid measurements)");
  const search_result empty = search_result();
  CHECK(message_of<invalid_argument>([&] { (void)empty.best_trial(); }) ==
        "qnas::search::search_result::best_trial: no trial was trained (all rejected?)");
}
