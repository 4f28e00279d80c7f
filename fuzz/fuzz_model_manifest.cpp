// libFuzzer target: the model manifest and blob reader (nn::load_model), and export of what it loads.
//
// Contract under test (nn/export.hpp, docs/export.md): any manifest and blob either load into a
// network or are refused with qnas::io_error; nothing else (another exception, std::bad_alloc, a
// crash, a sanitizer report, a stack overflow, a read outside the manifest's folder) is allowed.
// A network that loads computes outputs of its declared shape, exports, and loads back to a
// network whose outputs are the same bits.
//
// Input: byte 0 picks the mode; bytes 1-2 are the blob's length L (little-endian, cut to what
// is there); the next L bytes are the blob, the rest is the manifest. Even mode writes both as
// they are (exercising the size and CRC checks); odd mode first repairs the manifest's blob name,
// blob_bytes and every tensor's CRC-32 so that the fuzzer gets past them into the layers and
// formats. fuzz/corpus/fuzz_model_manifest holds real exports in both modes, written by
// fuzz/make_model_corpus.cpp.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>
#include <vector>

#include <zlib.h>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/io/json.hpp"
#include "qnas/nn.hpp"
#include "qnas/nn/export.hpp"

namespace {

using namespace qnas;
namespace fs = std::filesystem;

[[noreturn]] void fail(const char* what, const char* detail = "") {
  std::fprintf(stderr, "fuzz_model_manifest: %s %s\n", what, detail);
  std::abort();
}

/// The formats of the seed models (clang 14 cannot compile formats with floating-point template
/// parameters, so ternary and po2 are not among them).
const nn::format_registry& registry() {
  static const nn::format_registry r =
      nn::format_registry::of<fixed_point<8, 1>, fixed_point<4, 1>, fixed_relu<8, 3>, bfp<4, 16>, mxint8>();
  return r;
}

struct scratch_dir {
  fs::path dir;
  scratch_dir() {
    const char* env = std::getenv("TMPDIR");
    const fs::path base = env ? env : (fs::exists("/dev/shm") ? "/dev/shm" : "/tmp");
    dir = base / ("qnas_fuzz_model_manifest." + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};
const fs::path& scratch() {
  static const scratch_dir d;
  return d.dir;
}

void write(const fs::path& p, std::string_view bytes) {
  std::FILE* f = std::fopen(p.c_str(), "wb");
  if (!f) fail("cannot create a scratch file");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  std::fclose(f);
  if (!ok) fail("cannot write a scratch file");
}

/// Deepest nesting of arrays and objects in `text` (stops counting past `limit`); 0 for text that
/// is not JSON. The repair below must not recurse through a manifest the loader would refuse.
std::size_t json_depth(std::string_view text, std::size_t limit) {
  struct probe {
    std::size_t depth = 0, deepest = 0, limit;
    bool open() {
      deepest = std::max(deepest, ++depth);
      return depth <= limit;
    }
    bool close() {
      --depth;
      return true;
    }
    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(io::json::number_integer_t) { return true; }
    bool number_unsigned(io::json::number_unsigned_t) { return true; }
    bool number_float(io::json::number_float_t, const io::json::string_t&) { return true; }
    bool string(io::json::string_t&) { return true; }
    bool binary(io::json::binary_t&) { return true; }
    bool start_object(std::size_t) { return open(); }
    bool key(io::json::string_t&) { return true; }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
  } p{0, 0, limit};
  return io::json::sax_parse(text, &p) ? p.deepest : 0;
}

/// The manifest with its blob name, blob_bytes and every tensor's CRC-32 made to agree with
/// `blob`; the text unchanged when it is not a JSON object or is too deep to walk.
std::string repaired(std::string_view text, std::string_view blob) {
  const std::size_t depth = json_depth(text, nn::max_manifest_json_depth);
  if (depth == 0 || depth > nn::max_manifest_json_depth) return std::string(text);
  io::json j = io::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::string(text);
  j["blob"] = "model.bin";
  j["blob_bytes"] = blob.size();
  std::vector<io::json*> todo{&j};  // a walk without recursion (the depth is bounded anyway)
  while (!todo.empty()) {
    io::json* v = todo.back();
    todo.pop_back();
    if (v->is_object()) {
      const auto off = v->find("offset"), bytes = v->find("bytes");
      if (off != v->end() && bytes != v->end() && off->is_number_unsigned() && bytes->is_number_unsigned()) {
        const auto o = off->get<std::uint64_t>(), n = bytes->get<std::uint64_t>();
        if (o <= blob.size() && n <= blob.size() - o)
          (*v)["crc32"] = static_cast<std::uint32_t>(
              ::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(blob.data() + o), static_cast<uInt>(n)));
      }
    }
    if (v->is_structured())
      for (auto& e : *v) todo.push_back(&e);
  }
  return j.dump();
}

std::unique_ptr<nn::sequential> load(const fs::path& manifest, bool must_load) {
  try {
    return nn::load_model(manifest, registry());
  } catch (const io_error& e) {
    if (must_load) fail("a re-exported model does not load:", e.what());
    return nullptr;
  } catch (const std::exception& e) {
    fail("load_model threw something other than qnas::io_error:", e.what());
  }
}

/// A deterministic batch of two inputs of shape `s`, with negatives, zeros and fractions.
xt::xarray<float> input_of(const nn::tensor_shape& s) {
  std::vector<std::size_t> shape{2};
  if (s.rank == 1) shape.push_back(s.c);
  else shape.insert(shape.end(), {s.h, s.w, s.c});
  xt::xarray<float> x = xt::empty<float>(shape);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(static_cast<int>(i % 13) - 6) * 0.375f;
  return x;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const bool repair = data[0] & 1;
  const std::size_t blob_len = std::min<std::size_t>(data[1] | (std::size_t{data[2]} << 8), size - 3);
  const std::string_view blob(reinterpret_cast<const char*>(data + 3), blob_len);
  const std::string_view text(reinterpret_cast<const char*>(data + 3 + blob_len), size - 3 - blob_len);
  const fs::path manifest = scratch() / "model.json";
  write(scratch() / "model.bin", blob);
  write(manifest, repair ? repaired(text, blob) : std::string(text));

  const auto net = load(manifest, false);
  if (!net) return 0;

  // The loaded network runs, and only when it is small enough for a fuzzer's time budget.
  std::size_t macs = 0;
  for (const auto& d : nn::describe_layers(*net)) macs += d.macs;
  if (net->input_shape().size() > 4096 || macs > (std::size_t{1} << 20)) return 0;
  const xt::xarray<float> x = input_of(net->input_shape());
  const xt::xarray<float> y = net->forward(x, false);
  if (y.shape()[0] != 2 || y.size() != 2 * net->output_shape().size())
    fail("the output does not have the declared output shape");

  // What loads exports, and loads back to the same outputs.
  const fs::path again = scratch() / "again.json";
  try {
    nn::export_model(*net, again, registry());
  } catch (const std::exception& e) {
    fail("export of a loaded model threw:", e.what());
  }
  const auto back = load(again, true);
  const xt::xarray<float> y2 = back->forward(x, false);
  if (y2.shape() != y.shape() || std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)) != 0)
    fail("the re-exported model computes other outputs");
  return 0;
}
