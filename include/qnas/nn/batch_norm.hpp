// Batch normalization over the channel (last) axis, with running statistics for inference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <vector>

#include "qnas/nn/layer.hpp"
#include "qnas/nn/spec.hpp"

namespace qnas::nn {

/// Epsilon of batch normalization unless a layer is given another (also the supernet's).
inline constexpr float batch_norm_default_epsilon = 1e-5f;

namespace detail {
// The arithmetic of batch normalization over the channel (last) axis of a row-major [rows, c]
// tensor, shared by batch_norm_layer and the supernet's branches (search/supernet.hpp), which
// normalize a channel prefix of shared parameters with the same operations in the same order.

/// Batch statistics: mean[j] and inv_std[j] = 1 / sqrt(var[j] + eps) over the rows (biased
/// variance). The sums are doubles (rows = n*h*w can reach 10^5 terms); afterwards acc[j] holds
/// the sum and acc[c + j] the sum of squared deviations of channel j.
inline void batch_statistics(const float* x, std::size_t rows, std::size_t c, float eps, std::vector<double>& acc,
                             float* mean, float* inv_std) {
  acc.assign(2 * c, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * c;
    for (std::size_t j = 0; j < c; ++j) acc[j] += row[j];
  }
  for (std::size_t j = 0; j < c; ++j) mean[j] = static_cast<float>(acc[j] / static_cast<double>(rows));
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * c;
    for (std::size_t j = 0; j < c; ++j) {
      const double d = row[j] - mean[j];
      acc[c + j] += d * d;
    }
  }
  for (std::size_t j = 0; j < c; ++j)
    inv_std[j] = static_cast<float>(1.0 / std::sqrt(acc[c + j] / static_cast<double>(rows) + eps));
}

/// xhat = (x - mean) * inv_std and y = gamma * xhat + beta, per channel.
inline void batch_norm_apply(const float* x, std::size_t rows, std::size_t c, const float* mean, const float* inv_std,
                             const float* gamma, const float* beta, float* xhat, float* y) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < c; ++j) {
      const std::size_t i = r * c + j;
      xhat[i] = (x[i] - mean[j]) * inv_std[j];
      y[i] = gamma[j] * xhat[i] + beta[j];
    }
}

/// Parameter gradients: sum_dy[j] = sum of dy and sum_dy_xhat[j] = sum of dy * xhat over the
/// rows (float sums), added to dgamma (sum_dy_xhat) and dbeta (sum_dy).
inline void batch_norm_param_grads(const float* dy, const float* xhat, std::size_t rows, std::size_t c, float* sum_dy,
                                   float* sum_dy_xhat, float* dgamma, float* dbeta) {
  std::fill(sum_dy, sum_dy + c, 0.0f);
  std::fill(sum_dy_xhat, sum_dy_xhat + c, 0.0f);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < c; ++j) {
      sum_dy[j] += dy[r * c + j];
      sum_dy_xhat[j] += dy[r * c + j] * xhat[r * c + j];
    }
  for (std::size_t j = 0; j < c; ++j) {
    dgamma[j] += sum_dy_xhat[j];
    dbeta[j] += sum_dy[j];
  }
}

/// Input gradient. With batch statistics: dx = gamma * inv_std / m * (m * dy - sum_dy - xhat *
/// sum_dy_xhat), m = rows; with running (constant) statistics: dx = gamma * inv_std * dy.
inline void batch_norm_input_grad(const float* dy, const float* xhat, std::size_t rows, std::size_t c,
                                  const float* gamma, const float* inv_std, const float* sum_dy,
                                  const float* sum_dy_xhat, bool batch_stats, float* dx) {
  const float m = static_cast<float>(rows);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < c; ++j) {
      const std::size_t i = r * c + j;
      if (batch_stats)
        dx[i] = gamma[j] * inv_std[j] / m * (m * dy[i] - sum_dy[j] - xhat[i] * sum_dy_xhat[j]);
      else
        dx[i] = gamma[j] * inv_std[j] * dy[i];
    }
}
}  // namespace detail

/// Run-time batch normalization: y = gamma * (x - mean) / sqrt(var + eps) + beta per channel,
/// with batch statistics in training (mean/var over n*h*w) and running statistics in inference
/// (running = momentum * running + (1 - momentum) * batch; unbiased batch variance).
class batch_norm_layer : public with_buffers<layer> {
 public:
  explicit batch_norm_layer(tensor_shape in, float momentum = 0.9f, float epsilon = batch_norm_default_epsilon)
      : with_buffers<layer>("batch_norm", in, in), c_(in.c), momentum_(momentum), eps_(epsilon) {
    if (!in.valid()) throw invalid_argument("qnas::nn::batch_norm", "needs a non-empty input");
    gamma_ = {"batch_norm.gamma", xt::ones<float>({c_}), xt::zeros<float>({c_}), false};
    beta_ = {"batch_norm.beta", xt::zeros<float>({c_}), xt::zeros<float>({c_}), false};
    running_mean_.assign(c_, 0.0f);
    running_var_.assign(c_, 1.0f);
    mean_.resize(c_);
    inv_std_.resize(c_);
    sum_dy_.resize(c_);
    sum_dy_xhat_.resize(c_);
  }

  std::vector<parameter*> parameters() override { return {&gamma_, &beta_}; }
  /// gamma and beta, then the running statistics inference uses.
  std::vector<state_tensor> state() override {
    std::vector<state_tensor> s = layer::state();
    s.push_back({"running_mean", {c_}, running_mean_});
    s.push_back({"running_var", {c_}, running_var_});
    return s;
  }
  [[nodiscard]] std::vector<layer_attribute> attributes() const override {
    return {{"epsilon", static_cast<double>(eps_)}};
  }
  void initialize(std::mt19937_64&) override {
    std::fill(gamma_.value.begin(), gamma_.value.end(), 1.0f);
    std::fill(beta_.value.begin(), beta_.value.end(), 0.0f);
    std::fill(running_mean_.begin(), running_mean_.end(), 0.0f);
    std::fill(running_var_.begin(), running_var_.end(), 1.0f);
  }
  [[nodiscard]] layer_description describe() const override {
    layer_description d = layer::describe();
    d.op = layer_op::batch_norm;
    d.params = 2 * c_;
    d.macs = input_shape().h * input_shape().w * c_;  // one multiply-add per element
    return d;
  }

  parameter& gamma() noexcept { return gamma_; }
  parameter& beta() noexcept { return beta_; }
  std::vector<float>& running_mean() noexcept { return running_mean_; }
  std::vector<float>& running_var() noexcept { return running_var_; }
  [[nodiscard]] float epsilon() const noexcept { return eps_; }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool training) override {
    const std::size_t n = check_input(x);
    const std::size_t rows = x.size() / c_;
    detail::ensure_batch(y_, n, output_shape());
    detail::ensure_batch(xhat_, n, output_shape());
    training_ = training;
    const float* xi = x.data();
    if (training) {
      detail::batch_statistics(xi, rows, c_, eps_, acc_, mean_.data(), inv_std_.data());
      for (std::size_t j = 0; j < c_; ++j) {
        const double var = acc_[c_ + j] / static_cast<double>(rows);
        const double unbiased = rows > 1 ? acc_[c_ + j] / static_cast<double>(rows - 1) : var;
        running_mean_[j] = momentum_ * running_mean_[j] + (1.0f - momentum_) * mean_[j];
        running_var_[j] = momentum_ * running_var_[j] + (1.0f - momentum_) * static_cast<float>(unbiased);
      }
    } else {
      for (std::size_t j = 0; j < c_; ++j) {
        mean_[j] = running_mean_[j];
        inv_std_[j] = 1.0f / std::sqrt(running_var_[j] + eps_);
      }
    }
    detail::batch_norm_apply(xi, rows, c_, mean_.data(), inv_std_.data(), gamma_.value.data(), beta_.value.data(),
                             xhat_.data(), y_.data());
    if (saver_ != nullptr && training) {  // the saver keeps the normalized input
      save_input(xhat_, training);
      if (memory_saving_) detail::free_buffer(xhat_);
    }
    return y_;
  }

  // Training: dx = gamma * inv_std / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)).
  // Inference statistics are constants: dx = gamma * inv_std * dy.
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool need_dx) override {
    const std::size_t rows = dy.size() / c_;
    if (saver_ != nullptr && training_) restore_input(xhat_);
    const float* xh = xhat_.data();
    detail::batch_norm_param_grads(dy.data(), xh, rows, c_, sum_dy_.data(), sum_dy_xhat_.data(), gamma_.grad.data(),
                                   beta_.grad.data());
    const bool drop_xhat = saver_ != nullptr && training_ && memory_saving_;
    if (!need_dx) {
      if (drop_xhat) detail::free_buffer(xhat_);
      return empty_;
    }
    detail::ensure_shape(dx_, dy.shape());
    detail::batch_norm_input_grad(dy.data(), xh, rows, c_, gamma_.value.data(), inv_std_.data(), sum_dy_.data(),
                                  sum_dy_xhat_.data(), training_, dx_.data());
    if (drop_xhat) detail::free_buffer(xhat_);
    return dx_;
  }

 public:
  /// A saver keeps the normalized input (what backward needs) rather than the input itself.
  [[nodiscard]] bool accepts_input_saver() const noexcept override { return true; }
  [[nodiscard]] bool reads_input_in_backward() const noexcept override { return false; }

 private:
  std::size_t c_;
  float momentum_, eps_;
  bool training_ = false;
  parameter gamma_, beta_;
  std::vector<float> running_mean_, running_var_, mean_, inv_std_, sum_dy_, sum_dy_xhat_;
  std::vector<double> acc_;
  xt::xarray<float> xhat_;
};

/// Batch normalization over the channel axis (momentum 0.9, epsilon 1e-5).
struct batch_norm {
  static constexpr const char* name() { return "batch_norm"; }
  static constexpr tensor_shape output_shape(tensor_shape in) { return in; }
  static constexpr std::size_t params(tensor_shape in) { return 2 * in.c; }
  static constexpr std::size_t macs(tensor_shape in) { return in.size(); }
  template <std::size_t Index, tensor_shape In>
  static constexpr void check() {}
  static std::unique_ptr<layer> make(tensor_shape in) { return std::make_unique<batch_norm_layer>(in); }
};

}  // namespace qnas::nn
