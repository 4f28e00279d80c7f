// nn/export: a quantized network written as manifest + packed blob and read back runs bit for bit the same; bad files are refused with messages.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

#include <zlib.h>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/binary.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/ternary.hpp"
#include "qnas/io/json.hpp"
#include "qnas/nn.hpp"
#include "qnas/nn/export.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::nn;

namespace {

using w8 = fixed_point<8, 1>;
using w4 = fixed_point<4, 1>;
using wp = po2<4, 2.0>;
using wt = ternary<-2, 0.125>;
using wb = binary<-2>;
using wbfp = bfp<4, 16>;
using a8 = fixed_relu<8, 3>;

format_registry all_formats() { return format_registry::of<w8, w4, wp, wt, wb, wbfp, mxint8, a8>(); }

struct scratch {
  fs::path dir;
  explicit scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("qnas_test_export_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void spit(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

/// Every exportable layer kind: conv, relu with a quantized output, max pool, depthwise conv,
/// batch norm, a residual block, average pool, dense, softmax. Weights and biases in `w`.
std::unique_ptr<sequential> make_net(const quantizer& w, const quantizer& a) {
  auto net = std::make_unique<sequential>(image(8, 8, 2));
  net->emplace<conv2d_layer>(16, 3, 1, padding::same, layer_formats{w, w, {}});
  net->emplace<relu_layer>().set_output_quantizer(a);
  net->emplace<pool_layer>(pool_layer::mode::max, 2, 2);
  net->emplace<depthwise_conv2d_layer>(3, 1, padding::same, layer_formats{w, w, {}});
  net->emplace<batch_norm_layer>();
  auto body = std::make_unique<sequential>(image(4, 4, 16));
  body->emplace<conv2d_layer>(16, 1, 1, padding::valid, layer_formats{w, {}, {}}, false);
  body->emplace<relu_layer>();
  net->add(std::make_unique<residual_layer>(std::move(body)));
  net->emplace<pool_layer>(pool_layer::mode::average, 2, 2);
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(20, layer_formats{w, w, {}});
  net->emplace<softmax_layer>();
  std::mt19937_64 e(5);
  net->initialize(e);
  return net;
}

xt::xarray<float> batch(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 e(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  xt::xarray<float> x = xt::empty<float>({n, std::size_t{8}, std::size_t{8}, std::size_t{2}});
  for (auto& v : x) v = d(e);
  return x;
}

/// Batch-norm statistics and affine parameters that are not the identity.
void train_statistics(sequential& net) {
  for (std::uint64_t s = 0; s < 3; ++s) {
    const xt::xarray<float> x = batch(16, 100 + s);
    net.forward(x, true);
  }
  for (layer* l : net.children())
    if (auto* bn = dynamic_cast<batch_norm_layer*>(l)) {
      std::mt19937_64 e(9);
      std::uniform_real_distribution<float> d(0.5f, 1.5f);
      for (auto& v : bn->gamma().value) v = d(e);
      for (auto& v : bn->beta().value) v = d(e) - 1.0f;
    }
}

bool same_bits(const xt::xarray<float>& a, const xt::xarray<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::uint32_t crc_of(const std::string& s, std::size_t off, std::size_t n) {
  return static_cast<std::uint32_t>(::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(s.data() + off),
                                            static_cast<uInt>(n)));
}

/// Reads tensor entry `t` from the blob as docs/export.md describes, without the library's
/// decoder: codes LSB first, then block headers; a scalar format's value is its code_values
/// entry; bfp and mx follow the block rules of the page; float32 is the IEEE bit pattern.
std::vector<float> read_as_documented(const io::json& manifest, const io::json& t, const std::string& blob) {
  const io::json& f = manifest["formats"][t["format"].get<std::string>()];
  const int bits = f["bits"], block = f["block_size"], scale_bits = f["scale_bits"];
  const std::size_t n = t["elements"], offset = t["offset"], code_bytes = t["code_bytes"];
  const std::size_t len = t["shape"].back();
  const std::string name = t["format"];
  auto field = [&](std::size_t start, std::size_t index, int width) {
    std::uint64_t v = 0;
    for (int b = 0; b < width; ++b) {
      const std::size_t bit = index * static_cast<std::size_t>(width) + static_cast<std::size_t>(b);
      v |= static_cast<std::uint64_t>((static_cast<unsigned char>(blob[start + bit / 8]) >> (bit % 8)) & 1u) << b;
    }
    return v;
  };
  auto twos = [](std::uint64_t v, int width) {
    return static_cast<int>(v) - ((v >> (width - 1)) & 1u ? (1 << width) : 0);
  };
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t code = field(offset, i, bits);
    if (f.contains("code_values")) {
      out[i] = f["code_values"][code].get<float>();
      continue;
    }
    if (name == "float32") {
      out[i] = std::bit_cast<float>(static_cast<std::uint32_t>(code));
      continue;
    }
    const std::size_t b = static_cast<std::size_t>(block);
    const std::size_t index = (i / len) * ((len + b - 1) / b) + (i % len) / b;  // block of element i
    const std::uint64_t header = field(offset + code_bytes, index, scale_bits);
    if (name.starts_with("bfp<")) {
      const int m = bits - 1;
      const auto k = static_cast<double>(code & ((1u << m) - 1));
      out[i] = static_cast<float>(std::ldexp((code >> m) ? -k : k, twos(header, scale_bits) - (m - 1)));
    } else {
      REQUIRE(name == "mxint8");  // elements: 8-bit two's complement k / 64; scale 2^(header - 127)
      out[i] = static_cast<float>(std::ldexp(twos(code, 8) / 64.0, static_cast<int>(header) - 127));
    }
  }
  return out;
}

/// Exports the 8-bit network into `dir` and returns the manifest path.
fs::path export_w8(const fs::path& dir) {
  auto net = make_net(quantizer::of<w8>(), quantizer::of<a8>());
  train_statistics(*net);
  const fs::path m = dir / "model.json";
  export_model(*net, m, all_formats());
  return m;
}

void edit_manifest(const fs::path& m, const std::function<void(io::json&)>& f) {
  io::json j = io::read_json_file(m);
  f(j);
  spit(m, j.dump(1));
}

}  // namespace

TEST_CASE("export and load: outputs equal the in-memory model's bit for bit, for every format") {
  scratch s("round_trip");
  const format_registry formats = all_formats();
  const std::vector<std::pair<quantizer, quantizer>> cases = {
      {quantizer::of<w8>(), quantizer::of<a8>()}, {quantizer::of<w4>(), quantizer::of<a8>()},
      {quantizer::of<wp>(), quantizer::of<a8>()}, {quantizer::of<wt>(), quantizer::of<a8>()},
      {quantizer::of<wb>(), quantizer::of<a8>()}, {quantizer::of<wbfp>(), quantizer::of<wbfp>()},
      {quantizer::of<mxint8>(), quantizer::of<a8>()}, {quantizer{}, quantizer{}}};
  for (const auto& [w, a] : cases) {
    CAPTURE(w.name());
    auto net = make_net(w, a);
    train_statistics(*net);
    const xt::xarray<float> x = batch(12, 1), x2 = batch(5, 2);
    const xt::xarray<float> y = net->forward(x, false), y2 = net->forward(x2, false);

    const fs::path m = s.dir / "model.json";
    const export_summary sum = export_model(*net, m, formats);
    CHECK(sum.blob == s.dir / "model.bin");
    CHECK(fs::file_size(sum.blob) == sum.blob_bytes);
    CHECK(fs::file_size(m) == sum.manifest_bytes);
    CHECK(sum.tensors == 11);  // weights and bias of conv, depthwise and dense; 4 of batch norm; the residual conv's weights
    auto loaded = load_model(m, formats);
    CHECK(same_bits(loaded->forward(x, false), y));
    CHECK(same_bits(loaded->forward(x2, false), y2));

    // The loaded layers carry the formats (summaries and the energy model read them).
    const auto before = describe_layers(*net), after = describe_layers(*loaded);
    REQUIRE(before.size() == after.size());
    for (std::size_t i = 0; i < before.size(); ++i) {
      CHECK(before[i].kind == after[i].kind);
      CHECK(before[i].weight_format_name == after[i].weight_format_name);
      CHECK(before[i].output_format_name == after[i].output_format_name);
      CHECK(before[i].params == after[i].params);
    }
    // The file can be read from the documentation alone: the conv's weights and the dense bias.
    const std::string blob = slurp(sum.blob);
    const io::json j = io::read_json_file(m);
    auto& conv = dynamic_cast<weighted_layer&>((*loaded)[0]);
    auto& fc = dynamic_cast<weighted_layer&>((*loaded)[8]);
    const auto wv = read_as_documented(j, j["layers"][0]["weights"], blob);
    const auto bv = read_as_documented(j, j["layers"][8]["bias"], blob);
    CHECK(std::memcmp(wv.data(), conv.weights().value.data(), wv.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(bv.data(), fc.bias().value.data(), bv.size() * sizeof(float)) == 0);
    CHECK(j["formats"][w.name()].contains("code_values") == (w.info().block_size == 1 && w.info().bits <= 8));
    // Exporting the loaded model writes the same bytes: nothing is re-rounded on the way.
    export_model(*loaded, s.dir / "again.json", formats);
    CHECK(slurp(s.dir / "again.bin") == blob);
  }
}

TEST_CASE("a network with its batch norm folded exports as the folded layers") {
  scratch s("folded");
  const format_registry formats = all_formats();
  auto net = make_net(quantizer::of<w8>(), quantizer::of<a8>());
  train_statistics(*net);
  CHECK(fold_batch_norm(*net) == 1);  // the one after the depthwise conv
  const xt::xarray<float> x = batch(7, 3);
  const xt::xarray<float> y = net->forward(x, false);
  const export_summary sum = export_model(*net, s.dir / "folded.json", formats);
  CHECK(sum.tensors == 7);
  auto loaded = load_model(s.dir / "folded.json", formats);
  CHECK(same_bits(loaded->forward(x, false), y));
  for (const auto& d : describe_layers(*loaded)) CHECK(d.kind != "batch_norm");
}

TEST_CASE("the blob holds each tensor in its own format: float32 size times amortized bits / 32") {
  scratch s("sizes");
  const format_registry formats = all_formats();
  // 64 x 32 weights and 32 biases: whole bytes and whole 16- or 32-element blocks, so the ratio is exact.
  const std::vector<std::pair<quantizer, double>> cases = {
      {quantizer::of<w8>(), amortized_bits_v<w8>},   {quantizer::of<w4>(), amortized_bits_v<w4>},
      {quantizer::of<wp>(), amortized_bits_v<wp>},   {quantizer::of<wt>(), amortized_bits_v<wt>},
      {quantizer::of<wb>(), amortized_bits_v<wb>},   {quantizer::of<wbfp>(), amortized_bits_v<wbfp>},
      {quantizer::of<mxint8>(), amortized_bits_v<mxint8>}, {quantizer{}, 32.0}};
  for (const auto& [w, bits] : cases) {
    CAPTURE(w.name());
    sequential net(flat(64));
    net.emplace<dense_layer>(32, layer_formats{w, w, {}});
    std::mt19937_64 e(3);
    net.initialize(e);
    const export_summary sum = export_model(net, s.dir / "dense.json", formats);
    CHECK(sum.elements == 64 * 32 + 32);
    CHECK(sum.float32_bytes == 4 * sum.elements);
    CHECK(static_cast<double>(sum.blob_bytes) == static_cast<double>(sum.float32_bytes) * bits / 32.0);
    CHECK(fs::file_size(s.dir / "dense.bin") == sum.blob_bytes);
  }
  CHECK(amortized_bits_v<wbfp> == 4.5);  // 4-bit elements + an 8-bit exponent per 16
}

TEST_CASE("bad model files are refused with what and where") {
  scratch s("bad");
  const format_registry formats = all_formats();
  const fs::path m = export_w8(s.dir);
  const std::string where = "qnas::nn::load_model('" + m.string() + "'): ";
  const fs::path b = s.dir / "model.bin";
  const std::string blob = slurp(b), manifest = slurp(m);
  REQUIRE(blob.size() == 2276);  // the figure docs/bad_input.md quotes
  auto restore = [&] {
    spit(m, manifest);
    spit(b, blob);
  };

  SUBCASE("missing manifest") {
    const fs::path none = s.dir / "none.json";
    CHECK_THROWS_WITH_AS(load_model(none, formats),
                         ("qnas::nn::load_model('" + none.string() + "'): cannot open the manifest: No such file or directory").c_str(),
                         io_error);
  }
  SUBCASE("missing blob") {
    fs::remove(b);
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "cannot open the blob '" + b.string() + "' that it names: No such file or directory").c_str(),
                         io_error);
  }
  SUBCASE("truncated blob") {
    spit(b, blob.substr(0, blob.size() - 10));
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "the blob '" + b.string() + "' has " + std::to_string(blob.size() - 10) +
                          " bytes, the manifest says " + std::to_string(blob.size()) + " (truncated?)")
                             .c_str(),
                         io_error);
  }
  SUBCASE("CRC mismatch") {
    std::string bad = blob;
    bad[7] = static_cast<char>(bad[7] ^ 0x10);
    spit(b, bad);
    // layers[0] is the conv2d: 3*3*2*16 8-bit weights at offset 0.
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "layers[0] (conv2d) weights: CRC-32 of bytes [0, 288) of the blob is " +
                          std::to_string(crc_of(bad, 0, 288)) + ", the manifest says " + std::to_string(crc_of(blob, 0, 288)) +
                          " (corrupt blob, or one from another export)")
                             .c_str(),
                         io_error);
  }
  SUBCASE("unknown format name") {
    CHECK_THROWS_WITH_AS(load_model(m, format_registry::of<a8>()),
                         (where + "layers[0] (conv2d) weights: unknown format 'fixed_point<8,1>' (the format registry "
                                  "holds float32, fixed_relu<8,3>; add the format with format_registry::add<F>())")
                             .c_str(),
                         io_error);
  }
  SUBCASE("a format of the same name with other parameters") {
    edit_manifest(m, [](io::json& j) { j["formats"]["fixed_point<8,1>"]["bits"] = 6; });
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "layers[0] (conv2d) weights: format 'fixed_point<8,1>' has bits 6 in the manifest "
                                  "but 8 in this program").c_str(),
                         io_error);
  }
  SUBCASE("manifest version mismatch") {
    edit_manifest(m, [](io::json& j) { j["version"] = 2; });
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "the manifest is version 2 of the qnas model format; this library reads version 1").c_str(),
                         io_error);
  }
  SUBCASE("not a model manifest") {
    spit(m, R"({"format": "qnas.search.checkpoint", "version": 1})");
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "not a qnas model manifest (no \"format\": \"qnas.model\")").c_str(), io_error);
  }
  SUBCASE("shape mismatch: hyper-parameters against the tensor") {
    edit_manifest(m, [](io::json& j) { j["layers"][0]["filters"] = 8; });
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "layers[0] (conv2d) weights: shape mismatch: the manifest's tensor is [3,3,2,16], "
                                  "the layer needs [3,3,2,8]").c_str(),
                         io_error);
  }
  SUBCASE("shape mismatch: layers that do not chain") {
    edit_manifest(m, [](io::json& j) { j["layers"][1]["input_shape"] = {8, 8, 8}; });
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "layers[1] (relu): shape mismatch: its input_shape is [8,8,8] but the layers before "
                                  "it produce [8,8,16]").c_str(),
                         io_error);
  }
  SUBCASE("shape mismatch inside a residual block") {
    edit_manifest(m, [](io::json& j) { j["layers"][5]["body"][0]["weights"]["shape"] = {1, 1, 16, 15}; });
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "layers[5].body[0] (conv2d) weights: shape mismatch: the manifest's tensor is "
                                  "[1,1,16,15], the layer needs [1,1,16,16]").c_str(),
                         io_error);
  }
  SUBCASE("unknown layer kind") {
    edit_manifest(m, [](io::json& j) { j["layers"][1]["kind"] = "gelu"; });
    CHECK_THROWS_WITH_AS(load_model(m, formats), (where + "layers[1] (gelu): unknown layer kind 'gelu'").c_str(), io_error);
  }
  restore();
  CHECK_NOTHROW(load_model(m, formats));
}

TEST_CASE("export refuses what it cannot write, naming the layer") {
  scratch s("refuse");
  auto net = make_net(quantizer::of<w8>(), quantizer::of<a8>());
  CHECK_THROWS_WITH_AS(export_model(*net, s.dir / "m.json", format_registry::of<a8>()),
                       "qnas::nn::export_model: layers[0] (conv2d) weights: format 'fixed_point<8,1>' is not in the "
                       "format registry (it holds float32, fixed_relu<8,3>); add it with format_registry::add<F>()",
                       invalid_argument);
  sequential se(image(4, 4, 8));
  se.emplace<squeeze_excite_layer>();
  CHECK_THROWS_WITH_AS(export_model(se, s.dir / "m.json", all_formats()),
                       "qnas::nn::export_model: layers[0] (squeeze_excite): this layer kind cannot be exported "
                       "(supported: conv2d, depthwise_conv2d, dense, max_pool, avg_pool, global_avg_pool, batch_norm, "
                       "relu, relu6, swish, sigmoid, softmax, flatten, residual, sequential)",
                       invalid_argument);
  CHECK_FALSE(fs::exists(s.dir / "m.json"));  // nothing is written when the export fails
  CHECK_FALSE(fs::exists(s.dir / "m.bin"));
}
