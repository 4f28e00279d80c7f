// libFuzzer target: search checkpoint loading (load_checkpoint, then the strategy's load of the saved state).
//
// Contract under test (search/checkpoint.hpp, search/strategy.hpp): any file either loads into
// a consistent state or is refused with qnas::io_error / qnas::invalid_argument; a state that
// loads resumes a strategy or is refused with qnas::invalid_argument; a loaded state saves and
// loads back to the same history. Byte 0 picks the mode: even = the rest is the whole file
// (exercises the header, size and CRC checks); odd = the rest is the payload, wrapped in a header
// with the right size and CRC (so the fuzzer gets past the CRC into the payload's fields).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <unistd.h>

#include "qnas/search/checkpoint.hpp"
#include "qnas/search/random_search.hpp"
#include "qnas/search/regularized_evolution.hpp"

namespace {

using namespace qnas;
using namespace qnas::search;

[[noreturn]] void fail(const char* what, const char* detail = "") {
  std::fprintf(stderr, "fuzz_checkpoint: %s %s\n", what, detail);
  std::abort();
}

const space_description& the_space() {
  static const space_description s({{"conv1.filters", decision_kind::ordinal, 3, {"16", "32", "64"}},
                                    {"conv1.w", decision_kind::categorical, 2, {"int8", "fp8_e4m3"}},
                                    {"block2", decision_kind::categorical, 3, {"skip", "conv3x3", "conv1x1"}}});
  return s;
}

const std::filesystem::path& scratch() {
  static const std::filesystem::path p = [] {
    const char* dir = std::getenv("TMPDIR");
    std::filesystem::path base = dir ? dir : (std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp");
    return base / ("qnas_fuzz_checkpoint." + std::to_string(::getpid()));
  }();
  return p;
}

void write_scratch(std::string_view text) {
  std::FILE* f = std::fopen(scratch().c_str(), "wb");
  if (!f) fail("cannot create the scratch file");
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  std::fclose(f);
  if (!ok) fail("cannot write the scratch file");
}

template <class S>
void try_resume(const checkpoint_state& st) {
  S s(the_space(), {}, 1);
  try {
    s.load(st.strategy_state);
  } catch (const qnas::invalid_argument&) {
    return;
  } catch (const std::exception& e) {
    fail("strategy load threw something other than qnas::invalid_argument:", e.what());
  }
  check_candidate(s.ask(), the_space(), "fuzz_checkpoint");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    write_scratch(qnas::detail::cat("{\"format\":\"", checkpoint_format, "\",\"version\":", checkpoint_version,
                                    ",\"bytes\":", rest.size(), ",\"crc32\":", search::detail::crc32_of(rest),
                                    ",\"payload\":", rest, "}\n"));
  } else {
    write_scratch(rest);
  }
  checkpoint_state st;
  try {
    st = load_checkpoint(scratch(), the_space());
  } catch (const qnas::io_error&) {
    return 0;
  } catch (const qnas::invalid_argument&) {
    return 0;
  } catch (const std::exception& e) {
    fail("load_checkpoint threw something other than qnas::io_error / qnas::invalid_argument:", e.what());
  }
  if (st.history.size() != st.trials) fail("history size differs from the trial counter");
  for (std::size_t i = 0; i < st.history.size(); ++i) {
    if (st.history[i].index != i) fail("history out of order");
    check_candidate(st.history[i].cand, the_space(), "fuzz_checkpoint");
  }
  // A state that loaded must save and load back to the same thing.
  try {
    save_checkpoint(scratch(), st, the_space());
  } catch (const qnas::invalid_argument&) {
    return 0;  // e.g. a metric JSON cannot hold; the saver refuses instead of writing null
  } catch (const std::exception& e) {
    fail("save_checkpoint of a loaded state threw:", e.what());
  }
  const auto again = load_checkpoint(scratch(), the_space());
  if (again.history.size() != st.history.size() || again.strategy_name != st.strategy_name ||
      again.strategy_state != st.strategy_state || again.rejected != st.rejected || again.batch_size != st.batch_size ||
      again.evaluation_seed != st.evaluation_seed)
    fail("save/load round trip changed the state");
  for (std::size_t i = 0; i < st.history.size(); ++i)
    if (!(again.history[i].cand == st.history[i].cand) || again.history[i].reward != st.history[i].reward ||
        again.history[i].values.values() != st.history[i].values.values())
      fail("save/load round trip changed a trial");
  try_resume<random_search>(st);
  try_resume<regularized_evolution>(st);
  return 0;
}
