// activation_store: one saved activation kept encoded (narrow format + optional lossless stage) until backward.
//
// Training keeps every layer's input (or output) alive from the forward pass to the backward
// pass; those buffers dominate training memory. A layer that holds an activation_store instead
// of a float copy calls store() in forward and load() in backward. What backward sees is the
// format's quantize() of the activation (bit for bit), so the error is the format's, no more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/nn/layer.hpp"
#include "qnas/train/compression/activation_codec.hpp"
#include "qnas/train/lossless.hpp"

namespace qnas::train {

/// Bytes of stored activations against what float32 copies would take.
struct activation_bytes {
  std::size_t elements = 0;  ///< values stored
  std::size_t stored = 0;    ///< bytes held for them (codes + block headers + lossless framing)

  [[nodiscard]] std::size_t float32() const noexcept { return elements * sizeof(float); }
  /// How many times fewer bytes than float32 (0 when nothing is stored).
  [[nodiscard]] double ratio() const noexcept {
    return stored == 0 ? 0.0 : static_cast<double>(float32()) / static_cast<double>(stored);
  }
  [[nodiscard]] double bits_per_element() const noexcept {
    return elements == 0 ? 0.0 : 8.0 * static_cast<double>(stored) / static_cast<double>(elements);
  }
  activation_bytes& operator+=(const activation_bytes& o) noexcept {
    elements += o.elements;
    stored += o.stored;
    return *this;
  }
  constexpr bool operator==(const activation_bytes&) const = default;
};

/// Per-layer and total activation bytes of one training step, printable as a table:
///   layer       format          elements      bytes   vs f32
///   conv1       bfp<4,16>         200704     112896    7.11x
struct activation_memory {
  struct entry {
    std::string layer;
    std::string format;
    activation_bytes bytes;
  };
  std::vector<entry> layers;

  void add(std::string layer, std::string format, activation_bytes b) {
    layers.push_back({std::move(layer), std::move(format), b});
  }
  [[nodiscard]] activation_bytes total() const noexcept {
    activation_bytes t;
    for (const auto& e : layers) t += e.bytes;
    return t;
  }

  friend std::ostream& operator<<(std::ostream& os, const activation_memory& m) {
    auto row = [&](const std::string& l, const std::string& f, const activation_bytes& b) {
      os << qnas::detail::cat(pad(l, 14), pad(f, 34), rpad(std::to_string(b.elements), 12),
                              rpad(std::to_string(b.stored), 12), rpad(fixed2(b.ratio()) + "x", 9), "\n");
    };
    os << pad("layer", 14) << pad("format", 34) << rpad("elements", 12) << rpad("bytes", 12) << rpad("vs f32", 9) << "\n";
    for (const auto& e : m.layers) row(e.layer, e.format, e.bytes);
    row("total", "", m.total());
    return os;
  }

 private:
  static std::string pad(std::string s, std::size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s + ' ';
  }
  static std::string rpad(const std::string& s, std::size_t w) {
    return s.size() < w ? std::string(w - s.size(), ' ') + s : s;
  }
  static std::string fixed2(double v) {
    const auto c = static_cast<long long>(v * 100.0 + 0.5);
    const long long frac = c % 100;
    return std::to_string(c / 100) + (frac < 10 ? ".0" : ".") + std::to_string(frac);
  }
};

/// Buffers a store needs only while encoding or decoding (the zlib streams and the packed codes
/// before the lossless stage). Share one among all stores of a network (single thread) so
/// they do not each keep a full-size scratch buffer.
struct compression_workspace {
  lossless_codec lossless;
  std::vector<std::uint8_t> packed;
};

/// One saved activation, encoded. Holds the bytes of the last store() until the next one;
/// buffers keep their capacity, so once a step has run with the largest batch, store() and
/// load() allocate nothing (a format change re-grows them at most once).
///
///   activation_store s(activation_codec::of<bfp<4, 16>>(), lossless_options{});
///   s.store(x.data(), shape);   // forward: x may be overwritten or freed afterwards
///   s.load(buffer);             // backward: quantize<bfp<4,16>>(x), bit for bit
///
/// It is also an nn::activation_saver: `layer.set_input_saver(&s)` makes a layer keep its input
/// here (see compressed_activations in compressed_training.hpp for a whole network).
class activation_store : public nn::activation_saver {
 public:
  using engine_type = activation_codec::engine_type;

  /// float32, no lossless stage: a plain copy (the baseline).
  activation_store() = default;
  explicit activation_store(activation_codec codec, lossless_options lossless = lossless_options::off(),
                            std::ptrdiff_t axis = last_axis)
      : codec_(std::move(codec)), next_(codec_), lossless_(lossless), axis_(axis) {}

  /// The format of the next store(); data already stored keeps decoding with the format it
  /// was stored in.
  void set_codec(activation_codec c) { next_ = std::move(c); }
  [[nodiscard]] const activation_codec& codec() const noexcept { return next_; }
  /// The format of the data held now.
  [[nodiscard]] const activation_codec& stored_codec() const noexcept { return codec_; }

  void set_lossless(lossless_options o) { next_lossless_ = o; has_next_lossless_ = true; }
  [[nodiscard]] lossless_options lossless() const noexcept { return has_next_lossless_ ? next_lossless_ : lossless_; }

  /// Shares scratch buffers and zlib state with other stores (see compression_workspace).
  void set_workspace(std::shared_ptr<compression_workspace> w) { ws_ = std::move(w); }

  /// Encodes `data` (row-major `shape`, blocks along the axis given at construction) and keeps
  /// it; returns the bytes now held. Replaces what was stored before.
  std::size_t store(std::span<const float> data, std::span<const std::size_t> shape, engine_type* engine = nullptr) {
    if (!(codec_ == next_)) codec_ = next_;
    if (has_next_lossless_) {
      lossless_ = next_lossless_;
      has_next_lossless_ = false;
    }
    shape_.assign(shape.begin(), shape.end());
    stored_ = false;
    if (!lossless_.enabled()) {
      codec_.encode(data, shape, axis_, codes_, headers_, engine);
    } else {
      auto& ws = workspace();
      codec_.encode(data, shape, axis_, ws.packed, headers_, engine);
      ws.lossless.compress(ws.packed, data.size(), codec_.code_bits(), lossless_, codes_);
    }
    elements_ = data.size();
    stored_lossless_ = lossless_.enabled();
    stored_ = true;
    return codes_.size() + headers_.size();
  }
  std::size_t store(const xt::xarray<float>& x, engine_type* engine = nullptr) {
    return store(std::span<const float>(x.data(), x.size()), std::span<const std::size_t>(x.shape().data(), x.dimension()),
                 engine);
  }

  /// Decodes the stored activation into `out` (exactly elements() values). May be called any
  /// number of times. Throws qnas::invalid_argument when nothing is stored or `out` has the
  /// wrong size, qnas::io_error when the stored bytes are corrupt.
  void load(std::span<float> out) {
    static constexpr const char* where = "qnas::train::activation_store::load";
    if (!stored_) throw invalid_argument(where, "nothing is stored (store() must come first)");
    if (out.size() != elements_)
      throw invalid_argument(where, qnas::detail::cat("output holds ", out.size(), " values; ", elements_, " are stored"));
    if (!stored_lossless_) return codec_.decode(codes_, headers_, shape_, axis_, out);
    auto& ws = workspace();
    ws.lossless.decompress(codes_, elements_, codec_.code_bits(), ws.packed);
    codec_.decode(ws.packed, headers_, shape_, axis_, out);
  }
  /// Decodes into `out`, resizing it to the stored shape only when it differs.
  void load(xt::xarray<float>& out) {
    if (!(out.dimension() == shape_.size() && std::equal(shape_.begin(), shape_.end(), out.shape().begin())))
      out.resize(shape_);
    load(std::span<float>(out.data(), out.size()));
  }

  /// nn::activation_saver: store() and load() for a layer's forward and backward passes.
  void save(std::span<const float> x, std::span<const std::size_t> shape) override { store(x, shape, engine_); }
  void restore(xt::xarray<float>& out) override { load(out); }
  /// Engine for formats with stochastic rounding when the store is used as a saver.
  void set_engine(engine_type* engine) noexcept { engine_ = engine; }

  [[nodiscard]] bool empty() const noexcept { return !stored_; }
  /// The blocking axis given at construction.
  [[nodiscard]] std::ptrdiff_t axis() const noexcept { return axis_; }
  [[nodiscard]] const std::vector<std::size_t>& shape() const noexcept { return shape_; }
  [[nodiscard]] std::size_t elements() const noexcept { return stored_ ? elements_ : 0; }
  /// Bytes held for the stored activation against float32 (zero when empty).
  [[nodiscard]] activation_bytes bytes() const noexcept {
    return stored_ ? activation_bytes{elements_, codes_.size() + headers_.size()} : activation_bytes{};
  }
  /// Memory actually reserved by this store's own buffers (>= bytes().stored).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return codes_.capacity() + headers_.capacity(); }

  /// Forgets the stored data but keeps the buffers (the next store() reuses them).
  void clear() noexcept { stored_ = false; }
  /// Forgets the stored data and frees the buffers.
  void release() {
    stored_ = false;
    std::vector<std::uint8_t>().swap(codes_);
    std::vector<std::uint8_t>().swap(headers_);
  }

  /// The stored bytes (codes or lossless stream, then block headers), for inspection and tests.
  [[nodiscard]] std::span<const std::uint8_t> code_data() const noexcept { return codes_; }
  [[nodiscard]] std::span<const std::uint8_t> header_data() const noexcept { return headers_; }
  /// Mutable access to the stored bytes: lets tests (and fault-injection) corrupt them.
  [[nodiscard]] std::span<std::uint8_t> code_data_mutable() noexcept { return codes_; }

 private:
  compression_workspace& workspace() {
    if (!ws_) ws_ = std::make_shared<compression_workspace>();
    return *ws_;
  }

  activation_codec codec_{};  // format of the data held
  activation_codec next_{};   // format of the next store()
  lossless_options lossless_ = lossless_options::off();
  lossless_options next_lossless_ = lossless_options::off();
  bool has_next_lossless_ = false;
  std::ptrdiff_t axis_ = last_axis;
  std::shared_ptr<compression_workspace> ws_;
  engine_type* engine_ = nullptr;
  std::vector<std::size_t> shape_;
  std::vector<std::uint8_t> codes_, headers_;
  std::size_t elements_ = 0;
  bool stored_ = false;
  bool stored_lossless_ = false;
};

}  // namespace qnas::train
