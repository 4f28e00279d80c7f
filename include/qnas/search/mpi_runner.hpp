// The MPI runner: rank 0 runs the search (strategy, logs, checkpoints); the other ranks evaluate.
//
// Not included by qnas.hpp: it needs <mpi.h> and linking MPI (CMake: find_package(MPI) and
// MPI::MPI_CXX). See docs/mpi.md for the launch command and what failures are tolerated.
//
// How it works. Every rank calls run_search_mpi(...) with the same arguments. Rank 0 runs the
// ordinary thread runner (runner.hpp) with one runner thread per worker rank and an evaluator
// that hands each evaluation to a dispatcher thread, the only thread on rank 0 that talks MPI.
// The dispatcher sends (trial, seed, candidate) to an idle worker and returns the worker's
// metrics to the waiting runner thread. Because the runner already makes every result depend on
// (strategy seed, batch_size, evaluation_seed) only, never on which thread or rank evaluated
// what, the MPI runner gives the same trial sequence, log and checkpoints as the thread runner
// with the same options, and its checkpoints resume under either.
//
// Failures. A worker that does not answer within mpi_options::timeout_s has its trial re-queued
// to another worker (at most max_attempts attempts per trial). A worker that timed out gets no
// new work until it answers again; a late answer is used when the trial is still open (an
// evaluation depends only on candidate and seed, so any attempt's metrics are the same) and
// dropped otherwise. Every timeout, retry and late answer is a line of the event log, and a
// trial that needed more than one attempt carries the metric "mpi_retries" in the trial log.
// Open MPI (4.x, no ULFM) aborts the whole job when a rank process dies, so what is tolerated
// is a worker that hangs, is too slow, or stops answering, not one whose process exits. For
// that, tools/qnas-mpi-restart relaunches the job, which resumes from its last checkpoint
// (docs/mpi.md, "Restarting a job whose rank died").
#pragma once

#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/io/json.hpp"
#include "qnas/core/diagnostics.hpp"
#include "qnas/io/jsonl.hpp"
#include "qnas/search/runner.hpp"

namespace qnas::search::mpi {

/// Settings of the MPI layer (the search itself is configured by runner_options as usual).
struct mpi_options {
  double timeout_s = 0;          ///< an attempt not answered within this many seconds is re-queued; 0 = wait forever
  std::size_t max_attempts = 3;  ///< attempts per trial before the run fails with qnas::error
  /// With every worker silent (timed out) for this long, pending trials fail instead of waiting
  /// for one to come back; 0 = 10 * timeout_s.
  double give_up_s = 0;
  std::filesystem::path event_log;  ///< JSONL of timeouts, retries, late answers; empty = none
  bool record_retries = true;       ///< add "mpi_retries" to the metrics of a trial that needed retries
};

/// Settings of a worker rank.
struct worker_options {
  /// Fault injection for tests and drills: after answering this many trials, the worker keeps
  /// receiving work but never answers (as a hung worker or a lost node looks to rank 0), until
  /// rank 0 stops it. nullopt = always answer.
  std::optional<std::size_t> stop_answering_after;
};

/// MPI_Init_thread / MPI_Finalize for a program that uses qnas's MPI runner. The runner needs
/// MPI_THREAD_SERIALIZED (rank 0 talks MPI from a dispatcher thread); the constructor throws
/// qnas::error when the MPI library provides less.
class session {
 public:
  session(int& argc, char**& argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    if (provided < MPI_THREAD_SERIALIZED) {
      MPI_Finalize();
      throw error("qnas::search::mpi::session", "the MPI library does not provide MPI_THREAD_SERIALIZED");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session() { MPI_Finalize(); }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

 private:
  int rank_ = 0, size_ = 1;
};

namespace detail {

enum tag : int { tag_work = 1, tag_result = 2, tag_stop = 3 };

inline void send_text(const std::string& s, int dest, int tg, MPI_Comm comm) {
  MPI_Send(s.data(), static_cast<int>(s.size()), MPI_CHAR, dest, tg, comm);
}

inline std::string recv_text(const MPI_Status& probed, MPI_Comm comm) {
  int n = 0;
  MPI_Get_count(&probed, MPI_CHAR, &n);
  std::string s(static_cast<std::size_t>(n), '\0');
  MPI_Recv(s.data(), n, MPI_CHAR, probed.MPI_SOURCE, probed.MPI_TAG, comm, MPI_STATUS_IGNORE);
  return s;
}

/// Metrics as {name: bit pattern}: exact for every double (JSON text would round-trip finite
/// values too, but not NaN, which the runner must see to report it like the thread runner).
inline nlohmann::json metrics_to_bits(const metrics& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m.values()) {
    std::uint64_t u;
    std::memcpy(&u, &v, sizeof u);
    j[k] = u;
  }
  return j;
}

inline metrics metrics_from_bits(const nlohmann::json& j) {
  metrics m;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto u = it->get<std::uint64_t>();
    double v;
    std::memcpy(&v, &u, sizeof v);
    m.set(it.key(), v);
  }
  return m;
}

/// Rank 0's side: queues evaluations from runner threads and runs the MPI traffic on its own
/// thread. Destroying it stops every worker (also when the search ends with an exception, so
/// the worker ranks never wait forever).
class dispatcher {
 public:
  /// `resuming`: the event log is appended to (a relaunched job keeps the earlier launches' events).
  dispatcher(MPI_Comm comm, int workers, mpi_options opt, bool resuming = false)
      : comm_(comm), workers_(workers), opt_(std::move(opt)), state_(static_cast<std::size_t>(workers) + 1, idle) {
    try {
      if (!opt_.event_log.empty())
        log_ = io::jsonl_writer(opt_.event_log, resuming ? io::jsonl_writer::mode::append : io::jsonl_writer::mode::truncate);
      event({{"event", "start"}, {"workers", workers_}, {"timeout_s", opt_.timeout_s}});
    } catch (...) {
      stop_workers();  // they would otherwise wait for work forever
      throw;
    }
    thread_ = std::thread([this] { loop(); });
  }
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;
  ~dispatcher() {
    {
      std::lock_guard lock(m_);
      stopping_ = true;
    }
    thread_.join();
  }

  /// Called by runner threads: blocks until some worker answered for this trial.
  metrics evaluate(const candidate& c, const evaluation_context& ctx) {
    auto r = std::make_shared<request>();
    r->cand = c;
    r->ctx = ctx;
    auto fut = r->done.get_future();
    {
      std::lock_guard lock(m_);
      if (broken_) std::rethrow_exception(broken_);
      queue_.push_back(std::move(r));
    }
    return fut.get();
  }

 private:
  using clock = std::chrono::steady_clock;
  enum worker_state { idle, busy, silent };
  struct request {
    candidate cand;
    evaluation_context ctx;
    std::promise<metrics> done;
    std::size_t attempts = 0;
    bool finished = false;
  };
  struct attempt {
    std::shared_ptr<request> req;
    int worker = 0;
    clock::time_point start;
  };

  void event(nlohmann::json j) {
    if (log_.is_open()) log_.write(j);
  }

  void finish(request& r, metrics m) {
    if (r.finished) return;
    r.finished = true;
    if (opt_.record_retries && r.attempts > 1) m.set("mpi_retries", static_cast<double>(r.attempts - 1));
    r.done.set_value(std::move(m));
  }
  void fail(request& r, const std::string& why) {
    if (r.finished) return;
    r.finished = true;
    r.done.set_exception(std::make_exception_ptr(error("qnas::search::mpi", why)));
  }

  void dispatch(const std::shared_ptr<request>& r, int w) {
    const std::uint64_t id = next_id_++;
    ++r->attempts;
    if (r->attempts > 1)
      event({{"event", "retry"}, {"trial", r->ctx.trial}, {"worker", w}, {"attempt", r->attempts}});
    const nlohmann::json msg = {{"id", id}, {"trial", r->ctx.trial}, {"seed", r->ctx.seed}, {"cand", r->cand.choices}};
    // Small messages go out eagerly, so a send to a worker that stopped listening still returns.
    send_text(msg.dump(), w, tag_work, comm_);
    state_[static_cast<std::size_t>(w)] = busy;
    running_[id] = attempt{r, w, clock::now()};
  }

  void on_result(const MPI_Status& st) {
    const int w = st.MPI_SOURCE;
    const auto j = nlohmann::json::parse(recv_text(st, comm_));
    const auto id = io::get_integer<std::uint64_t>(j.at("id"), "id", "qnas::search::mpi_runner (message)");
    if (state_[static_cast<std::size_t>(w)] == silent)
      event({{"event", "worker_back"}, {"worker", w}});
    state_[static_cast<std::size_t>(w)] = idle;
    last_answer_ = clock::now();
    const auto it = running_.find(id);
    std::shared_ptr<request> r;
    bool late = false;
    if (it != running_.end()) {
      r = it->second.req;
      running_.erase(it);
    } else if (const auto t = timed_out_.find(id); t != timed_out_.end()) {
      r = t->second;
      timed_out_.erase(t);
      late = true;
    }
    if (!r) return;
    if (r->finished) {
      event({{"event", "duplicate_dropped"}, {"trial", r->ctx.trial}, {"worker", w}});
      return;
    }
    if (late) event({{"event", "late_answer_used"}, {"trial", r->ctx.trial}, {"worker", w}});
    if (j.contains("error"))
      fail(*r, qnas::detail::cat("worker rank ", w, ", trial ", r->ctx.trial, ": ", j["error"].get<std::string>()));
    else
      finish(*r, metrics_from_bits(j.at("metrics")));
  }

  void check_timeouts() {
    if (opt_.timeout_s <= 0) return;
    const auto now = clock::now();
    for (auto it = running_.begin(); it != running_.end();) {
      const double waited = std::chrono::duration<double>(now - it->second.start).count();
      if (waited < opt_.timeout_s) {
        ++it;
        continue;
      }
      auto r = it->second.req;
      const int w = it->second.worker;
      state_[static_cast<std::size_t>(w)] = silent;
      event({{"event", "timeout"}, {"trial", r->ctx.trial}, {"worker", w}, {"attempt", r->attempts}, {"after_s", waited}});
      timed_out_[it->first] = r;
      it = running_.erase(it);
      if (r->finished) continue;
      if (r->attempts >= opt_.max_attempts) {
        fail(*r, qnas::detail::cat("trial ", r->ctx.trial, ": no answer from a worker in ", r->attempts,
                                   " attempts of ", opt_.timeout_s, " s each"));
        event({{"event", "gave_up"}, {"trial", r->ctx.trial}});
      } else {
        std::lock_guard lock(m_);
        queue_.push_front(std::move(r));  // first in line for the next free worker
      }
    }
  }

  int idle_worker() const {
    for (int w = 1; w <= workers_; ++w)
      if (state_[static_cast<std::size_t>(w)] == idle) return w;
    return 0;
  }

  /// The dispatcher thread. An exception inside it (the event log cannot be written, a garbled
  /// message) fails every waiting and later evaluation with that exception and stops the workers,
  /// so the run ends with the error instead of terminating the MPI job.
  void loop() {
    try {
      run_loop();
    } catch (...) {
      const auto e = std::current_exception();
      std::lock_guard lock(m_);
      broken_ = e;
      for (auto& r : queue_)
        if (!r->finished) r->finished = true, r->done.set_exception(e);
      queue_.clear();
      for (auto& [id, a] : running_)
        if (!a.req->finished) a.req->finished = true, a.req->done.set_exception(e);
      try {
        stop_workers();
      } catch (...) {
      }
    }
  }

  void run_loop() {
    last_answer_ = clock::now();
    const double give_up = opt_.give_up_s > 0 ? opt_.give_up_s : 10 * opt_.timeout_s;
    for (;;) {
      bool worked = false;
      // Hand queued trials to idle workers.
      for (int w; (w = idle_worker()) != 0;) {
        std::shared_ptr<request> r;
        {
          std::lock_guard lock(m_);
          while (!queue_.empty() && queue_.front()->finished) queue_.pop_front();
          if (queue_.empty()) break;
          r = std::move(queue_.front());
          queue_.pop_front();
        }
        dispatch(r, w);
        worked = true;
      }
      // Collect every answer that has arrived.
      for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, tag_result, comm_, &flag, &st);
        if (!flag) break;
        on_result(st);
        worked = true;
      }
      check_timeouts();
      // Every worker silent for too long: fail what waits rather than hang the search.
      bool any_alive = false;
      for (int w = 1; w <= workers_; ++w) any_alive |= state_[static_cast<std::size_t>(w)] != silent;
      if (!any_alive && opt_.timeout_s > 0 &&
          std::chrono::duration<double>(clock::now() - last_answer_).count() > give_up) {
        std::lock_guard lock(m_);
        for (auto& r : queue_) fail(*r, qnas::detail::cat("no MPI worker has answered for ", give_up, " s"));
        queue_.clear();
      }
      {
        std::lock_guard lock(m_);
        std::erase_if(queue_, [](const auto& r) { return r->finished; });  // answered late while re-queued
        if (stopping_ && queue_.empty()) break;
      }
      if (!worked) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    stop_workers();
    event({{"event", "end"}});
  }

  void stop_workers() {
    for (int w = 1; w <= workers_; ++w) send_text(std::string(), w, tag_stop, comm_);
  }

  MPI_Comm comm_;
  int workers_;
  mpi_options opt_;
  io::jsonl_writer log_;

  std::mutex m_;  // guards queue_, stopping_ and broken_ (shared with runner threads)
  std::deque<std::shared_ptr<request>> queue_;
  bool stopping_ = false;
  std::exception_ptr broken_;

  // dispatcher thread only
  std::vector<worker_state> state_;  // index = rank; [0] unused
  std::map<std::uint64_t, attempt> running_;
  std::map<std::uint64_t, std::shared_ptr<request>> timed_out_;
  std::uint64_t next_id_ = 0;
  clock::time_point last_answer_;
  std::thread thread_;
};

/// The evaluator the thread runner gets on rank 0: forwards to the dispatcher.
struct remote_evaluator {
  dispatcher* d = nullptr;
  metrics operator()(const candidate& c, const evaluation_context& ctx) const { return d->evaluate(c, ctx); }
};

/// A worker rank's loop: evaluate what rank 0 sends until it says stop.
template <evaluator E>
void serve(const E& eval, MPI_Comm comm, const worker_options& wo) {
  std::size_t answered = 0;
  for (;;) {
    MPI_Status st;
    MPI_Probe(0, MPI_ANY_TAG, comm, &st);
    const std::string text = recv_text(st, comm);
    if (st.MPI_TAG == tag_stop) return;
    if (wo.stop_answering_after && answered >= *wo.stop_answering_after) continue;
    const auto j = nlohmann::json::parse(text);
    nlohmann::json reply = {{"id", j.at("id")}};
    try {
      const candidate c(j.at("cand").get<std::vector<std::uint32_t>>());
      const evaluation_context ctx{io::get_integer<std::size_t>(j.at("trial"), "trial", "qnas::search::mpi_runner (message)"), io::get_integer<std::uint64_t>(j.at("seed"), "seed", "qnas::search::mpi_runner (message)")};
      reply["metrics"] = metrics_to_bits(search::evaluate(eval, c, ctx));
    } catch (const std::exception& e) {
      reply["error"] = e.what();
    }
    send_text(reply.dump(), 0, tag_result, comm);
    ++answered;
  }
}

}  // namespace detail

/// Runs a search over MPI_COMM_WORLD. Collective: every rank calls it with the same arguments
/// (the strategy is only used on rank 0; the evaluator only on the others). Rank 0 returns the
/// result exactly as run_search would with the same options (the runner's `threads` is set to
/// the number of workers); other ranks return nullopt once rank 0 is done. With a single rank
/// the search runs locally on options.threads threads. MPI must be initialized (see session).
/// Exceptions are those of run_search on rank 0, plus qnas::error when a trial found no worker
/// to answer within mpi_options' limits or a worker's evaluator threw (its message is kept).
template <class S, class E, class O, class... Callbacks>
std::optional<search_result> run_search_mpi(S& strategy, E eval, O objective, runner_options options,
                                            mpi_options mpi_opt = {}, worker_options worker = {},
                                            Callbacks&&... callbacks) {
  static_assert(check_strategy<S>(), "run_search_mpi(strategy, ...): the strategy must be a qnas::search::strategy");
  static_assert(check_evaluator<E>(), "run_search_mpi(..., evaluator, ...): the evaluator must be a qnas::search::evaluator");
  static_assert(check_objective<O>(), "run_search_mpi(..., objective, ...): the objective must be a qnas::search::objective");
  constexpr const char* where = "qnas::search::mpi::run_search_mpi";
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) throw invalid_argument(where, "MPI is not initialized (create a qnas::search::mpi::session first)");
  int level = 0;
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_SERIALIZED)
    throw invalid_argument(where, "MPI was initialized without MPI_THREAD_SERIALIZED (use MPI_Init_thread or mpi::session)");
  if (mpi_opt.max_attempts == 0) throw invalid_argument(where, "max_attempts must be >= 1");
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size == 1)
    return run_search(strategy, std::move(eval), std::move(objective), std::move(options),
                      static_cast<Callbacks&&>(callbacks)...);

  // A private communicator: the runner's messages never match a user's own on MPI_COMM_WORLD.
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  struct comm_guard {
    MPI_Comm& c;
    ~comm_guard() { MPI_Comm_free(&c); }
  } guard{comm};
  if (rank != 0) {
    detail::serve(eval, comm, worker);
    return std::nullopt;
  }
  detail::dispatcher d(comm, size - 1, std::move(mpi_opt), options.resume);
  options.threads = static_cast<std::size_t>(size - 1);
  return run_search(strategy, detail::remote_evaluator{&d}, std::move(objective), std::move(options),
                    static_cast<Callbacks&&>(callbacks)...);
}

}  // namespace qnas::search::mpi
