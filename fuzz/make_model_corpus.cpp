// Writes the seed corpus of fuzz_model_manifest: small real exports, each as both input modes.
//
// usage: qnas_make_model_corpus <folder>   (fuzz/corpus/fuzz_model_manifest in the source tree)
// A seed is byte 0 = mode, bytes 1-2 = the blob's length (little-endian), the blob, then the
// manifest (fuzz_model_manifest.cpp). The models cover every layer kind export_model writes and
// the formats the target registers, so mutations start from files that load.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "qnas/formats/bfp.hpp"
#include "qnas/formats/fixed_point.hpp"
#include "qnas/formats/mx.hpp"
#include "qnas/nn.hpp"
#include "qnas/nn/export.hpp"

namespace fs = std::filesystem;
using namespace qnas;
using namespace qnas::nn;

namespace {

using w8 = fixed_point<8, 1>;
using w4 = fixed_point<4, 1>;
using a8 = fixed_relu<8, 3>;
using b4 = bfp<4, 16>;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// conv, relu with an 8-bit output, max pool, depthwise conv, batch norm, a residual block,
/// average pool, flatten, a block-floating-point dense layer, softmax.
std::unique_ptr<sequential> cnn() {
  auto net = std::make_unique<sequential>(image(6, 6, 2));
  net->emplace<conv2d_layer>(4, 3, 1, padding::same, layer_formats{quantizer::of<w8>(), quantizer::of<w8>(), {}});
  net->emplace<relu_layer>().set_output_quantizer(quantizer::of<a8>());
  net->emplace<pool_layer>(pool_layer::mode::max, 2, 2);
  net->emplace<depthwise_conv2d_layer>(3, 1, padding::same, layer_formats{quantizer::of<w4>(), quantizer::of<w4>(), {}});
  net->emplace<batch_norm_layer>();
  auto body = std::make_unique<sequential>(image(3, 3, 4));
  body->emplace<conv2d_layer>(4, 1, 1, padding::valid, layer_formats{quantizer::of<w8>(), {}, {}}, false);
  body->emplace<relu_layer>();
  net->add(std::make_unique<residual_layer>(std::move(body)));
  net->emplace<pool_layer>(pool_layer::mode::average, 3, 3);
  net->emplace<flatten_layer>();
  net->emplace<dense_layer>(3, layer_formats{quantizer::of<b4>(), quantizer::of<b4>(), {}});
  net->emplace<softmax_layer>();
  return net;
}

/// mxint8 dense, swish, a sequential block (4-bit dense, relu6), float32 dense, sigmoid.
std::unique_ptr<sequential> mlp() {
  auto net = std::make_unique<sequential>(flat(8));
  net->emplace<dense_layer>(16, layer_formats{quantizer::of<mxint8>(), quantizer::of<mxint8>(), {}});
  net->emplace<swish_layer>();
  auto block = std::make_unique<sequential>(flat(16));
  block->emplace<dense_layer>(8, layer_formats{quantizer::of<w4>(), quantizer::of<w4>(), {}});
  block->emplace<relu6_layer>();
  net->add(std::move(block));
  net->emplace<dense_layer>(2, layer_formats{});
  net->emplace<sigmoid_layer>();
  return net;
}

/// global average pool into a dense layer without bias.
std::unique_ptr<sequential> pooled() {
  auto net = std::make_unique<sequential>(image(3, 3, 3));
  net->emplace<global_avg_pool_layer>();
  net->emplace<dense_layer>(2, layer_formats{quantizer::of<w8>(), {}, {}}, false);
  return net;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out);
  const fs::path tmp = fs::temp_directory_path() / "qnas_make_model_corpus";
  fs::create_directories(tmp);
  const auto formats = format_registry::of<w8, w4, a8, b4, mxint8>();
  std::mt19937_64 e(7);
  const std::pair<const char*, std::unique_ptr<sequential>> models[] = {{"cnn", cnn()}, {"mlp", mlp()}, {"pooled", pooled()}};
  for (const auto& [name, net] : models) {
    net->initialize(e);
    const export_summary s = export_model(*net, tmp / "model.json", formats);
    const std::string blob = slurp(s.blob), manifest = slurp(s.manifest);
    if (blob.size() > 0xffff) throw std::runtime_error("a seed blob does not fit the 2-byte length");
    for (const char mode : {'\0', '\1'}) {
      const std::string seed = std::string{mode, static_cast<char>(blob.size() & 0xff), static_cast<char>(blob.size() >> 8)} +
                               blob + manifest;
      std::ofstream(out / (std::string(name) + (mode ? "_repaired" : "_as_is")), std::ios::binary) << seed;
      std::printf("%s: %zu bytes (blob %zu)\n", name, seed.size(), blob.size());
    }
  }
  fs::remove_all(tmp);
  return 0;
} catch (const std::exception& ex) {
  std::fprintf(stderr, "qnas_make_model_corpus: %s\n", ex.what());
  return 1;
}
