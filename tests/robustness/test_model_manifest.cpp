// robustness/model_manifest: hostile model manifests (deep nesting, blob paths out of the folder, sizes that lie, edited format descriptions) are refused with what, where and why.
//
// Every hostile file is made here, at test time, from a real export: a manifest is data that may
// come from elsewhere, and load_model must neither crash, hang, read files beside the model's
// folder, nor allocate what a file merely claims.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "qnas/formats/fixed_point.hpp"
#include "qnas/io/json.hpp"
#include "qnas/nn.hpp"
#include "qnas/nn/export.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::nn;

namespace {

using w8 = fixed_point<8, 1>;
using a8 = fixed_relu<8, 3>;

format_registry formats() { return format_registry::of<w8, a8>(); }

struct scratch {
  fs::path dir;
  explicit scratch(const std::string& name)
      : dir(fs::temp_directory_path() / ("qnas_test_manifest_" + name + "_" + std::to_string(::getpid()))) {
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

void edit_manifest(const fs::path& m, const std::function<void(io::json&)>& f) {
  io::json j = io::read_json_file(m);
  f(j);
  spit(m, j.dump(1));
}

std::string where(const fs::path& m) { return "qnas::nn::load_model('" + m.string() + "'): "; }

/// A small quantized model (conv with 8-bit weights, an 8-bit activation, dense) exported to `m`.
void export_small(const fs::path& m) {
  sequential net(image(4, 4, 2));
  net.emplace<conv2d_layer>(4, 3, 1, padding::same, layer_formats{quantizer::of<w8>(), quantizer::of<w8>(), {}});
  net.emplace<relu_layer>().set_output_quantizer(quantizer::of<a8>());
  net.emplace<flatten_layer>();
  net.emplace<dense_layer>(3, layer_formats{quantizer::of<w8>(), quantizer::of<w8>(), {}});
  std::mt19937_64 e(1);
  net.initialize(e);
  export_model(net, m, formats());
}

/// `depth` residual blocks, each the only layer of the one around it, over a relu on [4].
std::unique_ptr<sequential> nested(std::size_t depth) {
  auto body = std::make_unique<sequential>(flat(4));
  body->emplace<relu_layer>();
  for (std::size_t d = 1; d < depth; ++d) {
    auto outer = std::make_unique<sequential>(flat(4));
    outer->add(std::make_unique<residual_layer>(std::move(body)));
    body = std::move(outer);
  }
  auto net = std::make_unique<sequential>(flat(4));
  net->add(std::make_unique<residual_layer>(std::move(body)));
  return net;
}

/// "layers[0].body[0]...": the path of the block nested `depth` deep.
std::string block_path(std::size_t depth) {
  std::string p = "layers[0]";
  for (std::size_t d = 0; d < depth; ++d) p += ".body[0]";
  return p;
}

/// The manifest of a float32 relu on [4] with its layers replaced by `layers_text` (raw JSON).
void write_with_layers(const fs::path& m, const std::string& layers_text) {
  sequential net(flat(4));
  net.emplace<relu_layer>();
  export_model(net, m, formats());
  io::json j = io::read_json_file(m);
  j["layers"] = "@LAYERS@";
  std::string text = j.dump();
  text.replace(text.find("\"@LAYERS@\""), 10, layers_text);
  spit(m, text);
}

std::string depth_message(const fs::path& m) {
  return where(m) + "the manifest nests arrays and objects more than " + std::to_string(max_manifest_json_depth) +
         " deep; a model manifest needs at most " + std::to_string(2 * max_model_nesting + 5) +
         " (blocks nested nn::max_model_nesting = " + std::to_string(max_model_nesting) + " deep)";
}

}  // namespace

TEST_CASE("blocks nested max_model_nesting deep export and load; one more is refused by both, naming the block") {
  scratch s("nesting");
  const fs::path m = s.dir / "deep.json";
  auto net = nested(max_model_nesting);
  export_model(*net, m, formats());
  auto loaded = load_model(m, formats());
  xt::xarray<float> x = {{-1.0f, 2.0f, -3.0f, 4.0f}};
  CHECK(loaded->forward(x, false) == net->forward(x, false));

  auto deeper = nested(max_model_nesting + 1);
  CHECK_THROWS_WITH_AS(export_model(*deeper, s.dir / "deeper.json", formats()),
                       ("qnas::nn::export_model: " + block_path(max_model_nesting) +
                        " (residual): blocks nest more than 64 deep (nn::max_model_nesting), more than a model file may hold")
                           .c_str(),
                       invalid_argument);
  CHECK_FALSE(fs::exists(s.dir / "deeper.json"));

  // The same model one block deeper, made by hand: the reader refuses it before it recurses.
  edit_manifest(m, [](io::json& j) {
    io::json block = {{"kind", "residual"}, {"input_shape", {4}}, {"output_shape", {4}}, {"output_format", "float32"}};
    block["body"] = j["layers"];
    j["layers"] = io::json::array({block});
  });
  CHECK_THROWS_WITH_AS(load_model(m, formats()),
                       (where(m) + block_path(max_model_nesting) + " (residual): blocks nest more than 64 deep (nn::max_model_nesting)").c_str(),
                       io_error);
  // A sequential block counts like a residual one.
  edit_manifest(m, [](io::json& j) { j["layers"][0]["kind"] = "sequential"; });
  CHECK_THROWS_WITH_AS(load_model(m, formats()),
                       (where(m) + block_path(max_model_nesting) + " (residual): blocks nest more than 64 deep (nn::max_model_nesting)").c_str(),
                       io_error);
}

TEST_CASE("a manifest nesting blocks or arrays thousands deep is refused before anything recurses") {
  scratch s("deep_json");
  const fs::path m = s.dir / "model.json";
  SUBCASE("residual blocks 20,000 deep (a stack overflow before)") {
    const std::size_t depth = 20000;
    const std::string open = R"([{"kind":"residual","input_shape":[4],"output_shape":[4],"output_format":"float32","body":)";
    std::string text;
    text.reserve(depth * (open.size() + 2) + 100);
    for (std::size_t d = 0; d < depth; ++d) text += open;
    text += R"([{"kind":"relu","input_shape":[4],"output_shape":[4],"output_format":"float32"}])";
    for (std::size_t d = 0; d < depth; ++d) text += "}]";
    write_with_layers(m, text);
    CHECK_THROWS_WITH_AS(load_model(m, formats()), depth_message(m).c_str(), io_error);
  }
  SUBCASE("a shape nested a million arrays deep (printing it for the message overflowed the stack)") {
    sequential net(flat(4));
    net.emplace<relu_layer>();
    export_model(net, m, formats());
    io::json j = io::read_json_file(m);
    j["input_shape"] = "@SHAPE@";
    std::string text = j.dump();
    const std::size_t depth = 1000000;
    text.replace(text.find("\"@SHAPE@\""), 9, "[" + std::string(depth, '[') + std::string(depth, ']') + ",0]");
    spit(m, text);
    CHECK_THROWS_WITH_AS(load_model(m, formats()), depth_message(m).c_str(), io_error);
  }
}

TEST_CASE("a blob path is resolved inside the manifest's folder, must be a regular file, and is sized before it is read") {
  scratch s("blob_path");
  const fs::path folder = s.dir / "model";
  fs::create_directories(folder);
  const fs::path m = folder / "model.json", b = folder / "model.bin";
  export_small(m);
  const std::string manifest = slurp(m), blob = slurp(b);
  const fs::path canonical_folder = fs::weakly_canonical(folder);
  auto set_blob = [&](const std::string& name) { edit_manifest(m, [&](io::json& j) { j["blob"] = name; }); };
  auto outside = [&](const std::string& name, const fs::path& target) {
    return where(m) + "field 'blob' is '" + name + "': it resolves to '" + target.string() +
           "', outside the manifest's folder '" + canonical_folder.string() +
           "' (through '..' or a symbolic link); only files inside that folder are read";
  };

  SUBCASE("'..' out of the folder, even to a file that would pass every check") {
    fs::copy_file(b, s.dir / "copy.bin");  // same bytes, so its size and CRCs match
    set_blob("../copy.bin");
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         outside("../copy.bin", fs::weakly_canonical(s.dir / "copy.bin")).c_str(), io_error);
    set_blob("../../../../../../../../etc/passwd");
    CHECK_THROWS_WITH_AS(load_model(m, formats()), outside("../../../../../../../../etc/passwd", "/etc/passwd").c_str(),
                         io_error);
    set_blob("model.bin/../../copy.bin");
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         outside("model.bin/../../copy.bin", fs::weakly_canonical(s.dir / "copy.bin")).c_str(), io_error);
  }
  SUBCASE("an absolute path (/dev/zero ended in std::bad_alloc before)") {
    for (const std::string& name : {std::string("/dev/zero"), b.string()}) {
      set_blob(name);
      CHECK_THROWS_WITH_AS(load_model(m, formats()),
                           (where(m) + "field 'blob' is '" + name +
                            "': an absolute path; a manifest names its blob relative to its own folder, and only files "
                            "inside that folder are read")
                               .c_str(),
                           io_error);
    }
  }
  SUBCASE("a symbolic link out of the folder") {
    fs::copy_file(b, s.dir / "copy.bin");
    fs::create_symlink("../copy.bin", folder / "link.bin");
    set_blob("link.bin");
    CHECK_THROWS_WITH_AS(load_model(m, formats()), outside("link.bin", fs::weakly_canonical(s.dir / "copy.bin")).c_str(),
                         io_error);
    fs::create_symlink("/dev/zero", folder / "zero.bin");
    set_blob("zero.bin");
    CHECK_THROWS_WITH_AS(load_model(m, formats()), outside("zero.bin", "/dev/zero").c_str(), io_error);
    // A link that stays inside the folder is followed.
    fs::create_symlink("model.bin", folder / "inside.bin");
    set_blob("inside.bin");
    CHECK_NOTHROW(load_model(m, formats()));
  }
  SUBCASE("not a regular file: a FIFO (reading it blocked forever before) or the folder itself") {
    REQUIRE(::mkfifo((folder / "fifo.bin").c_str(), 0600) == 0);
    set_blob("fifo.bin");
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (where(m) + "the blob '" + (folder / "fifo.bin").string() +
                          "' that it names is not a regular file but a FIFO; field 'blob' must name the file export_model wrote")
                             .c_str(),
                         io_error);
    set_blob(".");
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (where(m) + "the blob '" + (folder / ".").string() +
                          "' that it names is not a regular file but a directory; field 'blob' must name the file "
                          "export_model wrote")
                             .c_str(),
                         io_error);
    set_blob("");
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (where(m) + "field 'blob' is '': empty; it names the blob file beside the manifest").c_str(), io_error);
  }
  SUBCASE("sizes that lie are refused before the blob is allocated or read") {
    // A declared size far beyond the file.
    edit_manifest(m, [](io::json& j) { j["blob_bytes"] = std::uint64_t{1} << 62; });
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (where(m) + "the blob '" + b.string() + "' has " + std::to_string(blob.size()) +
                          " bytes, the manifest says 4611686018427387904 (truncated?)")
                             .c_str(),
                         io_error);
    // A 16 GiB (sparse) blob under a manifest that declares the real size: refused by its size,
    // not read into memory first.
    spit(m, manifest);
    fs::resize_file(b, std::uintmax_t{16} << 30);
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (where(m) + "the blob '" + b.string() + "' has 17179869184 bytes, the manifest says " +
                          std::to_string(blob.size()) + " (written by another export?)")
                             .c_str(),
                         io_error);
  }
  spit(m, manifest);
  spit(b, blob);
  CHECK_NOTHROW(load_model(m, formats()));
}

TEST_CASE("a format description that differs from the format's own (code_values and every other field) is refused") {
  scratch s("format_description");
  const fs::path m = s.dir / "model.json";
  export_small(m);
  const std::string manifest = slurp(m);
  const io::json original = io::read_json_file(m);
  const std::string w8_name = w8::name(), a8_name = a8::name();
  const io::json& mine = original["formats"][w8_name];
  REQUIRE(mine["code_values"].size() == 256);
  const std::string conv = where(m) + "layers[0] (conv2d) weights: format '" + w8_name + "' has ";

  SUBCASE("one code value changed") {
    edit_manifest(m, [&](io::json& j) { j["formats"][w8_name]["code_values"][3] = 0.5; });
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (conv + "code_values[3] 0.5 in the manifest but " + mine["code_values"][3].dump() + " in this program").c_str(),
                         io_error);
  }
  SUBCASE("a zero with the other sign") {
    REQUIRE(mine["code_values"][0].dump() == "0.0");
    edit_manifest(m, [&](io::json& j) { j["formats"][w8_name]["code_values"][0] = -0.0; });
    CHECK_THROWS_WITH_AS(load_model(m, formats()), (conv + "code_values[0] -0.0 in the manifest but 0.0 in this program").c_str(),
                         io_error);
  }
  SUBCASE("a code value dropped, or all of them") {
    edit_manifest(m, [&](io::json& j) { j["formats"][w8_name]["code_values"].erase(255); });
    CHECK_THROWS_WITH_AS(load_model(m, formats()), (conv + "255 code_values in the manifest but 256 in this program").c_str(),
                         io_error);
    edit_manifest(m, [&](io::json& j) { j["formats"][w8_name].erase("code_values"); });
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (where(m) + "layers[0] (conv2d) weights: format '" + w8_name +
                          "' in the manifest's formats table: missing field 'code_values'")
                             .c_str(),
                         io_error);
  }
  SUBCASE("the range, the family, a field this program does not write") {
    edit_manifest(m, [&](io::json& j) { j["formats"][w8_name]["min_value"] = -2.5; });
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (conv + "min_value -2.5 in the manifest but " + mine["min_value"].dump() + " in this program").c_str(),
                         io_error);
    spit(m, manifest);
    edit_manifest(m, [&](io::json& j) { j["formats"][w8_name]["family"] = "floating"; });
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (conv + "family \"floating\" in the manifest but " + mine["family"].dump() + " in this program").c_str(),
                         io_error);
    spit(m, manifest);
    edit_manifest(m, [&](io::json& j) { j["formats"][w8_name]["comment"] = "edited"; });
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (conv + "a field 'comment' in the manifest that this program does not write for it").c_str(), io_error);
  }
  SUBCASE("the activation format's table, named by the layer whose output uses it") {
    edit_manifest(m, [&](io::json& j) { j["formats"][a8_name]["code_values"][200] = 100.0; });
    CHECK_THROWS_WITH_AS(load_model(m, formats()),
                         (where(m) + "layers[1] (relu) output: format '" + a8_name + "' has code_values[200] 100.0 in the manifest but " +
                          original["formats"][a8_name]["code_values"][200].dump() + " in this program")
                             .c_str(),
                         io_error);
  }
  spit(m, manifest);
  CHECK_NOTHROW(load_model(m, formats()));
}
