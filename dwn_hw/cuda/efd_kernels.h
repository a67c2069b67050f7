// Host-side launchers of the EFD kernels, on raw device pointers.
//
// This header is plain C++ (no CUDA, no torch headers) so that the torch binding
// (binding.cpp) and the kernels (*.cu) compile apart: the kernels build with a bare
// `nvcc -c`, the binding with a host compiler and torch's headers.
//
// Layouts (all row-major, contiguous):
//   x         float [batch, input_size]       thermometer / previous-layer bits, bit = x > 0
//   mapping   int32 [num_luts, n]             slot l of LUT j reads x[:, mapping[j, l]]
//   luts      float [num_luts, 2^n]
//   out       float [batch, num_luts]          luts[j, addr]
//   addr      int32 [batch, num_luts]          sum_l bit(x[b, mapping[j, l]]) << l
//   coef      float [num_luts, n, 2^(n-1)]     EFD input-gradient coefficient per (LUT, slot,
//                                              address with bit l removed), alpha included
// Every launcher enqueues on `stream` (a cudaStream_t, nullptr = legacy default stream)
// and returns nullptr on success or a static error message.
#pragma once
#include <cstdint>

namespace dwn_cuda {

// Largest n the kernels accept (the address is a 32-bit word; tables of 2^20 entries
// per LUT are far past any practical layer).
constexpr int kMaxN = 20;

const char* efd_forward(const float* x, const int32_t* mapping, const float* luts,
                        float* out, int32_t* addr, int64_t batch, int64_t input_size,
                        int64_t num_luts, int n, void* stream);

const char* efd_coefficients(const float* luts, float* coef, int64_t num_luts, int n,
                             float alpha, float beta, void* stream);

// Largest n served by the single fused backward kernel (coefficients, LUT histogram and input
// gradient of a tile of LUTs in one block's shared memory, 32 KiB at n = 6). Larger n run the
// coefficient, LUT-gradient and input-gradient kernels one after the other.
constexpr int kFusedMaxN = 6;

// Whole backward pass. grad_x may be null (no input gradient wanted). grad_x and grad_luts
// need no initialisation. scratch: null when n <= kFusedMaxN or grad_x is null, else room for
// num_luts * n * 2^(n-1) floats (the coefficient table). identity_mapping: the caller knows
// that mapping[j, l] == j*n + l (a learnable mapping's slot order); with input_size == N*n
// the input gradient is then written with plain stores.
// algo (n <= kFusedMaxN only; larger n always take the three-kernel path):
//   kBackwardAtomic  one fused kernel, input gradient by global atomics into a zero-filled
//                    grad_x (terms, inv_offsets, inv_slots unused);
//   kBackwardGather  the fused kernel writes every term g * C[j, l, r] to terms[b, j*n + l]
//                    (coalesced), then a second kernel sums, for each input i, the terms of
//                    the slots listed in inv_slots[inv_offsets[i] .. inv_offsets[i + 1]): no
//                    atomics, no zero fill. terms: batch * num_luts * n floats; inv_offsets:
//                    int32 [input_size + 1]; inv_slots: int32 [num_luts * n], the flat slot
//                    indices j*n + l grouped by the input they read. With an identity mapping
//                    the terms are grad_x itself and the three pointers may be null.
constexpr int kBackwardAtomic = 1;
constexpr int kBackwardGather = 2;
const char* efd_backward(const float* grad_out, const int32_t* addr, const int32_t* mapping,
                         const float* luts, float alpha, float beta, float* grad_x,
                         float* grad_luts, float* scratch, int64_t batch, int64_t input_size,
                         int64_t num_luts, int n, int identity_mapping, int algo,
                         float* terms, const int32_t* inv_offsets, const int32_t* inv_slots,
                         void* stream);

// torch-dwn's algorithm (O(n * 2^n) per sample and LUT, global atomics for every
// term), kept only as the benchmark baseline. grad_x and grad_luts must be zero-filled.
const char* baseline_forward(const float* x, const int32_t* mapping, const float* luts,
                             float* out, int64_t batch, int64_t input_size,
                             int64_t num_luts, int n, void* stream);
const char* baseline_backward(const float* x, const int32_t* mapping, const float* luts,
                              float alpha, float beta, const float* grad_out,
                              float* grad_x, float* grad_luts, int64_t batch,
                              int64_t input_size, int64_t num_luts, int n, void* stream);

}  // namespace dwn_cuda
