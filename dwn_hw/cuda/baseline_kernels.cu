// Benchmark baseline: torch-dwn's EFD algorithm, written here on raw pointers so that
// bench/gpu_check.py can time it on the same GPU as our kernels. Not used for training.
//
// The algorithm as torch-dwn's CUDA extension runs it: a 32x32 thread block over
// (sample, LUT); the backward pass recomputes the address, adds the output gradient to
// the LUT gradient with a global atomic, and for every slot l sums over all 2^n table
// entries with a powf per term (O(n * 2^n) per sample and LUT) before one global atomic
// into the input gradient. (torch-dwn also synchronises the device after each launch;
// that host-side cost is left out here, which only favours the baseline.)
#include <cuda_runtime.h>
#include <cstdint>

#include "efd_kernels.h"

namespace dwn_cuda {
namespace {

int capped_blocks(int64_t work, int threads) {
  int64_t blocks = (work + threads - 1) / threads;
  if (blocks > 65535) blocks = 65535;
  if (blocks < 1) blocks = 1;
  return static_cast<int>(blocks);
}

__global__ void baseline_forward_kernel(const float* __restrict__ x,
                                        const int32_t* __restrict__ mapping,
                                        const float* __restrict__ luts, float* __restrict__ out,
                                        int64_t batch, int64_t input_size, int64_t num_luts,
                                        int n) {
  for (int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; b < batch;
       b += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    for (int64_t j = blockIdx.y * static_cast<int64_t>(blockDim.y) + threadIdx.y; j < num_luts;
         j += static_cast<int64_t>(blockDim.y) * gridDim.y) {
      uint32_t a = 0;
      for (int l = 0; l < n; ++l)
        a |= static_cast<uint32_t>(x[b * input_size + mapping[j * n + l]] > 0.0f) << l;
      out[b * num_luts + j] = luts[(j << n) + a];
    }
  }
}

__global__ void baseline_backward_kernel(const float* __restrict__ x,
                                         const int32_t* __restrict__ mapping,
                                         const float* __restrict__ luts, float alpha, float beta,
                                         const float* __restrict__ grad_out,
                                         float* __restrict__ grad_x, float* __restrict__ grad_luts,
                                         int64_t batch, int64_t input_size, int64_t num_luts,
                                         int n) {
  const uint32_t entries = 1u << n;
  for (int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; b < batch;
       b += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    for (int64_t j = blockIdx.y * static_cast<int64_t>(blockDim.y) + threadIdx.y; j < num_luts;
         j += static_cast<int64_t>(blockDim.y) * gridDim.y) {
      uint32_t a = 0;
      for (int l = 0; l < n; ++l)
        a |= static_cast<uint32_t>(x[b * input_size + mapping[j * n + l]] > 0.0f) << l;
      const float g = grad_out[b * num_luts + j];
      atomicAdd(&grad_luts[(j << n) + a], g);
      for (int l = 0; l < n; ++l) {
        const uint32_t a_off = a & ~(1u << l);
        float w = 0.0f;
        for (uint32_t a2 = 0; a2 < entries; ++a2) {
          const int dist = __popc(a_off ^ (a2 & ~(1u << l)));
          const float fd = luts[(j << n) + a2] * alpha * __powf(beta, static_cast<float>(dist));
          w += ((a2 >> l) & 1u) ? fd : -fd;
        }
        atomicAdd(&grad_x[b * input_size + mapping[j * n + l]], w * g);
      }
    }
  }
}

}  // namespace

const char* baseline_forward(const float* x, const int32_t* mapping, const float* luts,
                             float* out, int64_t batch, int64_t input_size, int64_t num_luts,
                             int n, void* stream) {
  if (n < 1 || n > kMaxN) return "baseline_forward: n out of range";
  if (batch * num_luts == 0) return nullptr;
  dim3 block(32, 32);
  dim3 grid(capped_blocks(batch, 32), capped_blocks(num_luts, 32));
  baseline_forward_kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(
      x, mapping, luts, out, batch, input_size, num_luts, n);
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

const char* baseline_backward(const float* x, const int32_t* mapping, const float* luts,
                              float alpha, float beta, const float* grad_out, float* grad_x,
                              float* grad_luts, int64_t batch, int64_t input_size,
                              int64_t num_luts, int n, void* stream) {
  if (n < 1 || n > kMaxN) return "baseline_backward: n out of range";
  if (batch * num_luts == 0) return nullptr;
  dim3 block(32, 32);
  dim3 grid(capped_blocks(batch, 32), capped_blocks(num_luts, 32));
  baseline_backward_kernel<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(
      x, mapping, luts, alpha, beta, grad_out, grad_x, grad_luts, batch, input_size, num_luts, n);
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace dwn_cuda
