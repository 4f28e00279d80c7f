// Search checkpoints: everything needed to continue a search exactly, written atomically and verified on load.
//
// A checkpoint holds the space (and its fingerprint), the strategy's save(), the runner's
// counters and settings that shape the trial sequence, and the trial history. It is one JSON
// object whose payload is protected by a CRC-32 over its exact bytes, so a truncated or
// bit-flipped file is refused instead of silently resuming a different search.
//
//   {"format": "qnas.search.checkpoint", "version": 1, "bytes": N, "crc32": C, "payload": {...}}
//
// "payload" is the last member and is written verbatim, so its bytes can be checked without
// re-serialising (which could differ between library versions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "qnas/core/diagnostics.hpp"
#include "qnas/io/atomic_file.hpp"
#include "qnas/io/json.hpp"
#include "qnas/search/evaluator.hpp"
#include "qnas/search/strategy.hpp"
#include "qnas/space/candidate.hpp"

namespace qnas::search {

/// The state a runner needs to resume. Built by the runner; users read it to inspect a search.
struct checkpoint_state {
  std::string strategy_name;
  nlohmann::json strategy_state;   ///< the strategy's save()
  std::size_t trials = 0;          ///< trials completed (== history.size())
  std::size_t rejected = 0;        ///< of which rejected by a constraint
  double elapsed_s = 0;            ///< wall time spent so far, over all sessions
  std::size_t batch_size = 1;      ///< asks per batch: changes the sequence, so must match on resume
  std::uint64_t evaluation_seed = 0;  ///< base of the per-trial seeds: must match on resume
  std::vector<trial_record> history;
};

inline constexpr std::string_view checkpoint_format = "qnas.search.checkpoint";
/// The largest runner.elapsed_s a checkpoint may hold: 10^10 s (over 300 years) is longer than any
/// search has run, so a larger value is an edit or corruption, not a measurement.
inline constexpr double max_elapsed_s = 1e10;
inline constexpr int checkpoint_version = 1;

namespace detail {
inline std::uint32_t crc32_of(std::string_view s) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths; feed large payloads in chunks.
  while (!s.empty()) {
    const auto n = static_cast<uInt>(std::min<std::size_t>(s.size(), 1u << 30));
    c = ::crc32(c, reinterpret_cast<const Bytef*>(s.data()), n);
    s.remove_prefix(n);
  }
  return static_cast<std::uint32_t>(c);
}
}  // namespace detail

/// The checkpoint file's text for `st` over `space`.
inline std::string checkpoint_text(const checkpoint_state& st, const space_description& space) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& r : st.history) history.push_back(to_json(r, space));
  const nlohmann::json payload = {
      {"space", to_json(space)},
      {"strategy", {{"name", st.strategy_name}, {"state", st.strategy_state}}},
      {"runner",
       {{"trials", st.trials},
        {"rejected", st.rejected},
        {"elapsed_s", st.elapsed_s},
        {"batch_size", st.batch_size},
        {"evaluation_seed", std::to_string(st.evaluation_seed)}}},  // as text: 64 bits exactly
      {"history", std::move(history)}};
  const std::string body = payload.dump();
  return qnas::detail::cat("{\"format\":\"", checkpoint_format, "\",\"version\":", checkpoint_version,
                           ",\"bytes\":", body.size(), ",\"crc32\":", detail::crc32_of(body), ",\"payload\":", body,
                           "}\n");
}

/// Writes the checkpoint atomically (temporary file, fsync, rename): a crash leaves the previous
/// checkpoint intact. qnas::io_error names the file when it cannot be written.
inline void save_checkpoint(const std::filesystem::path& path, const checkpoint_state& st,
                            const space_description& space) {
  io::write_file_atomic(path, checkpoint_text(st, space));
}

/// Reads and verifies a checkpoint for `space`. Refuses, naming the file and the problem:
///  * qnas::io_error: missing, unreadable, truncated or corrupt (not JSON, wrong format, size or
///    CRC mismatch, malformed fields, decisions that do not match the fingerprint, counters that
///    disagree with the history: rejected, trials, elapsed_s, batch_size);
///  * qnas::invalid_argument: written for another space (fingerprint mismatch; the message names
///    the first decision that differs).
inline checkpoint_state load_checkpoint(const std::filesystem::path& path, const space_description& space) {
  const std::string file = path.string();
  const std::string where = "qnas::search::load_checkpoint('" + file + "')";
  const std::string text = io::read_file(path);
  const auto outer = io::parse_json(text, file);
  if (!outer.is_object() || !outer.contains("format") || outer["format"] != checkpoint_format)
    throw io_error(where, "not a qnas search checkpoint (no \"format\": \"qnas.search.checkpoint\")");
  const int version = io::get_field<int>(outer, "version", where);
  if (version != checkpoint_version)
    throw io_error(where, qnas::detail::cat("checkpoint version ", version, " is not supported (this build reads ",
                                            checkpoint_version, ")"));
  const auto bytes = io::get_field<std::size_t>(outer, "bytes", where);
  const auto crc = io::get_field<std::uint32_t>(outer, "crc32", where);
  // The payload is the last member, written verbatim: `"payload":` ... `}` + newline.
  constexpr std::string_view key = "\"payload\":";
  const auto at = text.find(key);
  const auto end = text.find_last_of('}');
  if (at == std::string::npos || end == std::string::npos || end < at + key.size())
    throw io_error(where, "corrupt: cannot locate the payload");
  const std::string_view body(text.data() + at + key.size(), end - at - key.size());
  if (body.size() != bytes)
    throw io_error(where, qnas::detail::cat("corrupt or truncated: the payload has ", body.size(), " bytes, the header says ",
                                            bytes));
  if (const auto got = detail::crc32_of(body); got != crc)
    throw io_error(where, qnas::detail::cat("corrupt: CRC-32 of the payload is ", got, ", the header says ", crc));
  const auto& payload = io::get_member(outer, "payload", where);

  // Same space? Compare fingerprints; on mismatch say which decision differs.
  const auto& sp = io::get_member(payload, "space", where);
  const auto fp = io::get_field<std::string>(sp, "fingerprint", where);
  if (fp != space.fingerprint_hex()) {
    std::string diff;
    try {
      const auto saved = space_description_from_json(sp);
      const auto n = std::min(saved.num_decisions(), space.num_decisions());
      for (std::size_t i = 0; i < n && diff.empty(); ++i)
        if (!(saved[i] == space[i]))
          diff = qnas::detail::cat("decision #", i, " is '", saved[i].name, "' (", saved[i].cardinality,
                                   " alternatives) there, '", space[i].name, "' (", space[i].cardinality, ") here");
      if (diff.empty())
        diff = qnas::detail::cat("it has ", saved.num_decisions(), " decisions, this space has ", space.num_decisions());
    } catch (const std::exception& e) {
      diff = e.what();
    }
    throw invalid_argument(where, qnas::detail::cat("written for another search space (fingerprint ", fp,
                                                    ", this space has ", space.fingerprint_hex(), "): ", diff));
  }

  // The fingerprint is a hash of the decisions; decisions edited under an unchanged fingerprint
  // (labels renamed or swapped) would make the history mean other alternatives.
  try {
    const auto saved = space_description_from_json(sp);
    if (!(saved == space))
      throw invalid_argument("qnas::space_description_from_json", "the decisions differ from this space's");
  } catch (const invalid_argument& e) {
    throw io_error(where, qnas::detail::cat("field 'space' does not match its fingerprint ", fp, ": ", e.what()));
  }

  checkpoint_state st;
  const auto& strat = io::get_member(payload, "strategy", where);
  st.strategy_name = io::get_field<std::string>(strat, "name", where);
  st.strategy_state = io::get_member(strat, "state", where);
  const auto& run = io::get_member(payload, "runner", where);
  st.trials = io::get_field<std::size_t>(run, "trials", where);
  st.rejected = io::get_field<std::size_t>(run, "rejected", where);
  st.elapsed_s = io::get_field<double>(run, "elapsed_s", where);
  st.batch_size = io::get_field<std::size_t>(run, "batch_size", where);
  try {
    st.evaluation_seed = std::stoull(io::get_field<std::string>(run, "evaluation_seed", where));
  } catch (const std::logic_error&) {
    throw io_error(where, "field 'evaluation_seed' is not an unsigned integer");
  }
  const auto& hist = io::get_member(payload, "history", where);
  if (!hist.is_array()) throw io_error(where, "field 'history' is not an array");
  for (const auto& r : hist) {
    try {
      st.history.push_back(trial_record_from_json(r, space));
    } catch (const invalid_argument& e) {
      throw io_error(where, e.what());
    }
    if (st.history.back().index != st.history.size() - 1)
      throw io_error(where, qnas::detail::cat("history entry ", st.history.size() - 1, " has trial number ",
                                              st.history.back().index));
  }
  if (st.history.size() != st.trials)
    throw io_error(where, qnas::detail::cat("the history holds ", st.history.size(), " trials, the counter says ", st.trials));
  // The counters must agree with the history they summarise.
  std::size_t rejected = 0;
  for (const auto& r : st.history) rejected += r.rejected ? 1 : 0;
  if (st.rejected != rejected)
    throw io_error(where, qnas::detail::cat("field 'runner.rejected' is ", st.rejected, ", but the history holds ", rejected,
                                            " rejected trials (of ", st.trials, ")"));
  if (!(st.elapsed_s >= 0 && st.elapsed_s <= max_elapsed_s))
    throw io_error(where, qnas::detail::cat("field 'runner.elapsed_s' is ", st.elapsed_s, "; wall time must be >= 0 and at most ",
                                            max_elapsed_s, " s"));
  if (st.batch_size == 0) throw io_error(where, "field 'runner.batch_size' is 0; a batch holds at least one trial");
  return st;
}

/// What a checkpoint says about its strategy's past: one ask per trial, one tell per trial that
/// got a reward (trained, or rejected/failed with a rejected_reward).
inline trial_counts counts_of(const checkpoint_state& st) {
  trial_counts n{st.history.size(), 0};
  for (const auto& r : st.history) n.told += r.reward.has_value() ? 1 : 0;
  return n;
}

/// Loads the checkpoint's strategy state into `s` (freshly constructed over the checkpoint's
/// space) and cross-checks it with the checkpoint's counters (check_counts), so that a state
/// whose counters were edited, or that belongs to another run, is refused instead of resumed.
/// A malformed state is an io_error, a state that contradicts the checkpoint an invalid_argument;
/// both name `path`.
template <strategy S>
void load_strategy_state(S& s, const checkpoint_state& st, const std::filesystem::path& path) {
  const nlohmann::json before = s.save();
  try {
    s.load(st.strategy_state);
  } catch (const nlohmann::json::exception& e) {
    throw io_error(path.string(), qnas::detail::cat("the strategy state in this checkpoint is malformed: ", e.what()));
  } catch (const invalid_argument& e) {
    throw invalid_argument(path.string(), qnas::detail::cat("the strategy state in this checkpoint is refused: ", e.what()));
  }
  try {
    check_counts(s, counts_of(st));
  } catch (const invalid_argument& e) {
    s.load(before);  // the caller's strategy is left as it was, as after a refused load()
    throw invalid_argument(path.string(), qnas::detail::cat("the strategy state contradicts the checkpoint's history: ", e.what()));
  }
}

}  // namespace qnas::search
