// The qtools_compat worked example, checked at compile time (static_assert: if it builds, it
// passes) and again at run time through the same functions.
//
// Network: 28x28x1 int8 input -> conv 3x3/2 same, 16 -> relu -> conv 32 -> relu -> conv 64
// -> relu -> flatten -> dense 10 -> softmax; int8 weights and biases, 8-bit relu outputs,
// 16-bit accumulators, parameters and activations in SRAM, rd_wr_on_io = false,
// min_sram_size = 2^27 bits. Shapes: 28 -> 14 -> 7 -> 4 (same padding: ceil(in / 2)).
//
// Hand derivation (qtools rules):
//   MACs: 14*14*16*9*1 = 28,224; 7*7*32*9*16 = 225,792; 4*4*64*9*32 = 294,912;
//         1024*10 = 10,240; total 559,168.
//   per MAC: multiplier gate bits sqrt(8*8) = 8: 0.002994791667*64 + 0.001041666667*8 = 0.2;
//            16-bit accumulator add 0.003125*16 = 0.05; 0.25 pJ per MAC.
//   op cost: 7,056 / 56,448 / 73,728 / 2,560 pJ, total 139,792 pJ.
//   memory: every tensor is smaller than 2^27 bits, so each 64-bit word costs
//     sram_rd(27) = 9.02427321e-4*27^3 - 2.68847858e-2*27^2 + 2.08900804e-1*27 = 3.80379 pJ.
//     Counted words (qtools include_energy): conv1 reads 98 input + 18 weight + 2 bias words;
//     relu1 writes 392; conv2 reads 392 + 576 + 4; relu2 writes 196; conv3 reads
//     196 + 2304 + 8; relu3 writes 128; flatten reads 128; dense reads 128 + 1280 + 2; the
//     softmax writes 10 x 16 bits = 3 words (unquantized, it keeps the dense layer's 16-bit
//     accumulator type). 5,855 words = 22,271.19 pJ.
//   total = int(139,792 + 22,271.2) = 162,063 pJ (qtools rounds every component to two
//   decimals, sums, and truncates to an int; the exact sum 162,063.19 truncates the same).
#include <doctest/doctest.h>

#include <array>
#include <sstream>

#include "qnas/energy.hpp"
#include "qnas/formats/fixed_point.hpp"

using namespace qnas;
using namespace qnas::energy;

namespace {
constexpr format_info i8 = info_of<int8>();
constexpr format_info u8 = info_of<fixed_relu<8, 8>>();
constexpr format_info i16 = info_of<fixed_point<16, 15>>();

constexpr std::array<layer_desc, 9> worked_net{
    conv2d("conv1", {28, 28, 1}, 16, 3, 2).with_formats(i8, i8, i8, i16, 16),
    activation("relu1", {14, 14, 16}).with_formats(i16, u8),
    conv2d("conv2", {14, 14, 16}, 32, 3, 2).with_formats(i8, i8, u8, i16, 16),
    activation("relu2", {7, 7, 32}).with_formats(i16, u8),
    conv2d("conv3", {7, 7, 32}, 64, 3, 2).with_formats(i8, i8, u8, i16, 16),
    activation("relu3", {4, 4, 64}).with_formats(i16, u8),
    flatten("flatten", {4, 4, 64}).with_formats(u8, u8),
    dense("dense", {1, 1, 1024}, 10).with_formats(i8, i8, u8, i16, 16),
    activation("softmax", {1, 1, 10}).with_formats(i16, i16),
};

constexpr energy_options worked_opts{memory_kind::sram, memory_kind::sram, 134217728.0 /* 2^27 */, false};

constexpr model_energy worked = price_model<qtools_compat>(worked_net, worked_opts);

// Shapes follow from "same" padding with stride 2.
static_assert(worked_net[2].in == tensor_shape{14, 14, 16} && worked_net[4].in == tensor_shape{7, 7, 32});
static_assert(worked_net[4].out == tensor_shape{4, 4, 64});

static_assert(worked.macs == 559168);
static_assert(round2(worked.op) == 139792.0);
static_assert(worked.qtools_total() == 162063);
static_assert(static_cast<long long>(worked.total_pj) == 162063);

// Per-layer op cost, as qtools prints it (two decimals).
constexpr double op_of(int i) {
  return round2(price_layer<qtools_compat>(worked_net[i], worked_opts, role_of(i, 9)).op);
}
static_assert(op_of(0) == 7056.0 && op_of(2) == 56448.0 && op_of(4) == 73728.0 && op_of(7) == 2560.0);
static_assert(op_of(1) == 0.0 && op_of(6) == 0.0);
}  // namespace

TEST_CASE("worked example: run-time pricing equals the compile-time one") {
  // Formats arrive as run-time values, as they do from a search candidate.
  std::array<layer_desc, 9> net = worked_net;
  volatile int bits = 8;  // defeats constant folding
  format_info w = i8;
  w.bits = bits;
  for (auto& l : net)
    if (l.has_weights()) l.weights = w;
  const model_energy e = price_model<qtools_compat>(net, worked_opts);
  CHECK(e.macs == 559168);
  CHECK(e.qtools_total() == 162063);
  CHECK(e.total_pj == worked.total_pj);  // same algorithm, same bits
  // qtools decimals give 0.200000000024 pJ per multiply: 1.3e-5 pJ over 559,168 MACs.
  CHECK(e.op == doctest::Approx(139792.0).epsilon(1e-9));
  // 5,855 counted SRAM words at sram_rd(27) each.
  CHECK(e.inputs + e.parameters + e.outputs == doctest::Approx(5855 * qtools_compat::sram_access_pj(134217728.0)));
}

TEST_CASE("worked example: per-layer report and summary") {
  const energy_report r = estimate<qtools_compat>(worked_net, worked_opts);
  REQUIRE(r.energies.size() == 9);
  CHECK(round2(r.energies[0].inputs) == 372.77);   // 98 words
  CHECK(round2(r.energies[0].parameters) == 76.08);  // 18 + 2 words
  CHECK(round2(r.energies[1].outputs) == 1491.09);   // 392 words
  CHECK(round2(r.energies[4].parameters) == 8794.36);  // 2304 + 8 words
  CHECK(r.energies[0].mac.kind == op_kind::multiplier);
  CHECK(r.energies[0].accumulator_bits == 16);
  CHECK(r.totals.qtools_total() == 162063);
  std::ostringstream os;
  os << r;
  const std::string s = os.str();
  CHECK(s.find("conv1") != std::string::npos);
  CHECK(s.find("multiplier") != std::string::npos);
  CHECK(s.find("162063") != std::string::npos);
  MESSAGE(s);
}
