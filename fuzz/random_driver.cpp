// A stand-in for libFuzzer where only GCC can compile a target: feeds LLVMFuzzerTestOneInput
// seeded random inputs (not coverage-guided, so weaker than libFuzzer, but the same checks).
//
// usage: <target> [runs] [seed] [file...]   (files are replayed first, e.g. a crash input)
// Inputs: random length up to 4 KiB; the bytes are uniform, or (one input in four) drawn from a
// small alphabet of corner bytes so that float bit patterns such as 0x7f800000 come up often.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  const long runs = argc > 1 ? std::atol(argv[1]) : 20000;
  const unsigned long seed = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1;
  for (int i = 3; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::mt19937_64 rng(seed);
  static constexpr std::uint8_t corner[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x3f, 0xc0, 0x7e, 0x00, 0x00};
  std::vector<std::uint8_t> buf;
  for (long r = 0; r < runs; ++r) {
    buf.resize(2 + rng() % 4095);
    const bool corners = rng() % 4 == 0;
    for (auto& b : buf) b = corners ? corner[rng() % sizeof corner] : static_cast<std::uint8_t>(rng());
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
  }
  std::printf("%ld random inputs (seed %lu) passed\n", runs, seed);
  return 0;
}
