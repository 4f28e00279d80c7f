// IDX reader: well-formed plain and gzip files, every malformation the reader must name (with the
// file name and the byte offset), and the real MNIST test set when the shared data is present.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <zlib.h>

// Other headers may open qnas::train::detail or qnas::data::detail before these are included;
// qualified lookups inside the headers must still reach qnas::detail.
namespace qnas::train::detail {}
namespace qnas::data::detail {}

#include "qnas/data/idx.hpp"

using namespace qnas;
namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

namespace {

// A fresh folder per test case, removed at the end.
struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& tag) {
    path = fs::temp_directory_path() / ("qnas_idx_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void put_be32(bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

bytes idx_file(std::uint32_t magic, std::vector<std::uint32_t> dims, const bytes& payload) {
  bytes b;
  put_be32(b, magic);
  for (auto d : dims) put_be32(b, d);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

fs::path write_plain(const fs::path& p, const bytes& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return p;
}

fs::path write_gz(const fs::path& p, const bytes& b) {
  gzFile f = gzopen(p.string().c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
  gzclose(f);
  return p;
}

bytes read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), {});
}

// Two 2x3 images with pixel values 0, 51, ..., and their labels 3 and 9.
const bytes pixels = {0, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 17};
bytes images_ok() { return idx_file(0x803, {2, 2, 3}, pixels); }
bytes labels_ok() { return idx_file(0x801, {2}, {3, 9}); }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const io_error& e) {
    return e.what();
  }
  FAIL("no io_error thrown");
  return {};
}

}  // namespace

TEST_CASE("well-formed IDX files load the same plain and gzip-compressed") {
  temp_dir t("ok");
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    auto w = gz ? write_gz : write_plain;
    const auto im = w(t.path / (gz ? "im.gz" : "im"), images_ok());
    const auto lb = w(t.path / (gz ? "lb.gz" : "lb"), labels_ok());
    const data::dataset d = data::load_idx(im, lb, 10);
    REQUIRE(d.size() == 2);
    CHECK(d.height() == 2);
    CHECK(d.width() == 3);
    CHECK(d.channels() == 1);
    CHECK(d.classes == 10);
    CHECK(d.labels == std::vector<data::label_t>{3, 9});
    // byte / 255: 51 -> 0.2, 255 -> 1, 17 -> 1/15
    CHECK(d.images(0, 0, 1, 0) == doctest::Approx(0.2f));
    CHECK(d.images(0, 1, 2, 0) == 1.0f);
    CHECK(d.images(1, 0, 0, 0) == 1.0f);
    CHECK(d.images(1, 1, 2, 0) == doctest::Approx(1.0f / 15.0f));
    CHECK(d.images(0, 0, 0, 0) == 0.0f);
    const auto a = data::read_idx(im);
    CHECK(a.magic() == data::idx_images_magic);
    CHECK(a.dims == std::vector<std::uint32_t>{2, 2, 3});
    CHECK(a.payload == pixels);
  }
}

namespace {
// Every malformation, written plain or gzip-compressed: the reader sees the same bytes.
void check_malformed(bool gz) {
  CAPTURE(gz);
  temp_dir t(gz ? "bad_gz" : "bad");
  auto w = gz ? write_gz : write_plain;
  const auto lb = w(t.path / "labels", labels_ok());
  {  // truncated payload
    bytes b = images_ok();
    b.resize(b.size() - 5);  // header 16 bytes + 12 payload; 7 remain
    const auto p = w(t.path / "trunc", b);
    const auto msg = error_of([&] { (void)data::read_idx_images(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("declares 12 payload bytes, the file has 7") != std::string::npos);
    CHECK(msg.find("data ends at byte 23, expected 28") != std::string::npos);
  }
  {  // truncated header
    bytes b = images_ok();
    b.resize(10);
    const auto p = w(t.path / "hdr", b);
    const auto msg = error_of([&] { (void)data::read_idx(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("truncated in the header: 3 dimensions need 16 bytes, the file has 10") != std::string::npos);
  }
  {  // shorter than the magic number, and empty
    const auto p = w(t.path / "tiny", bytes{0, 0});
    CHECK(error_of([&] { (void)data::read_idx(p); }).find("too short for the 4-byte IDX magic") != std::string::npos);
    const auto e = w(t.path / "empty", bytes{});
    CHECK(error_of([&] { (void)data::read_idx(e); }).find("file has 0 bytes") != std::string::npos);
  }
  {  // not an IDX magic number
    bytes b = images_ok();
    b[0] = 0x1f;
    b[2] = 0x07;
    const auto p = w(t.path / "magic", b);
    const auto msg = error_of([&] { (void)data::read_idx(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("bad IDX magic number 0x1f000703 at byte 0") != std::string::npos);
  }
  {  // a label file where images are expected, and the reverse
    const auto msg = error_of([&] { (void)data::read_idx_images(lb); });
    CHECK(msg.find(lb.string()) != std::string::npos);
    CHECK(msg.find("magic number 0x801 is not an image file's 0x00000803") != std::string::npos);
    const auto im = w(t.path / "images", images_ok());
    CHECK(error_of([&] { (void)data::read_idx_labels(im, 10); }).find("is not a label file's 0x00000801") !=
          std::string::npos);
  }
  {  // dimension product does not match the payload
    const auto p = w(t.path / "dims", idx_file(0x803, {1, 2, 3}, pixels));  // 6 declared, 12 present
    const auto msg = error_of([&] { (void)data::read_idx_images(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("6 bytes after the declared payload (from byte 22)") != std::string::npos);
  }
  {  // a zero leading dimension must not hide huge other dimensions (strides would overflow)
    const auto p = w(t.path / "zero_then_huge", idx_file(0x803, {0, 0xFFFFFFFFu, 0xFFFFFFFFu}, {}));
    const auto msg = error_of([&] { (void)data::read_idx_images(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("makes the array too large to address") != std::string::npos);
  }
  {  // label count differs from image count
    const auto im = w(t.path / "images", images_ok());
    const auto lb3 = w(t.path / "labels3", idx_file(0x801, {3}, {1, 2, 3}));
    const auto msg = error_of([&] { (void)data::load_idx(im, lb3, 10); });
    CHECK(msg.find(lb3.string()) != std::string::npos);
    CHECK(msg.find("has 3 labels but") != std::string::npos);
    CHECK(msg.find("has 2 images") != std::string::npos);
  }
  {  // label value not below the class count
    const auto bad = w(t.path / "labels10", idx_file(0x801, {2}, {3, 10}));
    const auto msg = error_of([&] { (void)data::read_idx_labels(bad, 10); });
    CHECK(msg.find(bad.string()) != std::string::npos);
    CHECK(msg.find("label 1 (byte 9) is 10, not below the 10 classes") != std::string::npos);
    CHECK_NOTHROW((void)data::read_idx_labels(bad, 11));
  }
}
}  // namespace

TEST_CASE("malformed IDX files throw io_error naming the file and the problem") {
  check_malformed(false);
  check_malformed(true);
}

TEST_CASE("corrupt gzip streams and missing files throw io_error") {
  temp_dir t("gz");
  bytes big(4 + 12 + 50 * 28 * 28);
  // Incompressible-ish content so the compressed stream is long enough to cut in the middle.
  std::uint32_t x = 12345;
  for (auto& v : big) v = static_cast<std::uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  big = idx_file(0x803, {50, 28, 28}, bytes(big.begin(), big.begin() + 50 * 28 * 28));
  const auto good = write_gz(t.path / "good.gz", big);
  REQUIRE(data::read_idx(good).payload.size() == 50 * 28 * 28);
  const bytes z = read_all(good);

  SUBCASE("cut in the middle of the compressed stream") {
    const auto p = write_plain(t.path / "cut.gz", bytes(z.begin(), z.begin() + static_cast<long>(z.size() / 2)));
    const auto msg = error_of([&] { (void)data::read_idx(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("gzip") != std::string::npos);
  }
  SUBCASE("checksum trailer damaged") {
    bytes c = z;
    c[c.size() - 6] ^= 0xFF;  // CRC-32 of the gzip trailer
    const auto p = write_plain(t.path / "crc.gz", c);
    const auto msg = error_of([&] { (void)data::read_idx(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("gzip") != std::string::npos);
  }
  SUBCASE("missing file") {
    const auto p = t.path / "nope.gz";
    const auto msg = error_of([&] { (void)data::read_idx(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("no such file") != std::string::npos);
  }
}

TEST_CASE("MNIST test set from the shared data folder") {
  const char* env = std::getenv("QNAS_SHARED_DATA");
  const fs::path folder = env ? fs::path(env) / "mnist" : fs::path();
  if (!env || !fs::exists(folder / "t10k-images-idx3-ubyte.gz")) {
    const std::string where = env ? std::string(env) : std::string("unset");
    const std::string note = "skipped: QNAS_SHARED_DATA/mnist/t10k-images-idx3-ubyte.gz not found (QNAS_SHARED_DATA=" + where + ")";
    MESSAGE(note);
    return;
  }
  const data::dataset d = data::load_mnist_test(folder);
  REQUIRE(d.size() == 10000);
  CHECK(d.height() == 28);
  CHECK(d.width() == 28);
  CHECK(d.channels() == 1);
  CHECK(d.classes == 10);
  CHECK(d.labels[0] == 7);  // the first t10k image is a 7
  CHECK(d.labels[1] == 2);
  CHECK(d.labels[2] == 1);
  const auto counts = d.class_counts();
  CHECK(std::accumulate(counts.begin(), counts.end(), std::size_t{0}) == 10000);
  // The published t10k class histogram.
  CHECK(counts == std::vector<std::size_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  CHECK_NOTHROW(d.validate());
  const auto [lo, hi] = std::minmax_element(d.images.data(), d.images.data() + d.images.size());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);
}
