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

/// The whole content of a file, gunzipped when it is gzip (zlib's gzread passes plain files
/// through unchanged, so both go through one path).
inline std::vector<std::uint8_t> read_maybe_gzip(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw io_error(name, std::filesystem::exists(file, ec) ? "not a regular file" : "no such file");
  gzFile f = gzopen(name.c_str(), "rb");
  if (f == nullptr) throw io_error(name, "cannot open for reading");
  std::vector<std::uint8_t> out;
  std::array<std::uint8_t, 1 << 16> chunk;
  for (;;) {
    const int got = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (got < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      throw io_error(name, qnas::detail::cat("gzip data is corrupt after ", out.size(), " decompressed bytes (zlib: ", msg, ")"));
    }
    if (got == 0) break;
    out.insert(out.end(), chunk.data(), chunk.data() + got);
  }
  // A gzip stream cut short reads as a clean end of file; zlib reports it only through gzerror.
  int code = 0;
  const char* msg = gzerror(f, &code);
  const std::string text = msg ? msg : "";
  gzclose(f);
  if (code != Z_OK && code != Z_STREAM_END)
    throw io_error(name, qnas::detail::cat("gzip stream is truncated or corrupt after ", out.size(),
                                     " decompressed bytes (zlib: ", text, ")"));
  return out;
}

}  // namespace qnas::detail

namespace qnas::data {

/// Parses IDX bytes; `name` (a file name) prefixes every error. Checks: at least the 4-byte magic,
/// zero first two bytes, a known type code, the header of 4 bytes per dimension, and a payload
/// exactly the product of the dimensions times the element size (truncated or trailing bytes
/// are errors, with the byte offset where the file and the header disagree).
[[nodiscard]] inline idx_array parse_idx(std::span<const std::uint8_t> bytes, const std::string& name) {
  if (bytes.size() < 4)
    throw io_error(name, qnas::detail::cat("file has ", bytes.size(), " bytes, too short for the 4-byte IDX magic number"));
  const std::uint32_t magic = qnas::detail::read_be32(bytes.data());
  const std::uint8_t type = bytes[2];
  const std::size_t ndim = bytes[3];
  if (bytes[0] != 0 || bytes[1] != 0 || idx_element_size(type) == 0)
    throw io_error(name, qnas::detail::cat("bad IDX magic number 0x", std::hex, magic, std::dec,
                                     " at byte 0 (expected 0x0000TTDD with type TT in {08,09,0B,0C,0D,0E})"));
  if (ndim == 0) throw io_error(name, "IDX magic number declares 0 dimensions");
  const std::size_t header = 4 + 4 * ndim;
  if (bytes.size() < header)
    throw io_error(name, qnas::detail::cat("file is truncated in the header: ", ndim, " dimensions need ", header,
                                     " bytes, the file has ", bytes.size()));
  idx_array out;
  out.type = static_cast<idx_type>(type);
  out.dims.resize(ndim);
  std::size_t count = 1;
  std::size_t nonzero = 1;  // the product of the non-zero dimensions: a zero one must not hide an overflow
  for (std::size_t k = 0; k < ndim; ++k) {
    out.dims[k] = qnas::detail::read_be32(bytes.data() + 4 + 4 * k);
    if (out.dims[k] != 0 && nonzero > std::numeric_limits<std::size_t>::max() / 8 / out.dims[k])
      throw io_error(name, qnas::detail::cat("dimension ", k, " (", out.dims[k], ", at byte ", 4 + 4 * k,
                                       ") makes the array too large to address"));
    if (out.dims[k] != 0) nonzero *= out.dims[k];
    count *= out.dims[k];
  }
  const std::size_t expected = count * idx_element_size(type);
  const std::size_t actual = bytes.size() - header;
  if (actual < expected)
    throw io_error(name, qnas::detail::cat("file is truncated: the header declares ", expected, " payload bytes, the file has ",
                                     actual, " (data ends at byte ", bytes.size(), ", expected ", header + expected, ")"));
  if (actual > expected)
    throw io_error(name, qnas::detail::cat("file has ", actual - expected, " bytes after the declared payload (from byte ",
                                     header + expected, "): the dimensions do not match the data"));
  out.payload.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

/// Reads and parses an IDX file, plain or gzip-compressed (detected from its content).
[[nodiscard]] inline idx_array read_idx(const std::filesystem::path& file) {
  const auto bytes = qnas::detail::read_maybe_gzip(file);
  return parse_idx(bytes, file.string());
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

/// Loads the MNIST test set (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) from
/// `folder`: 10,000 images 28x28x1, 10 classes. Prefers the .gz files when both exist.
[[nodiscard]] inline dataset load_mnist_test(const std::filesystem::path& folder) {
  auto pick = [&](const char* stem) {
    const auto gz = folder / (std::string(stem) + ".gz");
    std::error_code ec;
    return std::filesystem::exists(gz, ec) ? gz : folder / stem;
  };
  return load_idx(pick("t10k-images-idx3-ubyte"), pick("t10k-labels-idx1-ubyte"), 10);
}

}  // namespace qnas::data
