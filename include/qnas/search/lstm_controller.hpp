// lstm_controller: an autoregressive LSTM policy over heterogeneous decisions, trained by REINFORCE.
//
// As in Zoph & Le ("Neural Architecture Search with Reinforcement Learning", ICLR 2017) and the
// Microsoft quantization-aware NAS patent: one LSTM step per decision, in the order of the space
// description; step t reads the embedding of the choice made at step t-1 (a learned start vector
// at t = 0) and emits decision t through its own softmax head (so decisions may have different
// numbers of alternatives). Trained by REINFORCE with an exponential-moving-average baseline:
// ascend adv * log pi(c) + entropy_weight * sum_t H(pi_t) with Adam.
//
// Forward and backward (backpropagation through time) are written out with plain loops over
// small dense matrices: a controller step is a few thousand multiply-adds, so a BLAS call would
// cost more than it saves. tests/strategies/test_lstm_controller.cpp checks the gradient against
// finite differences.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qnas/io/json.hpp"
#include "qnas/search/reinforce.hpp"
#include "qnas/search/strategy.hpp"

namespace qnas::search {

/// Autoregressive LSTM controller (ask/tell, serialisable). Parameters live in one flat vector
/// (parameters()), so Adam, checkpoints and gradient checks treat them uniformly.
class lstm_controller {
 public:
  struct options {
    std::size_t hidden_size = 32;
    double learning_rate = 0.01;
    double baseline_momentum = 0.95;
    double entropy_weight = 0.0;
    double adam_beta1 = 0.9;
    double adam_beta2 = 0.999;
    double init_scale = 0.1;  ///< parameters start uniform in [-init_scale, init_scale]
  };

  lstm_controller(const space_description& space, options opt, std::uint64_t seed)
      : space_(space), opt_(opt), engine_(seed) {
    constexpr const char* where = "lstm_controller";
    check_options(opt_, where);
    if (space_.num_decisions() == 0) throw invalid_argument(where, "the space has no decisions");
    layout();
    for (auto& w : params_) w = opt_.init_scale * (2.0 * detail::uniform01(engine_) - 1.0);
    adam_.beta1 = opt_.adam_beta1;
    adam_.beta2 = opt_.adam_beta2;
    adam_.resize(params_.size());
    baseline_.momentum = opt_.baseline_momentum;
  }
  lstm_controller(const space_description& space, std::uint64_t seed) : lstm_controller(space, options{}, seed) {}

  /// The rules for options, checked by the constructor and by load().
  static void check_options(const options& o, std::string_view where) {
    if (o.hidden_size == 0) throw invalid_argument(where, "hidden_size must be >= 1");
    detail::check_policy_gradient_options(o.learning_rate, o.baseline_momentum, o.entropy_weight, o.adam_beta1,
                                          o.adam_beta2, where);
    if (!(o.init_scale >= 0) || !std::isfinite(o.init_scale))
      throw invalid_argument(where, detail::cat("init_scale must be finite and >= 0, got ", o.init_scale));
  }

  /// Against a checkpoint: every told reward made one Adam step.
  void check_counts(const trial_counts& n) const {
    if (adam_.t != n.told)
      throw invalid_argument("lstm_controller::load",
                             detail::cat("field 'adam.t' is ", adam_.t, ", but ", n.told, " rewards were told"));
  }

  /// Samples a candidate step by step, each choice feeding the next step.
  [[nodiscard]] candidate ask() {
    candidate c;
    c.choices.resize(space_.num_decisions());
    run(c, true);
    sampled_ = c;  // the activations of this sample stay valid for its tell until the next run
    sampled_valid_ = true;
    return c;
  }

  void tell(const candidate& c, double reward) {
    detail::check_tell(c, reward, space_, "lstm_controller::tell");
    const double adv = baseline_.advantage(reward);
    // The usual sequence ask(); tell() reuses ask's forward pass; otherwise run it again.
    if (sampled_valid_ && sampled_ == c)
      backward(c, adv, opt_.entropy_weight, grad_);
    else
      objective_gradient(c, adv, opt_.entropy_weight, grad_);
    adam_.step(params_, grad_, opt_.learning_rate);
    sampled_valid_ = false;
  }

  /// The most probable candidate by greedy decoding (argmax at every step).
  [[nodiscard]] candidate argmax() {
    candidate c;
    c.choices.resize(space_.num_decisions());
    run(c, false, true);
    return c;
  }

  /// log pi(c) under the current parameters.
  [[nodiscard]] double log_prob(const candidate& c) { return objective(c, 1.0, 0.0); }

  /// adv * log pi(c) + beta * sum_t H(pi_t): the quantity each tell ascends.
  [[nodiscard]] double objective(const candidate& c, double adv, double beta) {
    auto cc = c;
    run(cc, false);
    double lp = 0.0, h = 0.0;
    for (std::size_t t = 0; t < cc.size(); ++t) {
      const double* p = &probs_[head_off_[t]];
      lp += std::log(p[cc[t]]);
      for (std::size_t k = 0; k < space_.cardinality(t); ++k) h -= p[k] > 0 ? p[k] * std::log(p[k]) : 0.0;
    }
    return adv * lp + beta * h;
  }

  /// The gradient of objective(c, adv, beta) with respect to parameters(), into g.
  void objective_gradient(const candidate& c, double adv, double beta, std::vector<double>& g) {
    auto cc = c;
    run(cc, false);
    backward(cc, adv, beta, g);
  }

  /// All trainable parameters (start vector, embeddings, LSTM weights, heads), flat.
  /// Writing through the non-const reference is for gradient checks; it forgets the cached
  /// forward pass of the last ask (so a following tell recomputes it).
  [[nodiscard]] std::vector<double>& parameters() noexcept {
    sampled_valid_ = false;
    return params_;
  }
  [[nodiscard]] const std::vector<double>& parameters() const noexcept { return params_; }

  [[nodiscard]] nlohmann::json save() const {
    auto j = detail::save_header(name(), space_, engine_);
    j["options"] = {{"hidden_size", opt_.hidden_size},       {"learning_rate", opt_.learning_rate},
                    {"baseline_momentum", opt_.baseline_momentum}, {"entropy_weight", opt_.entropy_weight},
                    {"adam_beta1", opt_.adam_beta1},         {"adam_beta2", opt_.adam_beta2},
                    {"init_scale", opt_.init_scale}};
    j["parameters"] = params_;
    j["adam"] = adam_.save();
    j["baseline"] = baseline_.save();
    return j;
  }

  /// Restores a state saved by a controller over the same space with the same hidden size.
  void load(const nlohmann::json& j) {
    detail::read_state("qnas::search::lstm_controller::load", [&] {
      constexpr const char* where = "lstm_controller::load";
      engine_type e;
      detail::load_header(j, name(), space_, e);
      const auto& o = j.at("options");
      options opt{io::get_integer<std::size_t>(o.at("hidden_size"), "hidden_size", "qnas::search::lstm_controller::load"),  o.at("learning_rate").get<double>(),
                  o.at("baseline_momentum").get<double>(), o.at("entropy_weight").get<double>(),
                  o.at("adam_beta1").get<double>(),        o.at("adam_beta2").get<double>(),
                  o.at("init_scale").get<double>()};
      if (opt.hidden_size != opt_.hidden_size)
        throw invalid_argument(where, detail::cat("state has hidden_size ", opt.hidden_size, ", this controller has ",
                                                  opt_.hidden_size));
      auto p = j.at("parameters").get<std::vector<double>>();
      if (p.size() != params_.size())
        throw invalid_argument(where, detail::cat("state has ", p.size(), " parameters, expected ", params_.size()));
      detail::adam a;
      a.beta1 = opt.adam_beta1;
      a.beta2 = opt.adam_beta2;
      a.load(j.at("adam"), params_.size(), where);
      detail::ema_baseline b;
      b.momentum = opt.baseline_momentum;
      b.load(j.at("baseline"));
      check_options(opt, where);
      detail::check_learning_state(p, a, b, a.t, a.t > 0, where);  // one Adam step per tell
      opt_ = opt;
      engine_ = e;
      params_ = std::move(p);
      sampled_valid_ = false;
      adam_ = std::move(a);
      baseline_ = b;
    });
  }

  [[nodiscard]] std::string name() const { return "lstm_controller"; }
  [[nodiscard]] const space_description& space() const noexcept { return space_; }

 private:
  // Parameter layout (offsets into params_):
  //   start_ : H            input of step 0
  //   emb_[t]: K_t x H      embedding of the choice of decision t, input of step t+1 (t < T-1)
  //   w_     : 4H x 2H      gates (input, forget, cell, output) from [x; h_prev]
  //   b_     : 4H
  //   head_w_[t]: K_t x H, head_b_[t]: K_t   softmax head of decision t
  void layout() {
    const std::size_t H = opt_.hidden_size, T = space_.num_decisions();
    std::size_t n = 0;
    start_ = n;
    n += H;
    for (std::size_t t = 0; t + 1 < T; ++t) {  // the last choice feeds no step
      emb_.push_back(n);
      n += space_.cardinality(t) * H;
    }
    w_ = n;
    n += 4 * H * 2 * H;
    b_ = n;
    n += 4 * H;
    std::size_t k_total = 0;
    for (std::size_t t = 0; t < T; ++t) {
      head_w_.push_back(n);
      n += space_.cardinality(t) * H;
      head_b_.push_back(n);
      n += space_.cardinality(t);
      head_off_.push_back(k_total);
      k_total += space_.cardinality(t);
    }
    params_.assign(n, 0.0);
    grad_.assign(n, 0.0);
    probs_.assign(k_total, 0.0);
    for (auto* v : {&xh_, &gates_, &cell_, &tanh_cell_, &hidden_})
      v->assign(T * (v == &xh_ ? 2 * H : v == &gates_ ? 4 * H : H), 0.0);
  }

  static double sigmoid(double x) noexcept { return 1.0 / (1.0 + std::exp(-x)); }

  // A dot product with 8 independent partial sums: a single running sum is bound by the
  // latency of one add per element (and may not be reordered without -ffast-math); eight
  // chains keep the FPU busy. The summation order is fixed, so results stay deterministic.
  static double dot(const double* a, const double* b, std::size_t n) noexcept {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t j = 0;
    for (; j + 8 <= n; j += 8)
      for (std::size_t l = 0; l < 8; ++l) s[l] += a[j + l] * b[j + l];
    for (; j < n; ++j) s[j % 8] += a[j] * b[j];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  }

  // Runs the LSTM over all steps, caching activations for backward(). With `sample`, each
  // choice is drawn from its softmax and written into c; with `greedy`, the argmax is written;
  // otherwise c is read (teacher forcing).
  void run(candidate& c, bool sample, bool greedy = false) {
    sampled_valid_ = false;
    const std::size_t H = opt_.hidden_size, T = space_.num_decisions();
    const double* P = params_.data();
    for (std::size_t t = 0; t < T; ++t) {
      double* xh = &xh_[t * 2 * H];
      const double* x = t == 0 ? P + start_ : P + emb_[t - 1] + c[t - 1] * H;
      for (std::size_t j = 0; j < H; ++j) xh[j] = x[j];
      for (std::size_t j = 0; j < H; ++j) xh[H + j] = t == 0 ? 0.0 : hidden_[(t - 1) * H + j];
      double* z = &gates_[t * 4 * H];
      for (std::size_t r = 0; r < 4 * H; ++r) z[r] = P[b_ + r] + dot(P + w_ + r * 2 * H, xh, 2 * H);
      for (std::size_t j = 0; j < H; ++j) {
        const double i = sigmoid(z[j]), f = sigmoid(z[H + j]), g = std::tanh(z[2 * H + j]), o = sigmoid(z[3 * H + j]);
        z[j] = i, z[H + j] = f, z[2 * H + j] = g, z[3 * H + j] = o;  // keep activations, not pre-activations
        const double cp = t == 0 ? 0.0 : cell_[(t - 1) * H + j];
        const double cn = f * cp + i * g;
        cell_[t * H + j] = cn;
        tanh_cell_[t * H + j] = std::tanh(cn);
        hidden_[t * H + j] = o * tanh_cell_[t * H + j];
      }
      const std::size_t K = space_.cardinality(t);
      double* p = &probs_[head_off_[t]];
      const double* h = &hidden_[t * H];
      for (std::size_t k = 0; k < K; ++k) p[k] = P[head_b_[t] + k] + dot(P + head_w_[t] + k * H, h, H);
      detail::softmax(p, p, K);
      if (sample)
        c[t] = detail::sample_index(p, K, engine_);
      else if (greedy)
        c[t] = static_cast<std::uint32_t>(std::max_element(p, p + K) - p);
    }
  }

  // Backpropagation through time of adv * log pi(c) + beta * sum H, after run(c, false).
  void backward(const candidate& c, double adv, double beta, std::vector<double>& g) {
    const std::size_t H = opt_.hidden_size, T = space_.num_decisions();
    const double* P = params_.data();
    g.assign(params_.size(), 0.0);
    std::vector<double> dh(H, 0.0), dc(H, 0.0), dz(4 * H), dxh(2 * H), dlogits;
    for (std::size_t tt = T; tt-- > 0;) {
      const std::size_t K = space_.cardinality(tt);
      const double* p = &probs_[head_off_[tt]];
      const double* h = &hidden_[tt * H];
      dlogits.assign(K, 0.0);
      detail::policy_gradient(p, K, c[tt], adv, beta, dlogits.data());
      // Head: logits = Wo h + bo.
      for (std::size_t k = 0; k < K; ++k) {
        g[head_b_[tt] + k] += dlogits[k];
        const double* w = P + head_w_[tt] + k * H;
        double* gw = &g[head_w_[tt] + k * H];
        for (std::size_t j = 0; j < H; ++j) {
          gw[j] += dlogits[k] * h[j];
          dh[j] += dlogits[k] * w[j];
        }
      }
      // Cell: h = o * tanh(c), c = f * c_prev + i * g.
      const double* a = &gates_[tt * 4 * H];
      for (std::size_t j = 0; j < H; ++j) {
        const double i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j];
        const double tc = tanh_cell_[tt * H + j];
        const double cp = tt == 0 ? 0.0 : cell_[(tt - 1) * H + j];
        const double dct = dc[j] + dh[j] * o * (1.0 - tc * tc);
        dz[j] = dct * gg * i * (1.0 - i);
        dz[H + j] = dct * cp * f * (1.0 - f);
        dz[2 * H + j] = dct * i * (1.0 - gg * gg);
        dz[3 * H + j] = dh[j] * tc * o * (1.0 - o);
        dc[j] = dct * f;  // into step tt-1
      }
      // Gates: z = W [x; h_prev] + b.
      const double* xh = &xh_[tt * 2 * H];
      std::fill(dxh.begin(), dxh.end(), 0.0);
      for (std::size_t r = 0; r < 4 * H; ++r) {
        g[b_ + r] += dz[r];
        const double* w = P + w_ + r * 2 * H;
        double* gw = &g[w_ + r * 2 * H];
        for (std::size_t j = 0; j < 2 * H; ++j) {
          gw[j] += dz[r] * xh[j];
          dxh[j] += dz[r] * w[j];
        }
      }
      double* gx = tt == 0 ? &g[start_] : &g[emb_[tt - 1] + c[tt - 1] * H];
      for (std::size_t j = 0; j < H; ++j) {
        gx[j] += dxh[j];
        dh[j] = dxh[H + j];  // into step tt-1
      }
    }
  }

  space_description space_;
  options opt_;
  engine_type engine_;
  std::vector<double> params_, grad_;
  std::size_t start_ = 0, w_ = 0, b_ = 0;
  std::vector<std::size_t> emb_, head_w_, head_b_, head_off_;
  // Activations of the last run(), per step.
  std::vector<double> xh_, gates_, cell_, tanh_cell_, hidden_, probs_;
  candidate sampled_;  // the last ask()'s candidate, whose activations are cached while valid
  bool sampled_valid_ = false;
  detail::adam adam_;
  detail::ema_baseline baseline_;
};

static_assert(strategy<lstm_controller>);

}  // namespace qnas::search
