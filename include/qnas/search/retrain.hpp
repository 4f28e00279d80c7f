// Retraining a search's finalists over several seeds: pick the k best trials (by reward or from the Pareto front), train each with the same seeds, rank them on the mean.
//
// A search trial's accuracy comes from one short training with one seed, so the best of many
// trials is partly that seed's luck, and one full training still varies by a point or two from
// seed to seed. The way out is the one AutoQKeras and most NAS papers take: retrain a few
// finalists, each with the same seeds (so they are compared on equal draws), rank them on the
// mean, and report the spread. Measure the chosen model with fresh seeds (another seed_list
// stream), so that the seeds that chose it do not also measure it.
//
//   const auto finalists = search::best_by_reward(result.history, 5);
//   search::retrainer final_training(final_evaluator, {.threads = 4});
//   const auto r = final_training.run(finalists, search::seed_list(seed, 3), objective);
//   r.best_finalist().trial->index, r.best_finalist().stats.mean, r.best_finalist().stats.stddev
//
// The (finalist, seed) trainings run in parallel (search/parallel.hpp); each is seeded from its
// seed alone, so the result is the same on any number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "qnas/core/diagnostics.hpp"
#include "qnas/search/evaluator.hpp"
#include "qnas/search/objectives.hpp"
#include "qnas/search/parallel.hpp"
#include "qnas/search/pareto.hpp"
#include "qnas/space/candidate.hpp"

namespace qnas::search {

/// `count` seeds for retraining: trial_seed(base, first + k) for k = 0, 1, ... Streams with
/// different `first` far apart (e.g. 1 << 21 to choose among finalists, 1 << 22 to measure the
/// chosen model) do not overlap, nor meet the search's own trial seeds (trial_seed(base, trial)).
[[nodiscard]] inline std::vector<std::uint64_t> seed_list(std::uint64_t base, std::size_t count, std::size_t first = 0) {
  std::vector<std::uint64_t> s;
  s.reserve(count);
  for (std::size_t k = 0; k < count; ++k) s.push_back(trial_seed(base, first + k));
  return s;
}

namespace detail {
inline bool has_reward(const trial_record& r) { return r.trained() && r.reward.has_value(); }

// The first k records of `ranked` with distinct candidates (a candidate trained twice counts
// once, at its first, i.e. best, place).
inline std::vector<trial_record> distinct_first(const std::vector<const trial_record*>& ranked, std::size_t k) {
  std::vector<trial_record> out;
  for (const trial_record* r : ranked) {
    if (out.size() == k) break;
    if (std::none_of(out.begin(), out.end(), [r](const trial_record& f) { return f.cand == r->cand; }))
      out.push_back(*r);
  }
  return out;
}
}  // namespace detail

/// The trained trials (neither rejected nor failed, with a reward) with the k highest rewards,
/// highest first, one per candidate (a candidate evaluated twice counts at its higher reward);
/// equal rewards keep trial order. Fewer than k when fewer candidates were trained.
[[nodiscard]] inline std::vector<trial_record> best_by_reward(const std::vector<trial_record>& history, std::size_t k) {
  std::vector<const trial_record*> ranked;
  for (const auto& r : history)
    if (detail::has_reward(r)) ranked.push_back(&r);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const trial_record* a, const trial_record* b) { return *a->reward > *b->reward; });
  return detail::distinct_first(ranked, k);
}

/// The trained trials on the Pareto front of `history` over `axes` (by default accuracy up,
/// energy down; every trained trial must report their metrics) that `keep` accepts (all when
/// empty), best first on the first axis (equal values keep trial order), one per candidate, at
/// most k. The front is that of every trained trial; `keep` then narrows it (e.g. to models
/// with at most a quarter of a reference's energy), so a kept point is one no trial beats.
[[nodiscard]] inline std::vector<trial_record> best_of_front(const std::vector<trial_record>& history, std::size_t k,
                                                             const std::function<bool(const trial_record&)>& keep = {},
                                                             std::vector<pareto_axis> axes = pareto_archive::accuracy_energy()) {
  constexpr const char* where = "qnas::search::best_of_front";
  pareto_archive archive(std::move(axes));  // validates the axes
  std::vector<std::vector<double>> point(history.size());
  for (std::size_t i = 0; i < history.size(); ++i) {
    const trial_record& r = history[i];
    if (!detail::has_reward(r)) continue;
    for (const auto& a : archive.axes()) {
      const auto v = r.values.get(a.metric);
      if (!v)
        throw invalid_argument(where, qnas::detail::cat("trial ", r.index, " does not report the Pareto axis metric '",
                                                        a.metric, "'"));
      point[i].push_back(*v);
    }
    archive.insert(pareto_point{i, point[i], {}});  // id: position in history; no label, so exact ties both stay
  }
  // front() is best first on the first axis, equal values by id, i.e. in trial order.
  std::vector<std::size_t> on_front;
  for (const pareto_point& p : archive.front()) on_front.push_back(p.id);
  std::vector<const trial_record*> ranked;
  for (std::size_t i : on_front)
    if (!keep || keep(history[i])) ranked.push_back(&history[i]);
  return detail::distinct_first(ranked, k);
}

/// Count, mean, sample standard deviation (n - 1 in the denominator; 0 for one value), minimum
/// and maximum of a metric over seeds.
struct sample_stats {
  std::size_t count = 0;
  double mean = 0, stddev = 0, min = 0, max = 0;
};

/// The statistics of `values` (at least one): the mean is the sum in order over the count, and
/// exactly the value when all are equal (a model's energy is the same for every seed).
[[nodiscard]] inline sample_stats stats_of(const std::vector<double>& values) {
  if (values.empty()) throw invalid_argument("qnas::search::stats_of", "needs at least one value");
  sample_stats s;
  s.count = values.size();
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  if (s.min == s.max) {
    s.mean = s.min;
    return s;
  }
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(values.size());
  double sq = 0;
  for (double v : values) sq += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(sq / static_cast<double>(values.size() - 1));
  return s;
}

/// Settings of a retraining that do not change its results.
struct retrain_options {
  std::size_t threads = 1;  ///< trainings run at once (parallel over (finalist, seed) pairs)
  /// The metric whose per-seed values and statistics each finalist reports (and, unless a
  /// ranking objective is given, whose mean ranks them).
  std::string metric = std::string(metric_names::accuracy);
};

/// One finalist's retraining.
struct finalist_result {
  candidate cand;
  std::optional<trial_record> trial;  ///< the search trial it came from; nullopt for a candidate given directly
  std::vector<metrics> runs;          ///< the evaluator's metrics, one per seed, in seed order
  metrics mean;                       ///< every metric averaged over the seeds (as stats_of does)
  std::vector<double> values;         ///< the options' metric of each run, in seed order
  sample_stats stats;                 ///< mean, spread, range of `values`
  double rank = 0;                    ///< the ranking objective on `mean`
};

/// What a retraining returns: every finalist in the order given, and which ranks highest.
struct retrain_result {
  std::string metric;                      ///< retrain_options::metric
  std::vector<std::uint64_t> seeds;        ///< the seeds every finalist was trained with
  std::vector<finalist_result> finalists;  ///< in the order given
  std::size_t best = 0;                    ///< index of the highest rank (the earliest of equal ranks)

  [[nodiscard]] const finalist_result& best_finalist() const { return finalists.at(best); }
  /// Indices of the finalists by decreasing rank; equal ranks keep the given order.
  [[nodiscard]] std::vector<std::size_t> ranking() const {
    std::vector<std::size_t> order(finalists.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return finalists[a].rank > finalists[b].rank; });
    return order;
  }
};

/// Trains finalists with a list of seeds through an evaluator and ranks them. Each (candidate,
/// seed) pair is evaluated once per retrainer: a pair trained by an earlier run() (a model two
/// lists of finalists share) is taken from memory, so the evaluator must give the same metrics
/// for the same (candidate, seed), as search evaluators do (DESIGN.md rule 6). The evaluator is
/// called as the runner calls it, concurrently, with evaluation_context{0, seed}: retraining is
/// not a search trial, so seed every random draw from ctx.seed. One run() at a time per retrainer.
template <evaluator E>
class retrainer {
 public:
  explicit retrainer(E eval, retrain_options options = {}) : eval_(std::move(eval)), opt_(std::move(options)) {
    constexpr const char* where = "qnas::search::retrainer";
    if (opt_.threads == 0) throw invalid_argument(where, "threads must be >= 1");
    if (opt_.metric.empty()) throw invalid_argument(where, "metric must not be empty");
  }

  /// Retrains search trials (e.g. best_by_reward or best_of_front), ranked by the mean of the
  /// options' metric.
  retrain_result run(const std::vector<trial_record>& finalists, const std::vector<std::uint64_t>& seeds) {
    return run(finalists, seeds, maximize_metric{opt_.metric});
  }
  /// The same, ranked by `rank` on each finalist's mean metrics (e.g. the search's objective).
  template <objective O>
  retrain_result run(const std::vector<trial_record>& finalists, const std::vector<std::uint64_t>& seeds, const O& rank) {
    std::vector<finalist_result> f(finalists.size());
    for (std::size_t i = 0; i < f.size(); ++i) f[i].cand = finalists[i].cand, f[i].trial = finalists[i];
    return train(std::move(f), seeds, rank);
  }
  /// Retrains candidates given directly (a reference model, a chosen model), ranked by the mean
  /// of the options' metric.
  retrain_result run(const std::vector<candidate>& finalists, const std::vector<std::uint64_t>& seeds) {
    return run(finalists, seeds, maximize_metric{opt_.metric});
  }
  template <objective O>
  retrain_result run(const std::vector<candidate>& finalists, const std::vector<std::uint64_t>& seeds, const O& rank) {
    std::vector<finalist_result> f(finalists.size());
    for (std::size_t i = 0; i < f.size(); ++i) f[i].cand = finalists[i];
    return train(std::move(f), seeds, rank);
  }

  /// Evaluations run so far (pairs taken from memory not counted).
  [[nodiscard]] std::size_t trainings() const noexcept { return trainings_; }
  [[nodiscard]] const retrain_options& options() const noexcept { return opt_; }

 private:
  using key = std::pair<candidate, std::uint64_t>;

  static std::string who(const finalist_result& f, std::size_t i) {
    return f.trial ? qnas::detail::cat("finalist ", i, " (trial ", f.trial->index, ")") : qnas::detail::cat("finalist ", i);
  }

  template <class O>
  retrain_result train(std::vector<finalist_result> f, const std::vector<std::uint64_t>& seeds, const O& rank) {
    constexpr const char* where = "qnas::search::retrainer";
    if (f.empty()) throw invalid_argument(where, "no finalists to retrain (did the search train any trial?)");
    if (seeds.empty()) throw invalid_argument(where, "no seeds: every finalist needs at least one training");
    for (std::size_t a = 0; a < seeds.size(); ++a)
      for (std::size_t b = 0; b < a; ++b)
        if (seeds[a] == seeds[b])
          throw invalid_argument(where, qnas::detail::cat("seed ", seeds[a], " is listed twice (#", b, " and #", a,
                                                          "): it would count one training twice in the mean"));
    // The pairs not trained before, each once, in (finalist, seed) order.
    std::vector<key> todo;
    for (const auto& x : f)
      for (std::uint64_t s : seeds) {
        key k{x.cand, s};
        if (!done_.contains(k) && std::find(todo.begin(), todo.end(), k) == todo.end()) todo.push_back(std::move(k));
      }
    std::vector<metrics> got(todo.size());
    parallel_for(todo.size(), opt_.threads, [&](std::size_t j) {
      got[j] = evaluate(eval_, todo[j].first, evaluation_context{0, todo[j].second});
    });
    trainings_ += todo.size();
    for (std::size_t j = 0; j < todo.size(); ++j) done_.emplace(std::move(todo[j]), std::move(got[j]));

    retrain_result res{opt_.metric, seeds, std::move(f), 0};
    for (std::size_t i = 0; i < res.finalists.size(); ++i) {
      finalist_result& x = res.finalists[i];
      for (std::uint64_t s : seeds) {
        const metrics& m = done_.at(key{x.cand, s});
        for (const auto& [name, v] : m.values())
          if (!std::isfinite(v))
            throw invalid_argument(where, qnas::detail::cat(who(x, i), ", seed ", s, ": the evaluator reported metric '",
                                                            name, "' = ", v, " (NaN and infinities are not measurements)"));
        if (!m.has(opt_.metric))
          throw invalid_argument(where, qnas::detail::cat(who(x, i), ", seed ", s, ": the evaluator did not report '",
                                                          opt_.metric, "'"));
        if (!x.runs.empty() && x.runs.front().size() != m.size())
          throw invalid_argument(where, qnas::detail::cat(who(x, i), ", seed ", s,
                                                          ": the evaluator reported other metrics than for seed ",
                                                          seeds.front()));
        x.runs.push_back(m);
        x.values.push_back(m.at(opt_.metric));
      }
      for (const auto& [name, v0] : x.runs.front().values()) {
        std::vector<double> per_seed;
        for (std::size_t k = 0; k < x.runs.size(); ++k) {
          const auto v = x.runs[k].get(name);
          if (!v)
            throw invalid_argument(where, qnas::detail::cat(who(x, i), ", seed ", seeds[k], ": the evaluator did not report '",
                                                            name, "' (it did for seed ", seeds.front(), ")"));
          per_seed.push_back(*v);
        }
        x.mean.set(name, stats_of(per_seed).mean);
      }
      x.stats = stats_of(x.values);
      x.rank = static_cast<double>(rank(x.mean));
      if (!std::isfinite(x.rank))
        throw invalid_argument(where, qnas::detail::cat(who(x, i), ": the ranking objective gave ", x.rank));
      if (x.rank > res.finalists[res.best].rank) res.best = i;
    }
    return res;
  }

  E eval_;
  retrain_options opt_;
  std::map<key, metrics> done_;
  std::size_t trainings_ = 0;
};

/// retrainer(eval, options).run(finalists, seeds[, rank]) in one call: finalists are search
/// trials or candidates.
template <evaluator E, class Finalists>
retrain_result retrain(const E& eval, const Finalists& finalists, const std::vector<std::uint64_t>& seeds,
                       retrain_options options = {}) {
  return retrainer<E>(eval, std::move(options)).run(finalists, seeds);
}
template <evaluator E, class Finalists, objective O>
retrain_result retrain(const E& eval, const Finalists& finalists, const std::vector<std::uint64_t>& seeds, const O& rank,
                       retrain_options options = {}) {
  return retrainer<E>(eval, std::move(options)).run(finalists, seeds, rank);
}

}  // namespace qnas::search
