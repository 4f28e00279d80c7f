// libFuzzer target: the ONNX importer (qnas::import_onnx_bytes, onnx/import.hpp).
//
// Contract under test (docs/onnx_import.md): any bytes either import into a network or are
// refused with qnas::io_error or qnas::invalid_argument; nothing else (another exception,
// std::bad_alloc, a crash, a sanitizer report, a read outside the input) is allowed. A network
// that imports and is small (at most 4,096 inputs and 2^20 multiply-accumulates per sample)
// computes an output of its declared shape on one sample. Seeds (fuzz/corpus/fuzz_onnx_import):
// the PyTorch model of tests/onnx_import/assets and qnas networks exported by export_onnx.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>

#include "qnas/onnx/import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::unique_ptr<qnas::nn::sequential> net;
  try {
    qnas::onnx_import_options options;
    options.max_file_bytes = std::size_t{1} << 20;
    net = qnas::import_onnx_bytes({reinterpret_cast<const char*>(data), size}, "fuzz", options);
  } catch (const qnas::io_error&) {
    return 0;
  } catch (const qnas::invalid_argument&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_onnx_import: unexpected exception: %s\n", e.what());
    std::abort();
  }
  const qnas::tensor_shape in = net->input_shape();
  if (in.size() > 4096 || net->describe().macs > (std::size_t{1} << 20)) return 0;
  xt::xarray<float> x = xt::zeros<float>(qnas::nn::detail::batch_shape(1, in));
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(i % 7) * 0.25f - 0.5f;
  const xt::xarray<float>& y = net->forward(x, false);
  if (y.size() != net->output_shape().size()) {
    std::fprintf(stderr, "fuzz_onnx_import: output of %zu values, declared %zu\n", y.size(), net->output_shape().size());
    std::abort();
  }
  return 0;
}
