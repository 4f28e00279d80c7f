// IDX files (the MNIST / Fashion-MNIST layout), plain or gzip-compressed, read and validated.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <zlib.h>

#include <xtensor/xtensor.hpp>

#include "qnas/core/diagnostics.hpp"
#include "qnas/data/dataset.hpp"

namespace qnas::data {

/// IDX element types (the third byte of the magic number).
enum class idx_type : std::uint8_t {
  u8 = 0x08,
  i8 = 0x09,
  i16 = 0x0B,
  i32 = 0x0C,
  f32 = 0x0D,
  f64 = 0x0E,
};

/// Bytes per element of an IDX type; 0 for a code that is not an IDX type.
[[nodiscard]] constexpr std::size_t idx_element_size(std::uint8_t code) noexcept {
  switch (code) {
    case 0x08:
    case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C:
    case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
  }
}

/// A parsed IDX file: element type, dimensions, and the raw (big-endian) payload bytes.
struct idx_array {
  idx_type type = idx_type::u8;
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> payload;

  /// The magic number this array had: 0x0000 TT DD (TT type, DD number of dimensions).
  [[nodiscard]] std::uint32_t magic() const noexcept {
    return (static_cast<std::uint32_t>(type) << 8) | static_cast<std::uint32_t>(dims.size());
  }
};

/// Magic numbers of the two MNIST-layout files qnas loads as data sets.
inline constexpr std::uint32_t idx_images_magic = 0x00000803;  // unsigned bytes, [N, rows, cols]
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;  // unsigned bytes, [N]

}  // namespace qnas::data

namespace qnas::detail {

inline std::uint32_t read_be32(const std::uint8_t* p) noexcept {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | static_cast<std::uint32_t>(p[3]);
}

/// A header parsed and checked against the IDX rules; what a payload of it must hold.
struct idx_header {
  std::uint8_t type = 0;
  std::vector<std::uint32_t> dims;
  std::size_t header_bytes = 0;   ///< 4 + 4 * dims
  std::size_t payload_bytes = 0;  ///< product of dims times the element size
};

/// Parses the header at the start of `bytes` (the whole file, or at least its header when the
/// file holds one). Checks: at least the 4-byte magic, zero first two bytes, a known type code,
/// 4 bytes per dimension, and a payload size that can be addressed. Shared by parse_idx (bytes
/// in memory) and read_idx (a file streamed), so both refuse the same headers with the same words.
inline idx_header parse_idx_header(std::span<const std::uint8_t> bytes, const std::string& name) {
  using data::idx_element_size;
  if (bytes.size() < 4)
    throw io_error(name, cat("file has ", bytes.size(), " bytes, too short for the 4-byte IDX magic number"));
  const std::uint32_t magic = read_be32(bytes.data());
  const std::uint8_t type = bytes[2];
  const std::size_t ndim = bytes[3];
  if (bytes[0] != 0 || bytes[1] != 0 || idx_element_size(type) == 0)
    throw io_error(name, cat("bad IDX magic number 0x", std::hex, magic, std::dec,
                             " at byte 0 (expected 0x0000TTDD with type TT in {08,09,0B,0C,0D,0E})"));
  if (ndim == 0) throw io_error(name, "IDX magic number declares 0 dimensions");
  idx_header h;
  h.type = type;
  h.header_bytes = 4 + 4 * ndim;
  if (bytes.size() < h.header_bytes)
    throw io_error(name, cat("file is truncated in the header: ", ndim, " dimensions need ", h.header_bytes,
                             " bytes, the file has ", bytes.size()));
  h.dims.resize(ndim);
  std::size_t count = 1;
  std::size_t nonzero = 1;  // the product of the non-zero dimensions: a zero one must not hide an overflow
  for (std::size_t k = 0; k < ndim; ++k) {
    h.dims[k] = read_be32(bytes.data() + 4 + 4 * k);
    if (h.dims[k] != 0 && nonzero > std::numeric_limits<std::size_t>::max() / 8 / h.dims[k])
      throw io_error(name, cat("dimension ", k, " (", h.dims[k], ", at byte ", 4 + 4 * k,
                               ") makes the array too large to address"));
    if (h.dims[k] != 0) nonzero *= h.dims[k];
    count *= h.dims[k];
  }
  h.payload_bytes = count * idx_element_size(type);
  return h;
}

/// The message for a payload shorter than its header declares.
inline std::string idx_truncated(const idx_header& h, std::size_t actual) {
  return cat("file is truncated: the header declares ", h.payload_bytes, " payload bytes, the file has ", actual,
             " (data ends at byte ", h.header_bytes + actual, ", expected ", h.header_bytes + h.payload_bytes, ")");
}

/// A gzip (or plain: zlib passes those through) file read in bounded steps, so that reading
/// stops where the IDX header says the data ends instead of inflating whatever the file holds.
class gz_source {
 public:
  explicit gz_source(std::string name) : name_(std::move(name)) {
    f_ = gzopen(name_.c_str(), "rb");
    if (f_ == nullptr) throw io_error(name_, "cannot open for reading");
  }
  gz_source(const gz_source&) = delete;
  gz_source& operator=(const gz_source&) = delete;
  ~gz_source() { gzclose(f_); }

  /// Reads up to `n` bytes into `dst`; fewer only at the end of the data. A stream that zlib
  /// finds corrupt (bad deflate data, CRC or length trailer) throws, naming the offset.
  std::size_t read(std::uint8_t* dst, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      const auto step = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
      const int got = gzread(f_, dst + done, step);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(f_, &code);
        throw io_error(name_, cat("gzip data is corrupt after ", offset_ + done, " decompressed bytes (zlib: ",
                                  msg ? msg : "", ")"));
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    offset_ += done;
    return done;
  }

  /// Throws when the data ended early because the gzip stream is cut short: zlib reports that
  /// only through gzerror, as a clean end of file otherwise.
  void check_clean_end() const {
    int code = 0;
    const char* msg = gzerror(f_, &code);
    if (code != Z_OK && code != Z_STREAM_END)
      throw io_error(name_, cat("gzip stream is truncated or corrupt after ", offset_,
                                " decompressed bytes (zlib: ", msg ? msg : "", ")"));
  }

  /// True when the file is not gzip (zlib copies it through unchanged). Valid after a read.
  [[nodiscard]] bool plain() const { return gzdirect(f_) != 0; }
  /// Decompressed bytes read so far.
  [[nodiscard]] std::size_t offset() const noexcept { return offset_; }
  /// Restarts at decompressed byte `at`.
  void seek(std::size_t at) {
    if (gzrewind(f_) != 0) throw io_error(name_, "cannot rewind the file");
    offset_ = 0;
    std::array<std::uint8_t, 1 << 16> skip;
    while (offset_ < at)
      if (read(skip.data(), std::min(skip.size(), at - offset_)) == 0) throw io_error(name_, "the file shrank while being read");
  }

 private:
  std::string name_;
  gzFile f_ = nullptr;
  std::size_t offset_ = 0;
};

/// Deflate cannot expand data more than 1032 to 1 (a 258-byte match coded in 2 bits); the slack
/// covers gzip and block headers. A gzip file of `size` bytes never inflates beyond this.
inline std::size_t max_inflated_size(std::uintmax_t size) noexcept {
  constexpr std::uintmax_t ratio = 1032, slack = 1 << 20;
  const auto cap = static_cast<std::uintmax_t>(std::numeric_limits<std::size_t>::max());
  return size > (cap - slack) / ratio ? static_cast<std::size_t>(cap) : static_cast<std::size_t>(size * ratio + slack);
}

}  // namespace qnas::detail

namespace qnas::data {

/// Parses IDX bytes; `name` (a file name) prefixes every error. Checks: at least the 4-byte magic,
/// zero first two bytes, a known type code, the header of 4 bytes per dimension, and a payload
/// exactly the product of the dimensions times the element size (truncated or trailing bytes
/// are errors, with the byte offset where the file and the header disagree).
[[nodiscard]] inline idx_array parse_idx(std::span<const std::uint8_t> bytes, const std::string& name) {
  const auto h = qnas::detail::parse_idx_header(bytes, name);
  const std::size_t actual = bytes.size() - h.header_bytes;
  if (actual < h.payload_bytes) throw io_error(name, qnas::detail::idx_truncated(h, actual));
  if (actual > h.payload_bytes)
    throw io_error(name, qnas::detail::cat("file has ", actual - h.payload_bytes, " bytes after the declared payload (from byte ",
                                           h.header_bytes + h.payload_bytes, "): the dimensions do not match the data"));
  idx_array out;
  out.type = static_cast<idx_type>(h.type);
  out.dims = h.dims;
  out.payload.assign(bytes.begin() + static_cast<std::ptrdiff_t>(h.header_bytes), bytes.end());
  return out;
}

/// Reads and parses an IDX file, plain or gzip-compressed (detected from its content), with the
/// checks of parse_idx. The file is streamed: the header first, then at most one byte more than
/// the payload it declares, so memory stays at the declared payload (plus zlib's buffers)
/// whatever the file inflates to (a gzip bomb is refused after one byte too many, not inflated).
/// A payload that a file of its size cannot hold is refused before it is allocated.
[[nodiscard]] inline idx_array read_idx(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw io_error(name, std::filesystem::exists(file, ec) ? "not a regular file" : "no such file");
  const std::uintmax_t file_size = std::filesystem::file_size(file, ec);
  if (ec) throw io_error(name, qnas::detail::cat("cannot read its size: ", ec.message()));
  qnas::detail::gz_source in(name);

  // The magic number, then the dimensions it announces (at most 255 * 4 bytes).
  std::vector<std::uint8_t> head(4);
  head.resize(in.read(head.data(), 4));
  if (head.size() == 4 && head[3] != 0) {
    head.resize(4 + 4 * std::size_t{head[3]});
    head.resize(4 + in.read(head.data() + 4, head.size() - 4));
  }
  if (head.size() < 4 || head.size() < 4 + 4 * std::size_t{head[3]}) in.check_clean_end();
  const auto h = qnas::detail::parse_idx_header(head, name);

  // What the rest of the file can hold at most: exactly its size when plain, the deflate limit when gzip.
  const std::size_t rest = file_size > h.header_bytes ? static_cast<std::size_t>(file_size - h.header_bytes) : 0;
  const std::size_t can_hold = in.plain() ? rest : qnas::detail::max_inflated_size(file_size);
  idx_array out;
  out.type = static_cast<idx_type>(h.type);
  out.dims = h.dims;
  if (h.payload_bytes > can_hold) {
    // Count what there is without keeping it, for the usual message; it is less than declared.
    std::array<std::uint8_t, 1 << 16> sink;
    std::size_t actual = 0;
    for (std::size_t got; (got = in.read(sink.data(), std::min(sink.size(), h.payload_bytes - actual))) > 0;) {
      actual += got;
      if (actual == h.payload_bytes) break;
    }
    in.check_clean_end();
    if (actual < h.payload_bytes) throw io_error(name, qnas::detail::idx_truncated(h, actual));
    in.seek(h.header_bytes);  // beyond the bound after all: read it for real
  }
  out.payload.resize(h.payload_bytes);
  const std::size_t actual = in.read(out.payload.data(), h.payload_bytes);
  if (actual < h.payload_bytes) {
    in.check_clean_end();
    throw io_error(name, qnas::detail::idx_truncated(h, actual));
  }
  std::uint8_t extra = 0;
  if (in.read(&extra, 1) != 0) {
    const std::size_t at = h.header_bytes + h.payload_bytes;
    if (in.plain())
      throw io_error(name, qnas::detail::cat("file has ", file_size - at, " bytes after the declared payload (from byte ", at,
                                             "): the dimensions do not match the data"));
    throw io_error(name, qnas::detail::cat("file has data after the declared payload (from byte ", at,
                                           " of the decompressed stream, which is not inflated further): the "
                                           "dimensions do not match the data"));
  }
  in.check_clean_end();
  return out;
}

/// Reads an MNIST-layout image file (magic 0x00000803, unsigned bytes, [N, rows, cols]) as
/// float images `[N, rows, cols, 1]` scaled to [0, 1] (byte / 255).
[[nodiscard]] inline xt::xtensor<float, 4> read_idx_images(const std::filesystem::path& file) {
  const idx_array a = read_idx(file);
  if (a.magic() != idx_images_magic)
    throw io_error(file.string(), qnas::detail::cat("magic number 0x", std::hex, a.magic(), std::dec,
                                              " is not an image file's 0x00000803 (unsigned bytes, 3 dimensions)"));
  if (a.dims[1] == 0 || a.dims[2] == 0)
    throw io_error(file.string(), qnas::detail::cat("image size ", a.dims[1], "x", a.dims[2], " is empty"));
  xt::xtensor<float, 4> images;
  images.resize({a.dims[0], a.dims[1], a.dims[2], 1});
  float* dst = images.data();
  for (std::size_t k = 0; k < a.payload.size(); ++k) dst[k] = static_cast<float>(a.payload[k]) * (1.0f / 255.0f);
  return images;
}

/// Reads an MNIST-layout label file (magic 0x00000801, unsigned bytes, [N]); every label must
/// be < `classes` (the error names the first offending label and its byte offset).
[[nodiscard]] inline std::vector<label_t> read_idx_labels(const std::filesystem::path& file, std::size_t classes) {
  const idx_array a = read_idx(file);
  if (a.magic() != idx_labels_magic)
    throw io_error(file.string(), qnas::detail::cat("magic number 0x", std::hex, a.magic(), std::dec,
                                              " is not a label file's 0x00000801 (unsigned bytes, 1 dimension)"));
  std::vector<label_t> labels(a.payload.size());
  for (std::size_t k = 0; k < labels.size(); ++k) {
    if (a.payload[k] >= classes)
      throw io_error(file.string(), qnas::detail::cat("label ", k, " (byte ", 8 + k, ") is ", int{a.payload[k]},
                                                ", not below the ", classes, " classes"));
    labels[k] = a.payload[k];
  }
  return labels;
}

/// Loads a data set from an MNIST-layout image file and label file (plain or gzip).
/// Throws `io_error` naming the file when either is malformed or their counts differ.
[[nodiscard]] inline dataset load_idx(const std::filesystem::path& images_file, const std::filesystem::path& labels_file,
                                      std::size_t classes = 10) {
  if (classes == 0 || classes > 256)
    throw invalid_argument("qnas::data::load_idx", qnas::detail::cat("classes is ", classes, "; byte labels allow 1..256"));
  dataset d;
  d.images = read_idx_images(images_file);
  d.labels = read_idx_labels(labels_file, classes);
  d.classes = classes;
  if (d.labels.size() != d.images.shape()[0])
    throw io_error(labels_file.string(), qnas::detail::cat("has ", d.labels.size(), " labels but ", images_file.string(),
                                                     " has ", d.images.shape()[0], " images"));
  return d;
}

namespace detail {
/// `folder`/`stem`.gz when it exists, else `folder`/`stem` (whose absence load_idx reports).
inline std::filesystem::path idx_file(const std::filesystem::path& folder, const char* stem) {
  const auto gz = folder / (std::string(stem) + ".gz");
  std::error_code ec;
  return std::filesystem::exists(gz, ec) ? gz : folder / stem;
}
}  // namespace detail

/// Loads the MNIST test set (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) from
/// `folder`: 10,000 images 28x28x1, 10 classes. Prefers the .gz files when both exist.
/// Fashion-MNIST uses the same file names and layout, so this loads its test set too.
[[nodiscard]] inline dataset load_mnist_test(const std::filesystem::path& folder) {
  return load_idx(detail::idx_file(folder, "t10k-images-idx3-ubyte"), detail::idx_file(folder, "t10k-labels-idx1-ubyte"), 10);
}

/// Loads the MNIST (or Fashion-MNIST) training set (train-images-idx3-ubyte[.gz],
/// train-labels-idx1-ubyte[.gz]) from `folder`: 60,000 images 28x28x1, 10 classes.
[[nodiscard]] inline dataset load_mnist_train(const std::filesystem::path& folder) {
  return load_idx(detail::idx_file(folder, "train-images-idx3-ubyte"), detail::idx_file(folder, "train-labels-idx1-ubyte"), 10);
}

}  // namespace qnas::data
