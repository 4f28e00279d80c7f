// Batch normalization over the channel (last) axis, with running statistics for inference.
#pragma once

#include <cmath>
#include <cstddef>
#include <memory>
#include <vector>

#include "qnas/nn/layer.hpp"
#include "qnas/nn/spec.hpp"

namespace qnas::nn {

/// Run-time batch normalization: y = gamma * (x - mean) / sqrt(var + eps) + beta per channel,
/// with batch statistics in training (mean/var over n*h*w) and running statistics in inference
/// (running = momentum * running + (1 - momentum) * batch; unbiased batch variance).
class batch_norm_layer : public with_buffers<layer> {
 public:
  explicit batch_norm_layer(tensor_shape in, float momentum = 0.9f, float epsilon = 1e-5f)
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
      std::vector<double>& s = acc_;  // double sums: n*h*w can reach 10^5 terms
      s.assign(2 * c_, 0.0);
      for (std::size_t r = 0; r < rows; ++r) {
        const float* row = xi + r * c_;
        for (std::size_t j = 0; j < c_; ++j) s[j] += row[j];
      }
      for (std::size_t j = 0; j < c_; ++j) mean_[j] = static_cast<float>(s[j] / static_cast<double>(rows));
      for (std::size_t r = 0; r < rows; ++r) {
        const float* row = xi + r * c_;
        for (std::size_t j = 0; j < c_; ++j) {
          const double d = row[j] - mean_[j];
          s[c_ + j] += d * d;
        }
      }
      for (std::size_t j = 0; j < c_; ++j) {
        const double var = s[c_ + j] / static_cast<double>(rows);
        inv_std_[j] = static_cast<float>(1.0 / std::sqrt(var + eps_));
        const double unbiased = rows > 1 ? s[c_ + j] / static_cast<double>(rows - 1) : var;
        running_mean_[j] = momentum_ * running_mean_[j] + (1.0f - momentum_) * mean_[j];
        running_var_[j] = momentum_ * running_var_[j] + (1.0f - momentum_) * static_cast<float>(unbiased);
      }
    } else {
      for (std::size_t j = 0; j < c_; ++j) {
        mean_[j] = running_mean_[j];
        inv_std_[j] = 1.0f / std::sqrt(running_var_[j] + eps_);
      }
    }
    const float* g = gamma_.value.data();
    const float* b = beta_.value.data();
    float* y = y_.data();
    float* xh = xhat_.data();
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < c_; ++j) {
        const std::size_t i = r * c_ + j;
        xh[i] = (xi[i] - mean_[j]) * inv_std_[j];
        y[i] = g[j] * xh[i] + b[j];
      }
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
    const float* g = dy.data();
    const float* xh = xhat_.data();
    std::fill(sum_dy_.begin(), sum_dy_.end(), 0.0f);
    std::fill(sum_dy_xhat_.begin(), sum_dy_xhat_.end(), 0.0f);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < c_; ++j) {
        sum_dy_[j] += g[r * c_ + j];
        sum_dy_xhat_[j] += g[r * c_ + j] * xh[r * c_ + j];
      }
    for (std::size_t j = 0; j < c_; ++j) {
      gamma_.grad.data()[j] += sum_dy_xhat_[j];
      beta_.grad.data()[j] += sum_dy_[j];
    }
    const bool drop_xhat = saver_ != nullptr && training_ && memory_saving_;
    if (!need_dx) {
      if (drop_xhat) detail::free_buffer(xhat_);
      return empty_;
    }
    detail::ensure_shape(dx_, dy.shape());
    float* dx = dx_.data();
    const float* gm = gamma_.value.data();
    const float m = static_cast<float>(rows);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < c_; ++j) {
        const std::size_t i = r * c_ + j;
        if (training_)
          dx[i] = gm[j] * inv_std_[j] / m * (m * g[i] - sum_dy_[j] - xh[i] * sum_dy_xhat_[j]);
        else
          dx[i] = gm[j] * inv_std_[j] * g[i];
      }
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
