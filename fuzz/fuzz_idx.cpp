// libFuzzer target: the IDX reader (parse_idx on bytes; read_idx / images / labels through a file, plain or gzip).
//
// Contract under test (data/idx.hpp): any input either parses into an array whose payload is
// exactly product(dims) * element size, or throws qnas::io_error naming the source. Anything
// else (another exception type, a crash, a sanitizer report, an allocation beyond the input's
// size) is a bug. Byte 0 picks the path: even = parse_idx on the rest in memory, odd = write the
// rest to a file and read it with read_idx, read_idx_images and read_idx_labels (zlib's reader
// takes plain and gzip input alike, so gzip streams are fuzzed too).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "qnas/data/idx.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_idx: %s\n", what);
  std::abort();
}

void check_array(const qnas::data::idx_array& a) {
  std::size_t count = 1;
  for (auto d : a.dims) count *= d;
  if (a.payload.size() != count * qnas::data::idx_element_size(static_cast<std::uint8_t>(a.type)))
    fail("payload size does not match the dimensions");
  if (a.dims.empty()) fail("an array with 0 dimensions was accepted");
}

const std::filesystem::path& scratch() {
  static const std::filesystem::path p = [] {
    const char* dir = std::getenv("TMPDIR");
    std::filesystem::path base = dir ? dir : (std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp");
    return base / ("qnas_fuzz_idx." + std::to_string(::getpid()));
  }();
  return p;
}

template <class Fn>
void expect_io_error_or_success(Fn&& fn) {
  try {
    fn();
  } catch (const qnas::io_error& e) {
    if (std::string(e.what()).empty()) fail("empty error message");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_idx: unexpected exception type: %s\n", e.what());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::span<const std::uint8_t> rest(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    expect_io_error_or_success([&] { check_array(qnas::data::parse_idx(rest, "fuzz")); });
    return 0;
  }
  if (std::FILE* f = std::fopen(scratch().c_str(), "wb")) {
    const bool ok = std::fwrite(rest.data(), 1, rest.size(), f) == rest.size();
    std::fclose(f);
    if (!ok) fail("cannot write the scratch file");
  } else {
    fail("cannot create the scratch file");
  }
  expect_io_error_or_success([&] { check_array(qnas::data::read_idx(scratch())); });
  expect_io_error_or_success([&] {
    const auto images = qnas::data::read_idx_images(scratch());
    for (float v : images)
      if (!(v >= 0.0f && v <= 1.0f)) fail("image value outside [0, 1]");
  });
  expect_io_error_or_success([&] {
    for (auto l : qnas::data::read_idx_labels(scratch(), 10))
      if (l >= 10) fail("label not below the class count");
  });
  return 0;
}
