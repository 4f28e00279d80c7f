// onnx/import: the committed PyTorch model (assets/, made by make_torch_model.py) imports and computes PyTorch's outputs; every prefix of the file is refused cleanly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "qnas/data/idx.hpp"
#include "qnas/onnx/export.hpp"
#include "qnas/onnx/import.hpp"

namespace fs = std::filesystem;
using namespace qnas;

namespace {

const fs::path assets = QNAS_ONNX_IMPORT_ASSETS;

std::vector<float> read_floats(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

/// NCHW [n, c, h, w] -> qnas's NHWC.
xt::xarray<float> to_nhwc(const std::vector<float>& x, std::size_t n, std::size_t c, std::size_t h, std::size_t w) {
  xt::xarray<float> y = xt::empty<float>({n, h, w, c});
  for (std::size_t b = 0; b < n; ++b)
    for (std::size_t k = 0; k < c; ++k)
      for (std::size_t i = 0; i < h * w; ++i) y.data()[(b * h * w + i) * c + k] = x[(b * c + k) * h * w + i];
  return y;
}

fs::path mnist_dir() {
  if (const char* d = std::getenv("QNAS_SHARED_DATA")) return fs::path(d) / "mnist";
  if (const char* d = std::getenv("QNAS_ONNX_IMPORT_MNIST")) return d;
  return "../shared/data/mnist";
}

/// The largest |y - want| and the largest |want|.
std::pair<float, float> max_abs_diff(const xt::xarray<float>& y, const std::vector<float>& want) {
  float diff = 0.0f, top = 0.0f;
  for (std::size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(y.data()[i] - want[i]));
    top = std::max(top, std::abs(want[i]));
  }
  return {diff, top};
}

}  // namespace

TEST_CASE("import_onnx: the PyTorch MNIST CNN (opset 13) gives PyTorch's logits") {
  const std::unique_ptr<nn::sequential> net = import_onnx(assets / "mnist_cnn.onnx");
  CHECK(net->input_shape() == image(28, 28, 1));
  CHECK(net->output_shape() == flat(10));
  const std::vector<float> input = read_floats(assets / "mnist_cnn_input.bin");
  const std::vector<float> want = read_floats(assets / "mnist_cnn_output.bin");
  REQUIRE(input.size() == 16 * 28 * 28);
  REQUIRE(want.size() == 16 * 10);
  const xt::xarray<float> x = to_nhwc(input, 16, 1, 28, 28);
  const xt::xarray<float> y = net->forward(x, false);
  REQUIRE(y.size() == want.size());
  const auto [diff, top] = max_abs_diff(y, want);
  MESSAGE("PyTorch vs qnas on 16 images: max |diff| ", diff, ", max |logit| ", top, ", relative ", diff / top);
  CHECK(diff <= 1e-5f * top);

  // import -> export -> import: the same bits
  std::string bytes;
  REQUIRE(to_onnx(*net).SerializeToString(&bytes));
  const std::unique_ptr<nn::sequential> again = import_onnx_bytes({bytes.data(), bytes.size()}, "re-export");
  const xt::xarray<float> z = again->forward(x, false);
  CHECK(std::memcmp(z.data(), y.data(), y.size() * sizeof(float)) == 0);

  // For tests/onnx's onnx_checker and onnx_runtime (QNAS_ONNX_MODELS set by ctest): the imported
  // model exported again, its NHWC input and qnas's logits, checked as a float case.
  if (const char* models = std::getenv("QNAS_ONNX_MODELS")) {
    const fs::path dir = fs::path(models) / "imported_pytorch_mnist_cnn";
    fs::create_directories(dir);
    const auto write = [&](const char* file, const char* data, std::size_t n) {
      std::ofstream f(dir / file, std::ios::binary);
      f.write(data, static_cast<std::streamsize>(n));
      REQUIRE(f.good());
    };
    write("model.onnx", bytes.data(), bytes.size());
    write("input.bin", reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
    write("expected.bin", reinterpret_cast<const char*>(y.data()), y.size() * sizeof(float));
    std::ofstream(dir / "case.json") << R"({"name": "imported_pytorch_mnist_cnn", "check": "float", "tolerance": 1e-5,)"
                                     << R"( "input_shape": [16, 28, 28, 1], "output_shape": [16, 10]})" << "\n";
  }
}

TEST_CASE("import_onnx: the PyTorch model's accuracy on MNIST images 8000-9999 (held out from its training) is PyTorch's") {
  const fs::path dir = mnist_dir();
  if (!fs::exists(data::detail::idx_file(dir, "t10k-images-idx3-ubyte"))) {
    MESSAGE("MNIST not found in ", dir.string(), "; accuracy not measured");
    return;
  }
  const data::dataset d = data::load_idx(data::detail::idx_file(dir, "t10k-images-idx3-ubyte"),
                                         data::detail::idx_file(dir, "t10k-labels-idx1-ubyte"));
  const std::unique_ptr<nn::sequential> net = import_onnx(assets / "mnist_cnn.onnx");
  const std::size_t first = 8000, count = 2000;
  xt::xarray<float> x = xt::empty<float>({count, std::size_t{28}, std::size_t{28}, std::size_t{1}});
  std::copy(d.images.data() + first * 784, d.images.data() + (first + count) * 784, x.data());
  const xt::xarray<float> y = net->forward(x, false);
  std::size_t right = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const float* row = y.data() + i * 10;
    right += std::max_element(row, row + 10) - row == static_cast<std::ptrdiff_t>(d.labels[first + i]);
  }
  const double accuracy = static_cast<double>(right) / static_cast<double>(count);
  double pytorch = -1;  // mnist_cnn.txt: "pytorch_accuracy_8000_9999 <value>"
  std::ifstream info(assets / "mnist_cnn.txt");
  for (std::string key; info >> key;)
    if (key == "pytorch_accuracy_8000_9999") info >> pytorch;
  MESSAGE("imported PyTorch model: accuracy ", accuracy, " on MNIST test images 8000-9999 (PyTorch: ", pytorch, ")");
  CHECK(accuracy > 0.95);
  CHECK(std::abs(accuracy - pytorch) <= 1.0 / static_cast<double>(count));  // at most one near-tie flips
}

TEST_CASE("import_onnx: every prefix of the PyTorch model is refused with a qnas error, never a crash") {
  std::ifstream f(assets / "mnist_cnn.onnx", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 1000);
  std::size_t refused = 0;
  for (std::size_t n = 0; n < bytes.size(); n += 1 + n / 64) {
    try {
      (void)import_onnx_bytes({bytes.data(), n}, "prefix");
    } catch (const qnas::error& e) {
      ++refused;
      CHECK(std::string(e.what()).starts_with("qnas::import_onnx('prefix'): "));
    }
  }
  CHECK(refused > 0);
}

TEST_CASE("import_onnx: a PyTorch block with ReLU6, a residual depthwise block with SiLU, pools and softmax gives PyTorch's outputs") {
  // assets/block_cnn.onnx: conv-bn-Clip(0,6), body(x) + x with a depthwise conv, batch norm,
  // Mul(x, Sigmoid(x)) and a 1x1 conv, MaxPool, Conv, Pad(0) + AveragePool, GlobalAveragePool,
  // Flatten, Gemm, Softmax (untrained seeded weights; make_torch_model.py)
  const std::unique_ptr<nn::sequential> net = import_onnx(assets / "block_cnn.onnx");
  CHECK(net->input_shape() == image(12, 12, 3));
  CHECK(net->output_shape() == flat(5));
  const std::vector<float> input = read_floats(assets / "block_cnn_input.bin");
  const std::vector<float> want = read_floats(assets / "block_cnn_output.bin");
  REQUIRE(input.size() == 4 * 3 * 12 * 12);
  REQUIRE(want.size() == 4 * 5);
  const xt::xarray<float> x = to_nhwc(input, 4, 3, 12, 12);
  const xt::xarray<float> y = net->forward(x, false);
  REQUIRE(y.size() == want.size());
  const auto [diff, top] = max_abs_diff(y, want);
  MESSAGE("PyTorch vs qnas on the block: max |diff| ", diff, ", max |output| ", top, ", relative ", diff / top);
  CHECK(diff <= 1e-5f * top);
}
