// EFD (extended finite difference) kernels for LUT layers: forward, per-step
// coefficients, input gradient and LUT gradient. Plain CUDA C++ on raw pointers; the
// torch binding lives in binding.cpp. See efd_kernels.h for layouts.
//
// Backward cost per sample and LUT is O(n): the input-gradient coefficient
//   C[j, l, r] = alpha * sum_a' L[j, a'] * beta^popcount((a xor a') & ~(1 << l)) * (+1 | -1)
// depends only on the table, the slot l and r = the address with bit l removed, so it is
// computed once per step (O(N * n * (n-1) * 2^(n-1)) with a butterfly) and each sample
// then gathers n coefficients.
#include <cuda_runtime.h>
#include <cstdint>

#include "efd_kernels.h"

namespace dwn_cuda {
namespace {

constexpr int kThreads = 256;
// LUTs per block of the LUT-gradient histogram kernel (one warp lane each).
constexpr int kLutTile = 32;
// Batch rows per block of that kernel (blockDim.y).
constexpr int kRows = 8;
// Batches up to this size run one batch slice per LUT tile in the gather backward (at most 8
// rows per warp).
constexpr int64_t kSmallBatch = 64;
// Largest n whose per-block histogram (kLutTile * 2^n floats) fits 32 KiB of shared memory.
constexpr int kMaxSharedHistN = 8;

int grid_for(int64_t work, int threads) {
  int64_t blocks = (work + threads - 1) / threads;
  // Grid-stride loops cover the rest; 2^20 blocks saturate any current GPU.
  if (blocks > (1 << 20)) blocks = 1 << 20;
  if (blocks < 1) blocks = 1;
  return static_cast<int>(blocks);
}

const char* launch_status() {
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

// Threads of a warp take consecutive LUTs of one sample: out/addr writes coalesce and
// the gathers of x stay inside one row (L1/L2 resident).
__global__ void forward_kernel(const float* __restrict__ x, const int32_t* __restrict__ mapping,
                               const float* __restrict__ luts, float* __restrict__ out,
                               int32_t* __restrict__ addr, int64_t batch, int64_t input_size,
                               int64_t num_luts, int n) {
  const int64_t total = batch * num_luts;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = idx / num_luts;
    const int64_t j = idx - b * num_luts;
    const float* row = x + b * input_size;
    const int32_t* m = mapping + j * n;
    uint32_t a = 0;
    for (int l = 0; l < n; ++l) a |= static_cast<uint32_t>(row[m[l]] > 0.0f) << l;
    out[idx] = luts[(j << n) + a];
    addr[idx] = static_cast<int32_t>(a);
  }
}

// Insert a zero bit at position `pos` of `r` (inverse of removing that bit).
__device__ __forceinline__ uint32_t insert_zero_bit(uint32_t r, int pos) {
  const uint32_t low = (1u << pos) - 1u;
  return ((r & ~low) << 1) | (r & low);
}

// One block per (LUT j, slot l). D[r] = L[a(r, bit l = 1)] - L[a(r, bit l = 0)] is
// multiplied by the Kronecker power of [[1, beta], [beta, 1]] over the n-1 other bits,
// whose entry (r, r') is beta^popcount(r xor r'): exactly the EFD sum, in
// (n-1) * 2^(n-1) operations instead of 4^(n-1). (alpha is linear: folded into D.)
// The vector lives in shared memory when it fits (use_smem), else in `coef`
// itself (global memory is coherent inside a block across __syncthreads).
__global__ void coef_kernel(const float* __restrict__ luts, float* __restrict__ coef, int n,
                            float alpha, float beta, int use_smem) {
  extern __shared__ float smem[];
  const int64_t j = blockIdx.x;
  const int l = blockIdx.y;
  const uint32_t half = 1u << (n - 1);
  const float* table = luts + (j << n);
  float* dst = coef + (j * n + l) * static_cast<int64_t>(half);
  float* v = use_smem ? smem : dst;

  for (uint32_t r = threadIdx.x; r < half; r += blockDim.x) {
    const uint32_t a0 = insert_zero_bit(r, l);
    v[r] = alpha * (table[a0 | (1u << l)] - table[a0]);
  }
  for (int k = 0; k < n - 1; ++k) {
    __syncthreads();
    for (uint32_t p = threadIdx.x; p < half / 2; p += blockDim.x) {
      const uint32_t r0 = insert_zero_bit(p, k);
      const uint32_t r1 = r0 | (1u << k);
      const float u = v[r0];
      const float w = v[r1];
      v[r0] = u + beta * w;
      v[r1] = beta * u + w;
    }
  }
  __syncthreads();
  if (use_smem)
    for (uint32_t r = threadIdx.x; r < half; r += blockDim.x) dst[r] = v[r];
}

// One thread per (sample, LUT): n coefficient gathers, n atomic adds (fire-and-forget
// reductions; an input is read by few slots, so they rarely collide).
__global__ void input_grad_kernel(const float* __restrict__ grad_out,
                                  const int32_t* __restrict__ addr,
                                  const int32_t* __restrict__ mapping,
                                  const float* __restrict__ coef, float* __restrict__ grad_x,
                                  int64_t batch, int64_t input_size, int64_t num_luts, int n) {
  const int64_t total = batch * num_luts;
  const int64_t half = int64_t{1} << (n - 1);
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grad_out[idx];
    if (g == 0.0f) continue;
    const int64_t b = idx / num_luts;
    const int64_t j = idx - b * num_luts;
    const uint32_t a = static_cast<uint32_t>(addr[idx]);
    const float* c = coef + j * n * half;
    const int32_t* m = mapping + j * n;
    float* gx = grad_x + b * input_size;
    for (int l = 0; l < n; ++l) {
      const uint32_t r = ((a >> (l + 1)) << l) | (a & ((1u << l) - 1u));
      atomicAdd(gx + m[l], g * c[l * half + r]);
    }
  }
}

// LUT gradient = scatter-add of grad_out into luts[j, addr]. Each block owns kLutTile
// consecutive LUTs (lane = LUT, so global reads coalesce) and a slice of the batch, and
// accumulates a private histogram in shared memory laid out [bin][lane]: the 32 lanes of
// a warp always hit 32 different banks and never the same word, so shared atomics do not
// serialise. One global atomic per non-zero bin and block merges the slices.
__global__ void lut_grad_shared_kernel(const float* __restrict__ grad_out,
                                       const int32_t* __restrict__ addr,
                                       float* __restrict__ grad_luts, int64_t batch,
                                       int64_t num_luts, int n, int64_t rows_per_block) {
  extern __shared__ float hist[];
  const int bins = 1 << n;
  const int tid = threadIdx.y * kLutTile + threadIdx.x;
  for (int k = tid; k < bins * kLutTile; k += kLutTile * kRows) hist[k] = 0.0f;
  __syncthreads();

  const int64_t j = static_cast<int64_t>(blockIdx.x) * kLutTile + threadIdx.x;
  const int64_t b_begin = blockIdx.y * rows_per_block;
  int64_t b_end = b_begin + rows_per_block;
  if (b_end > batch) b_end = batch;
  if (j < num_luts) {
    for (int64_t b = b_begin + threadIdx.y; b < b_end; b += kRows) {
      const int64_t idx = b * num_luts + j;
      atomicAdd(&hist[addr[idx] * kLutTile + threadIdx.x], grad_out[idx]);
    }
  }
  __syncthreads();

  for (int k = tid; k < bins * kLutTile; k += kLutTile * kRows) {
    const int bin = k / kLutTile;
    const int64_t jj = static_cast<int64_t>(blockIdx.x) * kLutTile + (k % kLutTile);
    const float val = hist[k];
    if (jj < num_luts && val != 0.0f) atomicAdd(&grad_luts[(jj << n) + bin], val);
  }
}

// Large tables (n > kMaxSharedHistN): plain global atomics.
__global__ void lut_grad_global_kernel(const float* __restrict__ grad_out,
                                       const int32_t* __restrict__ addr,
                                       float* __restrict__ grad_luts, int64_t batch,
                                       int64_t num_luts, int n) {
  const int64_t total = batch * num_luts;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grad_out[idx];
    if (g == 0.0f) continue;
    const int64_t j = idx % num_luts;
    atomicAdd(&grad_luts[(j << n) + addr[idx]], g);
  }
}

__device__ __forceinline__ uint32_t remove_bit(uint32_t a, int pos) {
  return ((a >> (pos + 1)) << pos) | (a & ((1u << pos) - 1u));
}

// The whole backward pass of a tile of kLutTile LUTs over a slice of the batch, in one block
// (n <= kFusedMaxN). Shared memory holds, for the tile:
//   hist  [2^n][lane]            the LUT-gradient histogram (as in lut_grad_shared_kernel)
//   coef  [n][2^(n-1)][lane]     the EFD coefficients, built in place by the butterfly of
//                                coef_kernel; lane-fastest so that the per-sample gathers
//                                of a warp (one LUT per lane) hit 32 different banks.
// Each sample then costs one shared atomic, n shared reads and n global atomic adds.
// store_luts: this block sees the whole batch, so it writes grad_luts directly (no zero fill).
// identity: mapping[j, l] == j*n + l and input_size == N*n (a learnable mapping's slots), so
// every input gradient has exactly one term: plain stores, no atomics, no zero fill.
__global__ void __launch_bounds__(kLutTile * kRows)
fused_backward_kernel(const float* __restrict__ grad_out, const int32_t* __restrict__ addr,
                      const int32_t* __restrict__ mapping, const float* __restrict__ luts,
                      float alpha, float beta, float* __restrict__ grad_x,
                      float* __restrict__ grad_luts, int64_t batch, int64_t input_size,
                      int64_t num_luts, int n, int64_t rows_per_block, int store_luts,
                      int identity) {
  extern __shared__ float smem[];
  const int bins = 1 << n;
  const int half = bins >> 1;
  float* hist = smem;
  float* coef = smem + bins * kLutTile;
  const int lane = threadIdx.x;
  const int tid = threadIdx.y * kLutTile + lane;
  constexpr int kBlock = kLutTile * kRows;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kLutTile;
  const int64_t j = j0 + lane;
  const bool valid = j < num_luts;

  for (int k = tid; k < bins * kLutTile; k += kBlock) hist[k] = 0.0f;
  if (grad_x != nullptr) {
    for (int k = tid; k < n * half * kLutTile; k += kBlock) {
      const int ln = k % kLutTile;
      const int rest = k / kLutTile;
      const int l = rest / half;
      const uint32_t a0 = insert_zero_bit(static_cast<uint32_t>(rest % half), l);
      float d = 0.0f;
      if (j0 + ln < num_luts) {
        const float* table = luts + ((j0 + ln) << n);
        d = alpha * (table[a0 | (1u << l)] - table[a0]);
      }
      coef[k] = d;
    }
    const int quarter = half >> 1;
    for (int kb = 0; kb < n - 1; ++kb) {
      __syncthreads();
      for (int p = tid; p < n * quarter * kLutTile; p += kBlock) {
        const int ln = p % kLutTile;
        const int rest = p / kLutTile;
        const int l = rest / quarter;
        const uint32_t r0 = insert_zero_bit(static_cast<uint32_t>(rest % quarter), kb);
        const uint32_t r1 = r0 | (1u << kb);
        float* vec = coef + l * half * kLutTile + ln;
        const float u = vec[r0 * kLutTile];
        const float w = vec[r1 * kLutTile];
        vec[r0 * kLutTile] = u + beta * w;
        vec[r1 * kLutTile] = beta * u + w;
      }
    }
  }
  __syncthreads();

  int32_t m[kFusedMaxN];
#pragma unroll
  for (int l = 0; l < kFusedMaxN; ++l)
    m[l] = (valid && grad_x != nullptr && l < n) ? mapping[j * n + l] : 0;

  const int64_t b_begin = blockIdx.y * rows_per_block;
  const int64_t b_end = b_begin + rows_per_block < batch ? b_begin + rows_per_block : batch;
  if (valid) {
    for (int64_t b = b_begin + threadIdx.y; b < b_end; b += kRows) {
      const int64_t idx = b * num_luts + j;
      const float g = grad_out[idx];
      const uint32_t a = static_cast<uint32_t>(addr[idx]);
      atomicAdd(&hist[a * kLutTile + lane], g);
      if (grad_x != nullptr && identity) {
        float* gx = grad_x + b * input_size + j * n;
#pragma unroll
        for (int l = 0; l < kFusedMaxN; ++l) {
          if (l < n) gx[l] = g * coef[(l * half + remove_bit(a, l)) * kLutTile + lane];
        }
      } else if (grad_x != nullptr && g != 0.0f) {
        float* gx = grad_x + b * input_size;
#pragma unroll
        for (int l = 0; l < kFusedMaxN; ++l) {
          if (l < n) atomicAdd(gx + m[l], g * coef[(l * half + remove_bit(a, l)) * kLutTile + lane]);
        }
      }
    }
  }
  __syncthreads();

  for (int k = tid; k < bins * kLutTile; k += kBlock) {
    const int64_t jj = j0 + (k % kLutTile);
    if (jj >= num_luts) continue;
    const float val = hist[k];
    float* dst = grad_luts + (jj << n) + k / kLutTile;
    if (store_luts)
      *dst = val;
    else if (val != 0.0f)
      atomicAdd(dst, val);
  }
}

// Gather variant of the fused kernel (n <= kFusedMaxN). Same tiles, histogram and coefficients,
// but:
// - the coefficients come from a warp butterfly (lane = address r, one (slot, LUT) pair per
//   step, v += beta * shfl_xor(v, 1 << k): the same sums in the same order as coef_kernel),
//   so a block spends a few shuffles, not a chain of shared-memory rounds, before its rows;
// - every term g * C[j, l, r] goes to terms[b, j*n + l], staged per warp in shared memory so
//   that a warp stores its row's 32*n consecutive floats with coalesced writes. With an
//   identity mapping `terms` is grad_x itself; otherwise gather_input_grad_kernel sums the
//   terms of each input afterwards (no atomics, no zero fill).
__global__ void __launch_bounds__(kLutTile * kRows)
fused_backward_gather_kernel(const float* __restrict__ grad_out,
                             const int32_t* __restrict__ addr, const float* __restrict__ luts,
                             float alpha, float beta, float* __restrict__ terms,
                             float* __restrict__ grad_luts, int64_t batch, int64_t num_luts,
                             int n, int64_t rows_per_block, int store_luts) {
  extern __shared__ float smem[];
  const int bins = 1 << n;
  const int half = bins >> 1;
  float* hist = smem;
  float* coef = smem + bins * kLutTile;
  float* stage = coef + n * half * kLutTile + threadIdx.y * (kLutTile * n);
  const int lane = threadIdx.x;
  const int warp = threadIdx.y;
  const int tid = warp * kLutTile + lane;
  constexpr int kBlock = kLutTile * kRows;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kLutTile;
  const int64_t j = j0 + lane;
  const bool valid = j < num_luts;
  const int tile_luts = num_luts - j0 < kLutTile ? static_cast<int>(num_luts - j0) : kLutTile;

  for (int k = tid; k < bins * kLutTile; k += kBlock) hist[k] = 0.0f;
  if (terms != nullptr) {
    // pair p = l * kLutTile + ln, p = warp + q * kRows: warp-uniform, so the shuffles see the whole
    // warp. All table reads of a warp are issued before the first shuffle (one memory latency per
    // block instead of one per pair: at small batches that latency is the kernel's run time).
    // Chunks of kBatchPairs pairs keep the register count (and so the occupancy) of the row loop.
    constexpr int kPairs = kFusedMaxN * kLutTile / kRows;
    constexpr int kBatchPairs = 8;
#pragma unroll 1
    for (int q0 = 0; q0 < kPairs; q0 += kBatchPairs) {
      if (warp + q0 * kRows >= n * kLutTile) break;
      float v[kBatchPairs];
#pragma unroll
      for (int q = 0; q < kBatchPairs; ++q) {
        const int p = warp + (q0 + q) * kRows;
        const int l = p / kLutTile;
        const int ln = p % kLutTile;
        v[q] = 0.0f;
        if (p < n * kLutTile && lane < half && ln < tile_luts) {
          const uint32_t a0 = insert_zero_bit(static_cast<uint32_t>(lane), l);
          const float* table = luts + ((j0 + ln) << n);
          v[q] = alpha * (table[a0 | (1u << l)] - table[a0]);
        }
      }
#pragma unroll
      for (int q = 0; q < kBatchPairs; ++q) {
        const int p = warp + (q0 + q) * kRows;
        if (p < n * kLutTile) {
          // lanes >= half only ever exchange with lanes >= half (k < n - 1)
          for (int k = 0; k < n - 1; ++k)
            v[q] = v[q] + beta * __shfl_xor_sync(0xffffffffu, v[q], 1 << k);
          if (lane < half) coef[((p / kLutTile) * half + lane) * kLutTile + p % kLutTile] = v[q];
        }
      }
    }
  }
  __syncthreads();

  const int64_t b_begin = blockIdx.y * rows_per_block;
  const int64_t b_end = b_begin + rows_per_block < batch ? b_begin + rows_per_block : batch;
  const int tile_cols = tile_luts * n;
  // b is warp-uniform: every lane runs every iteration (the __syncwarp calls need them all)
  for (int64_t b = b_begin + warp; b < b_end; b += kRows) {
    if (valid) {
      const int64_t idx = b * num_luts + j;
      const float g = grad_out[idx];
      const uint32_t a = static_cast<uint32_t>(addr[idx]);
      atomicAdd(&hist[a * kLutTile + lane], g);
      if (terms != nullptr) {
#pragma unroll
        for (int l = 0; l < kFusedMaxN; ++l) {
          if (l < n) stage[lane * n + l] = g * coef[(l * half + remove_bit(a, l)) * kLutTile + lane];
        }
      }
    }
    if (terms != nullptr) {
      __syncwarp();
      float* dst = terms + b * (num_luts * n) + j0 * n;
      for (int k = lane; k < tile_cols; k += kLutTile) dst[k] = stage[k];
      __syncwarp();
    }
  }
  __syncthreads();

  for (int k = tid; k < bins * kLutTile; k += kBlock) {
    const int64_t jj = j0 + (k % kLutTile);
    if (jj >= num_luts) continue;
    const float val = hist[k];
    float* dst = grad_luts + (jj << n) + k / kLutTile;
    if (store_luts)
      *dst = val;
    else if (val != 0.0f)
      atomicAdd(dst, val);
  }
}

// grad_x[b, i] = sum of terms[b, k] over the slots k = j*n + l that read input i, listed in
// slots[offsets[i] .. offsets[i + 1]) (the inverse of the mapping, built once per mapping by
// the caller). Threads run along i, so the grad_x stores coalesce and a block's reads of
// terms stay inside one or two rows (L1/L2 resident). Inputs no slot reads get 0.
__global__ void gather_input_grad_kernel(const float* __restrict__ terms,
                                         const int32_t* __restrict__ offsets,
                                         const int32_t* __restrict__ slots,
                                         float* __restrict__ grad_x, int64_t batch,
                                         int64_t input_size, int64_t term_cols) {
  const int64_t total = batch * input_size;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = idx / input_size;
    const int64_t i = idx - b * input_size;
    const float* row = terms + b * term_cols;
    const int32_t end = offsets[i + 1];
    float acc = 0.0f;
    for (int32_t k = offsets[i]; k < end; ++k) acc += row[slots[k]];
    grad_x[idx] = acc;
  }
}

// Batch slices for the tile kernels: about four blocks per SM, each slice a multiple of kRows.
int64_t rows_per_slice(int64_t batch, int64_t tiles) {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      sms < 1) {
    cudaGetLastError();  // not fatal: assume a mid-size GPU
    sms = 80;
  }
  int64_t slices = (4 * static_cast<int64_t>(sms) + tiles - 1) / tiles;
  const int64_t max_slices = (batch + kRows - 1) / kRows;
  if (slices > max_slices) slices = max_slices;
  if (slices > 65535) slices = 65535;
  if (slices < 1) slices = 1;
  int64_t rows = (batch + slices - 1) / slices;
  rows = (rows + kRows - 1) / kRows * kRows;
  // grid.y is at most 65535
  while ((batch + rows - 1) / rows > 65535) rows *= 2;
  return rows;
}

}  // namespace

const char* efd_forward(const float* x, const int32_t* mapping, const float* luts, float* out,
                        int32_t* addr, int64_t batch, int64_t input_size, int64_t num_luts,
                        int n, void* stream) {
  if (n < 1 || n > kMaxN) return "efd_forward: n out of range";
  const int64_t total = batch * num_luts;
  if (total == 0) return nullptr;
  forward_kernel<<<grid_for(total, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, mapping, luts, out, addr, batch, input_size, num_luts, n);
  return launch_status();
}

const char* efd_coefficients(const float* luts, float* coef, int64_t num_luts, int n,
                             float alpha, float beta, void* stream) {
  if (n < 1 || n > kMaxN) return "efd_coefficients: n out of range";
  if (num_luts == 0) return nullptr;
  if (num_luts > 0x7fffffff) return "efd_coefficients: too many LUTs";
  const int half = 1 << (n - 1);
  const int threads = half < kThreads ? (half < 32 ? 32 : half) : kThreads;
  // 2^12 floats = 16 KiB of shared memory per block at most; larger vectors stay global.
  const int use_smem = n - 1 <= 12;
  const size_t smem = use_smem ? sizeof(float) * half : 0;
  dim3 grid(static_cast<unsigned>(num_luts), static_cast<unsigned>(n));
  coef_kernel<<<grid, threads, smem, static_cast<cudaStream_t>(stream)>>>(luts, coef, n, alpha,
                                                                          beta, use_smem);
  return launch_status();
}

const char* efd_backward(const float* grad_out, const int32_t* addr, const int32_t* mapping,
                         const float* luts, float alpha, float beta, float* grad_x,
                         float* grad_luts, float* scratch, int64_t batch, int64_t input_size,
                         int64_t num_luts, int n, int identity_mapping, int algo,
                         float* terms, const int32_t* inv_offsets, const int32_t* inv_slots,
                         void* stream) {
  if (n < 1 || n > kMaxN) return "efd_backward: n out of range";
  if (algo != kBackwardAtomic && algo != kBackwardGather) return "efd_backward: unknown algo";
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const size_t lut_bytes = (sizeof(float) * static_cast<size_t>(num_luts)) << n;
  const size_t x_bytes = sizeof(float) * static_cast<size_t>(batch * input_size);
  if (num_luts == 0) {
    if (grad_x != nullptr && x_bytes > 0 && cudaMemsetAsync(grad_x, 0, x_bytes, s) != cudaSuccess)
      return launch_status();
    return nullptr;
  }
  if (batch == 0) {
    if (cudaMemsetAsync(grad_luts, 0, lut_bytes, s) != cudaSuccess) return launch_status();
    return nullptr;
  }
  // inputs that no LUT reads get no term, others several: start from zero (unless the fused
  // kernel writes every element once)
  const int identity = identity_mapping && n <= kFusedMaxN && input_size == num_luts * n;
  const int64_t tiles = (num_luts + kLutTile - 1) / kLutTile;
  if (tiles > 0x7fffffff) return "efd_backward: too many LUTs";
  if (algo == kBackwardGather && n <= kFusedMaxN) {
    float* dst = nullptr;
    if (grad_x != nullptr) {
      if (identity) {
        dst = grad_x;
      } else {
        if (terms == nullptr || inv_offsets == nullptr || inv_slots == nullptr)
          return "efd_backward: the gather algo needs terms, inv_offsets and inv_slots";
        dst = terms;
      }
    }
    // Small batches: one slice per tile (a few rows per warp), so grad_luts is stored, not
    // zero-filled and merged by atomics: one launch fewer, and no tile builds its coefficients twice.
    const int64_t rows = batch <= kSmallBatch ? batch : rows_per_slice(batch, tiles);
    const int64_t slices = (batch + rows - 1) / rows;
    const int store_luts = slices == 1;
    if (!store_luts && cudaMemsetAsync(grad_luts, 0, lut_bytes, s) != cudaSuccess)
      return launch_status();
    const size_t half = size_t{1} << (n - 1);
    const size_t smem = sizeof(float) * kLutTile *
                        ((size_t{1} << n) + (dst ? n * half + kRows * static_cast<size_t>(n) : 0));
    dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(slices));
    dim3 block(kLutTile, kRows);
    fused_backward_gather_kernel<<<grid, block, smem, s>>>(grad_out, addr, luts, alpha, beta, dst,
                                                           grad_luts, batch, num_luts, n, rows,
                                                           store_luts);
    const char* err = launch_status();
    if (err != nullptr || grad_x == nullptr || identity) return err;
    gather_input_grad_kernel<<<grid_for(batch * input_size, kThreads), kThreads, 0, s>>>(
        terms, inv_offsets, inv_slots, grad_x, batch, input_size, num_luts * n);
    return launch_status();
  }
  if (grad_x != nullptr && !identity && cudaMemsetAsync(grad_x, 0, x_bytes, s) != cudaSuccess)
    return launch_status();

  if (n <= kFusedMaxN) {
    const int64_t rows = rows_per_slice(batch, tiles);
    const int64_t slices = (batch + rows - 1) / rows;
    const int store_luts = slices == 1;
    if (!store_luts && cudaMemsetAsync(grad_luts, 0, lut_bytes, s) != cudaSuccess)
      return launch_status();
    const size_t smem =
        sizeof(float) * kLutTile * ((size_t{1} << n) + (grad_x ? n * (size_t{1} << (n - 1)) : 0));
    dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(slices));
    dim3 block(kLutTile, kRows);
    fused_backward_kernel<<<grid, block, smem, s>>>(grad_out, addr, mapping, luts, alpha, beta,
                                                    grad_x, grad_luts, batch, input_size,
                                                    num_luts, n, rows, store_luts, identity);
    return launch_status();
  }

  // Large tables: LUT histogram, then coefficient table, then the per-sample gathers.
  if (cudaMemsetAsync(grad_luts, 0, lut_bytes, s) != cudaSuccess) return launch_status();
  if (n <= kMaxSharedHistN) {
    const int64_t rows = rows_per_slice(batch, tiles);
    dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>((batch + rows - 1) / rows));
    dim3 block(kLutTile, kRows);
    const size_t smem = sizeof(float) * kLutTile * (size_t{1} << n);
    lut_grad_shared_kernel<<<grid, block, smem, s>>>(grad_out, addr, grad_luts, batch, num_luts,
                                                     n, rows);
  } else {
    lut_grad_global_kernel<<<grid_for(batch * num_luts, kThreads), kThreads, 0, s>>>(
        grad_out, addr, grad_luts, batch, num_luts, n);
  }
  const char* err = launch_status();
  if (err != nullptr || grad_x == nullptr) return err;
  if (scratch == nullptr) return "efd_backward: n > kFusedMaxN needs a coefficient scratch buffer";
  err = efd_coefficients(luts, scratch, num_luts, n, alpha, beta, stream);
  if (err != nullptr) return err;
  input_grad_kernel<<<grid_for(batch * num_luts, kThreads), kThreads, 0, s>>>(
      grad_out, addr, mapping, scratch, grad_x, batch, input_size, num_luts, n);
  return launch_status();
}

}  // namespace dwn_cuda
