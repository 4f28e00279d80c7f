// Test support shared by tests/onnx and tests/onnx_import: random batches, networks with
// non-trivial batch norms, the case folders that check_models.py, run_models.js and run_qonnx.py
// read (model.onnx, input.bin, expected.bin, case.json), and counts of a graph's operators.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>
#include <xtensor/xarray.hpp>

#include "qnas/formats/quantizer.hpp"
#include "qnas/nn/activations.hpp"
#include "qnas/nn/batch_norm.hpp"
#include "qnas/nn/sequential.hpp"

namespace qnas::onnx_tests {

namespace fs = std::filesystem;

/// A batch of n samples of shape s, uniform in [-scale, scale).
inline xt::xarray<float> random_batch(std::size_t n, const tensor_shape& s, std::uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 e(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  xt::xarray<float> x = xt::empty<float>(nn::detail::batch_shape(n, s));
  for (auto& v : x) v = u(e);
  return x;
}

/// Gives every batch norm in `l` (and its children) non-trivial statistics and affine parameters.
inline void randomize_batch_norms(nn::layer& l, std::mt19937_64& e) {
  if (auto* bn = dynamic_cast<nn::batch_norm_layer*>(&l)) {
    std::uniform_real_distribution<float> u(-0.5f, 0.5f), v(0.5f, 2.0f);
    for (auto& x : bn->gamma().value) x = v(e);
    for (auto& x : bn->beta().value) x = u(e);
    for (auto& x : bn->running_mean()) x = u(e);
    for (auto& x : bn->running_var()) x = v(e);
  }
  for (nn::layer* c : l.children()) randomize_batch_norms(*c, e);
}

inline void write_floats(const fs::path& p, const xt::xarray<float>& a) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(a.data()), static_cast<std::streamsize>(a.size() * sizeof(float)));
  REQUIRE(f.good());
}

/// Writes input.bin (x), expected.bin (y) and case.json (`check` with the case's name and the
/// two shapes) into `dir`.
inline void write_case_files(const fs::path& dir, const std::string& name, const xt::xarray<float>& x,
                             const xt::xarray<float>& y, nlohmann::json check) {
  write_floats(dir / "input.bin", x);
  write_floats(dir / "expected.bin", y);
  check["name"] = name;
  check["input_shape"] = std::vector<std::size_t>(x.shape().begin(), x.shape().end());
  check["output_shape"] = std::vector<std::size_t>(y.shape().begin(), y.shape().end());
  std::ofstream(dir / "case.json") << check.dump(1) << "\n";
}

/// A probe case in folder `root`/`name`: one sample holding every input of `xs` through a flatten
/// layer whose output quantizer is `q`, written by `write_model(net, path)`; the runtime's output
/// must equal qnas's bit for bit ("check": "exact").
template <class WriteModel>
void write_probe_case(const fs::path& root, const std::string& name, const quantizer& q, const std::vector<float>& xs,
                      WriteModel&& write_model) {
  nn::sequential net(nn::flat(xs.size()));
  net.emplace<nn::flatten_layer>().set_output_quantizer(q);
  const fs::path dir = root / name;
  fs::create_directories(dir);
  write_model(net, dir / "model.onnx");
  xt::xarray<float> x = xt::empty<float>({std::size_t{1}, xs.size()});
  std::copy(xs.begin(), xs.end(), x.begin());
  write_case_files(dir, name, x, net.forward(x, false), {{"check", "exact"}});
}

/// How many nodes of each operator type the graph holds.
inline std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> c;
  for (const auto& n : m.graph().node()) ++c[n.op_type()];
  return c;
}

}  // namespace qnas::onnx_tests
