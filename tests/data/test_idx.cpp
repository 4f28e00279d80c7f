// IDX reader: well-formed plain and gzip files, every malformation the reader must name (with the
// file name and the byte offset), and the real MNIST test set when the shared data is present.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

// Other headers may open qnas::train::detail or qnas::data::detail before these are included;
// qualified lookups inside the headers must still reach qnas::detail.
namespace qnas::train::detail {}
namespace qnas::data::detail {}

#include "qnas/data/fashion_mnist.hpp"
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
    // Plain files count the extra bytes from the file size; gzip ones are not inflated past one byte more.
    CHECK(msg.find(gz ? "file has data after the declared payload (from byte 22" : "file has 6 bytes after the declared payload (from byte 22)") !=
          std::string::npos);
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

namespace {

// One gzip member holding `b`: gzip files may be members back to back, and zlib reads them as one stream.
bytes gz_member(const fs::path& scratch, const bytes& b) {
  write_gz(scratch, b);
  return read_all(scratch);
}

// A field of /proc/self/status in kB (VmHWM: peak resident set, VmRSS, VmSize), or -1.
long status_kb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

struct child_result {
  int code = -1;          // 0 read, 3 io_error, 4 other exception
  std::string message;    // what() of the error
  long peak_growth_kb = -1;  // peak RSS during the read minus RSS before it
};

// Reads `file` in a forked process: the peak resident memory of the read alone (the peak is reset
// through /proc/self/clear_refs first), and an address-space limit so that a reader that does
// inflate a bomb fails fast instead of taking gigabytes from the machine.
child_result read_in_child(const fs::path& file, long address_space_headroom_mb) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    const long vm_kb = status_kb("VmSize");
    if (vm_kb > 0) {
      const rlim_t limit = static_cast<rlim_t>(vm_kb + address_space_headroom_mb * 1024) * 1024;
      const rlimit rl{limit, limit};
      ::setrlimit(RLIMIT_AS, &rl);
    }
    { std::ofstream("/proc/self/clear_refs") << "5"; }  // reset VmHWM to the current RSS
    const long before = status_kb("VmRSS");
    int code = 0;
    std::string msg;
    try {
      (void)data::read_idx(file);
    } catch (const io_error& e) {
      code = 3, msg = e.what();
    } catch (const std::exception& e) {
      code = 4, msg = e.what();
    }
    const long growth = status_kb("VmHWM") - before;
    std::ostringstream os;
    os << growth << '\n' << msg;
    const std::string out = os.str();
    if (::write(fds[1], out.data(), out.size()) < 0) code = 5;
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  child_result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  const auto nl = out.find('\n');
  if (nl != std::string::npos) {
    r.peak_growth_kb = std::stol(out.substr(0, nl));
    r.message = out.substr(nl + 1);
  }
  return r;
}

}  // namespace

TEST_CASE("a gzip bomb (a small valid IDX file followed by 1 GiB of zeros) is refused within declared payload + 64 MiB") {
  temp_dir t("bomb");
  // 784 declared payload bytes, then 64 members of 16 MiB of zeros each: about 1 MB on disk.
  bytes file = gz_member(t.path / "m0", idx_file(0x803, {1, 28, 28}, bytes(784, 7)));
  const bytes zeros = gz_member(t.path / "m1", bytes(std::size_t{16} << 20, 0));
  for (int k = 0; k < 64; ++k) file.insert(file.end(), zeros.begin(), zeros.end());
  const auto bomb = write_plain(t.path / "bomb-idx3-ubyte.gz", file);
  CHECK(file.size() < (std::size_t{4} << 20));

  const auto r = read_in_child(bomb, 256);
  INFO("child exit " << r.code << ", peak RSS growth " << r.peak_growth_kb << " kB, message: " << r.message);
  MESSAGE("peak RSS growth reading the 1 GiB gzip bomb: ", r.peak_growth_kb, " kB");
  REQUIRE(r.code == 3);
  CHECK(r.message.find(bomb.string()) != std::string::npos);
  CHECK(r.message.find("data after the declared payload (from byte 800 of the decompressed stream") != std::string::npos);
  REQUIRE(r.peak_growth_kb >= 0);
  CHECK(r.peak_growth_kb <= (784 + (64 << 20)) / 1024);
}

TEST_CASE("reading a valid IDX file peaks near its declared payload, and an impossible payload is refused before allocating") {
  temp_dir t("rss");
  // 48 MiB declared and present (compressible content, so the file is small).
  const std::size_t n = std::size_t{48} << 20;
  bytes payload(n);
  for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<std::uint8_t>(i % 251);
  const auto good = write_gz(t.path / "big.gz", idx_file(0x801, {static_cast<std::uint32_t>(n)}, payload));
  payload = {};
  const auto ok = read_in_child(good, 512);
  INFO("peak RSS growth " << ok.peak_growth_kb << " kB, message: " << ok.message);
  CHECK(ok.code == 0);
  CHECK(ok.peak_growth_kb <= static_cast<long>((n + (std::size_t{64} << 20)) / 1024));

  // 4 GiB declared by a file of a few bytes: not allocated, the usual truncation message.
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    const auto p = (gz ? write_gz : write_plain)(t.path / (gz ? "liar.gz" : "liar"),
                                                 idx_file(0x803, {65536, 256, 256}, bytes(10, 1)));
    const auto r = read_in_child(p, 64);
    INFO("child exit " << r.code << ", message: " << r.message);
    CHECK(r.code == 3);
    CHECK(r.message.find("declares 4294967296 payload bytes, the file has 10") != std::string::npos);
    CHECK(r.peak_growth_kb < 16 * 1024);
  }
}

namespace {

// Sets or clears an environment variable for one test case and restores it afterwards.
struct scoped_env {
  std::string name;
  std::optional<std::string> before;
  scoped_env(std::string n, const char* value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) before = v;
    if (value) ::setenv(name.c_str(), value, 1);
    else ::unsetenv(name.c_str());
  }
  ~scoped_env() {
    if (before) ::setenv(name.c_str(), before->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
};

// The four Fashion-MNIST files in `dir`, each holding the two small images and labels above.
void write_mnist_layout(const fs::path& dir) {
  write_gz(dir / "train-images-idx3-ubyte.gz", images_ok());
  write_gz(dir / "train-labels-idx1-ubyte.gz", labels_ok());
  write_plain(dir / "t10k-images-idx3-ubyte", images_ok());
  write_plain(dir / "t10k-labels-idx1-ubyte", idx_file(0x801, {2}, {9, 3}));
}

std::string missing_message(const fs::path& given) {
  try {
    (void)data::locate_fashion_mnist(given);
  } catch (const data::data_missing& e) {
    return e.what();
  }
  return "(no data_missing thrown)";
}

}  // namespace

TEST_CASE("the Fashion-MNIST folder rule: --data, else $QNAS_DATA, else the Debian folder; none falls back") {
  temp_dir with("fm_with"), without("fm_without"), other("fm_other");
  write_mnist_layout(with.path);
  write_mnist_layout(other.path);

  SUBCASE("--data wins over $QNAS_DATA") {
    scoped_env env("QNAS_DATA", other.path.c_str());
    const auto where = data::locate_fashion_mnist(with.path);
    CHECK(where.folder == with.path);
    CHECK(where.chosen_by == "--data");
    const auto both = data::load_fashion_mnist(where.folder);
    CHECK(both.train.size() == 2);
    CHECK(both.test.size() == 2);
    CHECK(both.train.labels == std::vector<data::label_t>{3, 9});  // train files are the .gz ones
    CHECK(both.test.labels == std::vector<data::label_t>{9, 3});
  }
  SUBCASE("a --data folder without the files is an error, even when $QNAS_DATA holds them") {
    scoped_env env("QNAS_DATA", other.path.c_str());
    const std::string m = missing_message(without.path);
    CHECK(m.find(without.path.string()) != std::string::npos);
    CHECK(m.find("chosen by --data") != std::string::npos);
    CHECK(m.find("apt-get install -y dataset-fashion-mnist") != std::string::npos);
  }
  SUBCASE("$QNAS_DATA when no --data") {
    scoped_env env("QNAS_DATA", other.path.c_str());
    const auto where = data::locate_fashion_mnist();
    CHECK(where.folder == other.path);
    CHECK(where.chosen_by == "$QNAS_DATA");
    scoped_env empty_folder("QNAS_DATA", without.path.c_str());
    const std::string m = missing_message({});
    CHECK(m.find("chosen by $QNAS_DATA") != std::string::npos);
    CHECK(m.find(without.path.string()) != std::string::npos);
  }
  SUBCASE("the Debian folder when neither is given, and the install command when it is absent") {
    scoped_env env("QNAS_DATA", "");  // set but empty counts as not set
    if (data::has_mnist_layout(std::string(data::fashion_mnist_debian_folder))) {
      const auto where = data::locate_fashion_mnist();
      CHECK(where.chosen_by == "the Debian package");
      CHECK(where.folder == fs::path(data::fashion_mnist_debian_folder));
    } else {
      const std::string m = missing_message({});
      CHECK(m.find("/usr/share/datasets/fashion-mnist") != std::string::npos);
      CHECK(m.find("chosen by the Debian package") != std::string::npos);
      CHECK(m.find("sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist") != std::string::npos);
    }
  }
  SUBCASE("one file missing is enough to refuse the folder") {
    fs::remove(with.path / "t10k-labels-idx1-ubyte");
    CHECK(!data::has_mnist_layout(with.path));
    CHECK(missing_message(with.path).find("t10k-labels-idx1-ubyte") != std::string::npos);
  }
}

TEST_CASE("the full Fashion-MNIST from the Debian package: 60,000 + 10,000 images, balanced classes") {
  const fs::path folder{std::string(data::fashion_mnist_debian_folder)};
  if (!data::has_mnist_layout(folder)) {
    MESSAGE("not checked: Fashion-MNIST is not installed (" << data::fashion_mnist_install_command << ")");
    return;
  }
  const auto fm = data::load_fashion_mnist(folder);
  REQUIRE(fm.train.size() == 60000);
  REQUIRE(fm.test.size() == 10000);
  CHECK(fm.train.height() == 28);
  CHECK(fm.train.width() == 28);
  CHECK(fm.train.channels() == 1);
  for (const auto* d : {&fm.train, &fm.test}) {
    std::vector<std::size_t> per_class(10, 0);
    for (auto l : d->labels) ++per_class[l];
    for (auto c : per_class) CHECK(c == d->size() / 10);  // Fashion-MNIST is balanced: 6,000 / 1,000 per class
    float lo = 1.0f, hi = 0.0f;
    for (float v : d->images) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    CHECK(lo == 0.0f);
    CHECK(hi == 1.0f);
  }
}
