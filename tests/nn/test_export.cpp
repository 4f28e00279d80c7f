// nn/export: a quantized network written as manifest + packed blob and read back runs bit for bit the same; bad files are refused with messages.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

#include <zlib.h>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/binary.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/learned.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/formats/po2.hpp"
#include "qnas/formats/scaled.hpp"
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
/// batch norm, a residual block, average pool, dense, softmax. Weights in `w`, biases in `b`
/// (default: `w`).
std::unique_ptr<sequential> make_net(const quantizer& w, const quantizer& a, std::optional<quantizer> bias = {}) {
  const quantizer b = bias.value_or(w);
  auto net = std::make_unique<sequential>(image(8, 8, 2));
  net->emplace<conv2d_layer>(16, 3, 1, padding::same, layer_formats{w, b, {}});
  net->emplace<relu_layer>().set_output_quantizer(a);
  net->emplace<pool_layer>(pool_layer::mode::max, 2, 2);
  net->emplace<depthwise_conv2d_layer>(3, 1, padding::same, layer_formats{w, b, {}});
  net->emplace<batch_norm_layer>();
  auto body = std::make_unique<sequential>(image(4, 4, 16));
  body->emplace<conv2d_layer>(16, 1, 1, padding::valid, layer_formats{w, {}, {}}, false);
  body->emplace<relu_layer>();
  net->add(std::make_unique<residual_layer>(std::move(body)));
  net->emplace<pool_layer>(pool_layer::mode::average, 2, 2);
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(20, layer_formats{w, b, {}});
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
  // an empty array's data() may be null, which memcmp must not be given even for 0 bytes
  return a.shape() == b.shape() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
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
  if (f.contains("scales")) {  // S_g * unit_code_values[code], S_g from the group's header
    const io::json& sc = f["scales"];
    const bool per_channel = sc["groups"] == "channel" && t["shape"].size() >= 2;
    const int hb = sc["header_bits"];
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t g = per_channel ? i % len : 0;
      float scale = 0;
      if (sc["header"] == "none") scale = sc["constant"].get<float>();
      else if (sc["header"] == "float32") scale = std::bit_cast<float>(static_cast<std::uint32_t>(field(offset + code_bytes, g, hb)));
      else scale = std::ldexp(1.0f, twos(field(offset + code_bytes, g, hb), 16));
      REQUIRE((sc["header"] == "none" || sc["header"] == "float32" || sc["header"] == "exp2_int16"));
      out[i] = scale * sc["unit_code_values"][field(offset, i, bits)].get<float>() + 0.0f;
    }
    return out;
  }
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
    CHECK_THROWS_WITH_AS(load_model(m, formats),
                         (where + "layers[1] (gelu): unknown layer kind 'gelu' (the layer registry holds avg_pool, "
                                  "batch_norm, conv2d, dense, depthwise_conv2d, flatten, global_avg_pool, max_pool, "
                                  "relu, relu6, residual, sequential, sigmoid, softmax, swish; add a user layer's kind "
                                  "with nn::layer_registry::add)").c_str(),
                         io_error);
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
                       "qnas::nn::export_model: layers[0] (squeeze_excite): layer kind 'squeeze_excite' is not in the "
                       "layer registry (it holds avg_pool, batch_norm, conv2d, dense, depthwise_conv2d, flatten, "
                       "global_avg_pool, max_pool, relu, relu6, residual, sequential, sigmoid, softmax, swish), so a "
                       "model file could not be read back; add it with nn::layer_registry::add",
                       invalid_argument);
  CHECK_FALSE(fs::exists(s.dir / "m.json"));  // nothing is written when the export fails
  CHECK_FALSE(fs::exists(s.dir / "m.bin"));
}

namespace {

using fx4 = fixed_point<4, 0, true, true>;
using s_fx4_auto = scaled<fx4, alpha_auto>;
using s_fx4_po2 = scaled<fx4, alpha_auto_po2<>>;
using s_fx4_const = scaled<fx4, alpha_const<0.3>>;
using s_t_auto = scaled<ternary<0>, alpha_auto>;
using s_t_auto_tensor = scaled<ternary<0>, alpha_auto, per_tensor>;
using s_t_const = scaled<ternary<0>, alpha_const<0.3>>;
using s_b_auto = scaled<binary<0>, alpha_auto>;
using s_b_po2 = scaled<binary<0>, alpha_auto_po2<>>;
using s_bias = scaled<fixed_point<8, 0, true, true>, alpha_auto>;
using l_fx4 = lsq<fx4>;
using l_fx3_tensor = lsq<fixed_point<3, 0, true, true>, per_tensor>;

format_registry scaled_formats() {
  return format_registry::of<s_fx4_auto, s_fx4_po2, s_fx4_const, s_t_auto, s_t_auto_tensor, s_t_const, s_b_auto, s_b_po2,
                             s_bias, l_fx4, l_fx3_tensor, w8, a8>();
}

std::vector<weighted_layer*> weighted_layers(sequential& net) {
  std::vector<weighted_layer*> out;
  for (layer* l : net.children()) {
    if (auto* w = dynamic_cast<weighted_layer*>(l)) out.push_back(w);
    if (auto* r = dynamic_cast<residual_layer*>(l))
      for (auto* w : weighted_layers(r->body())) out.push_back(w);
  }
  return out;
}

}  // namespace

TEST_CASE("formats with scales from the data and learned steps export and load bit for bit") {
  scratch s("scaled");
  const format_registry formats = scaled_formats();
  // Weights in each format; biases in a float-scaled format (auto scales: the loaded layer must
  // use the stored values, quantizing them again gives other last bits) or w8 for lsq weights.
  const std::vector<std::pair<quantizer, quantizer>> cases = {
      {quantizer::of<s_fx4_auto>(), quantizer::of<s_bias>()},      {quantizer::of<s_fx4_po2>(), quantizer::of<s_bias>()},
      {quantizer::of<s_fx4_const>(), quantizer::of<s_bias>()},     {quantizer::of<s_t_auto>(), quantizer::of<s_bias>()},
      {quantizer::of<s_t_auto_tensor>(), quantizer::of<s_bias>()}, {quantizer::of<s_t_const>(), quantizer::of<s_bias>()},
      {quantizer::of<s_b_auto>(), quantizer::of<s_bias>()},        {quantizer::of<s_b_po2>(), quantizer::of<s_bias>()},
      {quantizer::of<l_fx4>(), quantizer::of<w8>()},               {quantizer::of<l_fx3_tensor>(), quantizer::of<w8>()}};
  std::size_t requantize_differs = 0;
  for (const auto& [w, b] : cases) {
    CAPTURE(w.name());
    auto net = make_net(w, quantizer::of<a8>(), b);
    train_statistics(*net);
    auto layers = weighted_layers(*net);
    REQUIRE(layers.size() == 4);
    if (w.learned()) {
      // learned steps away from their initial values, and one layer not yet initialised
      for (auto* l : layers)
        for (auto& v : l->weight_steps().value) v *= 1.37f;
      std::fill(layers[2]->weight_steps().value.begin(), layers[2]->weight_steps().value.end(), 0.0f);
    }
    const xt::xarray<float> x = batch(9, 4);
    const fs::path m = s.dir / "model.json";
    export_model(*net, m, formats);  // sets layers[2]'s steps as a forward pass would
    const xt::xarray<float> y = net->forward(x, false);
    auto loaded = load_model(m, formats);
    CHECK(same_bits(loaded->forward(x, false), y));
    const auto before = describe_layers(*net), after = describe_layers(*loaded);
    REQUIRE(before.size() == after.size());
    for (std::size_t i = 0; i < before.size(); ++i) {
      CHECK(before[i].weight_format_name == after[i].weight_format_name);
      CHECK(before[i].params == after[i].params);
      CHECK(before[i].step_params == after[i].step_params);
    }
    auto again = weighted_layers(*loaded);
    for (std::size_t i = 0; i < layers.size(); ++i) {
      CHECK(same_bits(again[i]->weight_steps().value, layers[i]->weight_steps().value));
      // scales from the data: the loaded layer holds the stored values, pinned
      CHECK((again[i]->pinned_weights() != nullptr) == !w.learned());
      if (!w.learned()) {
        const xt::xarray<float>& stored = again[i]->weights().value;
        xt::xarray<float> again_q = xt::empty<float>(stored.shape());
        w({stored.data(), stored.size()}, {again_q.data(), again_q.size()}, {stored.shape().data(), stored.dimension()});
        requantize_differs += !same_bits(again_q, stored);
      }
    }
    // The file reads from the documentation alone (scales section of docs/export.md).
    const std::string blob = slurp(s.dir / "model.bin");
    const io::json j = io::read_json_file(m);
    REQUIRE(j["formats"][w.name()].contains("scales"));
    CHECK_FALSE(j["formats"][w.name()].contains("code_values"));
    const auto wv = read_as_documented(j, j["layers"][0]["weights"], blob);
    CHECK(std::memcmp(wv.data(), again[0]->weights().value.data(), wv.size() * sizeof(float)) == 0);
    if (!w.learned()) {
      const auto bv = read_as_documented(j, j["layers"][0]["bias"], blob);
      CHECK(std::memcmp(bv.data(), again[0]->bias().value.data(), bv.size() * sizeof(float)) == 0);
    }
    // Exporting the loaded model writes the same bytes.
    export_model(*loaded, s.dir / "again.json", formats);
    CHECK(slurp(s.dir / "again.bin") == blob);
    // Training further: a changed weight ends the pin and the format quantizes again.
    auto& conv = *again[0];
    conv.weights().value(0) += 0.01f;
    CHECK(conv.pinned_weights() == nullptr);
    loaded->forward(x, false);
    CHECK(conv.pinned_weights() == nullptr);
  }
  // Without the pins the loaded model would compute another model: auto scales found again from
  // quantized values differ in the last bits (ternary, binary) or the codes move (constant alpha).
  CHECK(requantize_differs > 0);
}

TEST_CASE("the scales section of a format description in the manifest") {
  scratch s("scales_json");
  auto net = make_net(quantizer::of<s_t_auto>(), quantizer::of<a8>(), quantizer::of<s_b_po2>());
  const fs::path m = s.dir / "model.json";
  export_model(*net, m, scaled_formats());
  const io::json j = io::read_json_file(m);
  const io::json& t = j["formats"][s_t_auto::name()]["scales"];
  CHECK(t["groups"] == "channel");
  CHECK(t["header_bits"] == 32);
  CHECK(t["header"] == "float32");
  // 2-bit two's complement: -1, 0, 1, and code 2, which the encoder never writes, decodes to -2
  CHECK(t["unit_code_values"] == io::json::parse("[0.0, 1.0, -2.0, -1.0]"));
  const io::json& p = j["formats"][s_b_po2::name()]["scales"];
  CHECK(p["header"] == "exp2_int16");
  CHECK(p["header_bits"] == 16);
  CHECK(p["unit_code_values"] == io::json::parse("[1.0, -1.0]"));
  // 16 output channels: one 32-bit scale each after the 144 2-bit codes of the 3x3x2x16 kernel.
  CHECK(j["layers"][0]["weights"]["code_bytes"] == 3 * 3 * 2 * 16 * 2 / 8);
  CHECK(j["layers"][0]["weights"]["header_bytes"] == 16 * 4);
  CHECK(j["layers"][0]["bias"]["header_bytes"] == 2);  // a rank-1 tensor: one scale, 16 bits
}

TEST_CASE("damaged scales and steps in a blob are refused, naming the tensor") {
  scratch s("scaled_bad");
  const format_registry formats = scaled_formats();
  // Rewrites the first header of layers[0]'s weights with `bits` (little-endian, `n` bytes) and
  // fixes the CRC, as a file damaged before its checksum was written would be.
  auto damage = [&](const quantizer& w, std::uint32_t bits, std::size_t n) {
    auto net = make_net(w, quantizer::of<a8>(), quantizer::of<w8>());
    const fs::path m = s.dir / "model.json";
    export_model(*net, m, formats);
    std::string blob = slurp(s.dir / "model.bin");
    io::json j = io::read_json_file(m);
    io::json& t = j["layers"][0]["weights"];
    const std::size_t at = t["offset"].get<std::size_t>() + t["code_bytes"].get<std::size_t>();
    for (std::size_t b = 0; b < n; ++b) blob[at + b] = static_cast<char>((bits >> (8 * b)) & 0xFFu);
    t["crc32"] = crc_of(blob, t["offset"], t["bytes"]);
    spit(s.dir / "model.bin", blob);
    spit(m, j.dump(1));
    return m;
  };
  const fs::path m1 = damage(quantizer::of<s_b_po2>(), 300u, 2);
  CHECK_THROWS_WITH_AS(load_model(m1, formats),
                       ("qnas::nn::load_model('" + m1.string() + "'): layers[0] (conv2d) weights: qnas::decode: " +
                        s_b_po2::name() + ": scale exponent 300 is outside [-149, 127]")
                           .c_str(),
                       io_error);
  const fs::path m2 = damage(quantizer::of<l_fx4>(), std::bit_cast<std::uint32_t>(-0.5f), 4);
  CHECK_THROWS_WITH_AS(load_model(m2, formats),
                       ("qnas::nn::load_model('" + m2.string() + "'): layers[0] (conv2d) weights: qnas::decode: " +
                        l_fx4::name() + ": step -0.5 is not a finite number > 0")
                           .c_str(),
                       io_error);
}

TEST_CASE("export refuses lsq weights with a step the optimizer drove below zero") {
  scratch s("lsq_bad_step");
  auto net = make_net(quantizer::of<l_fx4>(), quantizer::of<a8>(), quantizer::of<w8>());
  auto& conv = dynamic_cast<weighted_layer&>((*net)[0]);
  conv.initialize_weight_steps();
  conv.weight_steps().value(3) = -0.25f;
  CHECK_THROWS_WITH_AS(export_model(*net, s.dir / "m.json", scaled_formats()),
                       ("qnas::nn::export_model: layers[0] (conv2d) weights: qnas::quantizer::codes_with_steps: " +
                        l_fx4::name() + ": step 3 is -0.25; a step must be a finite number > 0")
                           .c_str(),
                       invalid_argument);
  CHECK_FALSE(fs::exists(s.dir / "m.json"));
}

TEST_CASE("pinned weights: shape checked; codes that do not decode to the values are refused on export") {
  scratch s("pin");
  auto net = make_net(quantizer::of<s_t_auto>(), quantizer::of<a8>(), quantizer::of<w8>());
  auto& conv = dynamic_cast<weighted_layer&>((*net)[0]);
  CHECK_THROWS_WITH_AS(conv.pin_weights({xt::zeros<float>({3, 3, 2, 15}), {}, {}}),
                       "qnas::nn::conv2d::pin_weights: the stored tensor has 270 elements in a shape other than the "
                       "layer's (288 elements)",
                       invalid_argument);
  const xt::xarray<float> q = quantize<s_t_auto>(conv.weights().value);
  auto e = encode<s_t_auto>(conv.weights().value);
  conv.pin_weights({q, e.codes, e.headers});
  CHECK(conv.pinned_weights() != nullptr);
  export_model(*net, s.dir / "ok.json", scaled_formats());
  e.headers[0] ^= 0x01;  // another scale for channel 0
  conv.pin_weights({q, e.codes, e.headers});
  CHECK_THROWS_WITH_AS(export_model(*net, s.dir / "m.json", scaled_formats()),
                       ("qnas::nn::export_model: layers[0] (conv2d) weights: the pinned values "
                        "(weighted_layer::pin_weights) are not what their stored codes and headers decode to in " +
                        s_t_auto::name())
                           .c_str(),
                       invalid_argument);
}

namespace {

// A layer qnas does not have, written as a user would: y = scale[c] * x + offset, with one
// trainable scale per channel (exported through layer::state()) and a fixed offset (exported
// through layer::attributes()).
class channel_affine final : public with_buffers<layer> {
 public:
  channel_affine(tensor_shape in, float offset) : with_buffers<layer>("channel_affine", in, in), offset_(offset) {
    scale_ = {"channel_affine.scale", xt::ones<float>({in.c}), xt::zeros<float>({in.c}), false};
  }
  std::vector<parameter*> parameters() override { return {&scale_}; }
  [[nodiscard]] std::vector<layer_attribute> attributes() const override { return {{"offset", offset_}}; }
  parameter& scale() { return scale_; }

 protected:
  const xt::xarray<float>& forward_impl(const xt::xarray<float>& x, bool) override {
    check_input(x);
    y_ = x;
    const std::size_t c = input_shape().c;
    for (std::size_t i = 0; i < y_.size(); ++i) y_.data()[i] = scale_.value(i % c) * x.data()[i] + offset_;
    return y_;
  }
  const xt::xarray<float>& backward_impl(const xt::xarray<float>& dy, bool) override { return dx_ = dy; }

 private:
  parameter scale_;
  float offset_;
};

}  // namespace

TEST_CASE("a user layer is exported and read back through a layer registry") {
  scratch s("user_layer");
  auto net = make_net(quantizer::of<w8>(), quantizer::of<a8>());
  auto& user = net->emplace<channel_affine>(0.25f);
  for (std::size_t i = 0; i < user.scale().value.size(); ++i) user.scale().value(i) = 0.5f + 0.125f * static_cast<float>(i);
  layer_registry layers = layer_registry::builtin();
  layers.add("channel_affine", [](const layer_record& r) {
    return std::make_unique<channel_affine>(r.input, static_cast<float>(r.number("offset")));
  });
  const fs::path m = s.dir / "m.json";
  // The built-in registry does not know the kind: refused before anything is written.
  CHECK_THROWS_AS(export_model(*net, m, all_formats()), invalid_argument);
  CHECK_FALSE(fs::exists(m));
  export_model(*net, m, all_formats(), layers);
  const io::json j = io::read_json_file(m);
  const io::json& e = j["layers"].back();
  CHECK(e["kind"] == "channel_affine");
  CHECK(e["offset"] == 0.25);
  CHECK(e["scale"]["format"] == "float32");
  CHECK_THROWS_WITH_AS(load_model(m, all_formats()),
                       doctest::Contains("unknown layer kind 'channel_affine'"), io_error);
  auto back = load_model(m, all_formats(), layers);
  const xt::xarray<float> x = batch(3, 11);
  const xt::xarray<float> y0 = net->forward(x, false);
  const xt::xarray<float>& y1 = back->forward(x, false);
  REQUIRE(y0.shape() == y1.shape());
  CHECK(std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)) == 0);
  auto& reloaded = dynamic_cast<channel_affine&>((*back)[back->size() - 1]);
  CHECK(reloaded.scale().value == user.scale().value);
  // A registry refuses a kind twice, an empty kind and an empty factory.
  CHECK_THROWS_AS(layers.add("channel_affine", [](const layer_record& r) { return std::make_unique<relu_layer>(r.input); }),
                  invalid_argument);
  CHECK_THROWS_AS(layers.add("", [](const layer_record& r) { return std::make_unique<relu_layer>(r.input); }), invalid_argument);
  CHECK_THROWS_AS(layers.add("x", layer_factory{}), invalid_argument);
}
