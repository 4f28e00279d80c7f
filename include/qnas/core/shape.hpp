// tensor_shape and padding: the one shape type of qnas, shared by the energy model and nn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace qnas {

/// The shape of ONE sample (the batch axis is implicit): an image [h, w, c] (rank 3, NHWC)
/// or a feature vector [c] (rank 1, h = w = 1). A structural type, so a shape can be a
/// template argument: compile-time shape errors then print the offending shape.
struct tensor_shape {
  std::size_t h = 1;
  std::size_t w = 1;
  std::size_t c = 0;
  int rank = 3;

  /// Elements per sample.
  [[nodiscard]] constexpr std::size_t size() const noexcept { return h * w * c; }
  [[nodiscard]] constexpr bool is_image() const noexcept { return rank == 3; }
  [[nodiscard]] constexpr bool is_flat() const noexcept { return rank == 1; }
  [[nodiscard]] constexpr bool valid() const noexcept { return h > 0 && w > 0 && c > 0; }
  constexpr bool operator==(const tensor_shape&) const = default;
};

/// An image shape [h, w, c].
constexpr tensor_shape image(std::size_t h, std::size_t w, std::size_t c) noexcept { return {h, w, c, 3}; }
/// A feature-vector shape [n].
constexpr tensor_shape flat(std::size_t n) noexcept { return {1, 1, n, 1}; }

inline std::string to_string(const tensor_shape& s) {
  if (s.rank == 1) return "[" + std::to_string(s.c) + "]";
  return "[" + std::to_string(s.h) + "," + std::to_string(s.w) + "," + std::to_string(s.c) + "]";
}
inline std::ostream& operator<<(std::ostream& os, const tensor_shape& s) { return os << to_string(s); }

/// Spatial padding of convolutions and pools, with TensorFlow's meaning: `valid` uses no
/// padding (floor((in - kernel) / stride) + 1 outputs); `same` gives ceil(in / stride) outputs
/// and splits the padding with the extra row or column at the bottom/right.
enum class padding : std::uint8_t { valid, same };

constexpr const char* to_string(padding p) noexcept { return p == padding::same ? "same" : "valid"; }

/// Number of outputs along one spatial axis; 0 when the window does not fit (valid padding)
/// or the kernel or stride is 0.
constexpr std::size_t conv_output_size(std::size_t in, std::size_t kernel, std::size_t stride, padding p) noexcept {
  if (stride == 0 || kernel == 0) return 0;
  if (p == padding::same) return (in + stride - 1) / stride;
  return in >= kernel ? (in - kernel) / stride + 1 : 0;
}

/// Padding added before the first input (top or left) along one axis.
constexpr std::size_t conv_pad_before(std::size_t in, std::size_t kernel, std::size_t stride, padding p) noexcept {
  if (p == padding::valid) return 0;
  const std::size_t out = conv_output_size(in, kernel, stride, p);
  const std::size_t needed = (out - 1) * stride + kernel;
  return needed > in ? (needed - in) / 2 : 0;
}

}  // namespace qnas
