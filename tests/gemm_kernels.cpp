// The built-in GEMM's row kernels, instantiated once for every test and example executable
// (nn/gemm_kernel.hpp: the other translation units see QNAS_GEMM_KERNELS_EXTERN and only declare
// them, which saves some 5 s of compile time in each one that runs a GEMM).
#define QNAS_GEMM_KERNELS_INSTANTIATE
#include "qnas/nn/gemm_kernel.hpp"
