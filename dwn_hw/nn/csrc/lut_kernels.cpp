// LUT-layer forward and EFD backward on the CPU (the loops behind dwn_hw.nn.cpu when the library builds).
//
// Forward: addr[b, j] = Σ_l (x[b, mapping[j, l]] > 0) << l, out[b, j] = luts[j, addr[b, j]].
// Backward: grad_luts by scatter-add; the EFD input gradient from a per-call coefficient table
// C[j, a, l] = α Σ_a' L[j, a'] β^popcount((a ⊕ a') & ~(1<<l)) (±1 by bit l of a'), built per LUT with one
// butterfly per bit (O(n²·2ⁿ) per LUT), then gathered per sample. Work is shared out by parallel.h.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace {

// fn(begin, end) over [0, count) in chunks of `grain`, shared out by dwn::run_chunks
template <typename F>
void parallel(int64_t count, int threads, int64_t grain, F fn) {
    const int64_t chunks = (count + grain - 1) / grain;
    dwn::run_chunks(chunks, threads, [=](int64_t c, int) { fn(c * grain, std::min(count, (c + 1) * grain)); });
}

// C[a, l] of one LUT (row-major [2ⁿ, n]) from its table `lut` (2ⁿ floats); `tmp` holds 2ⁿ floats.
void lut_coefficients(const float* lut, int n, float alpha, float beta, float* coef, float* tmp) {
    const int64_t size = int64_t{1} << n;
    for (int l = 0; l < n; ++l) {
        const int64_t bit = int64_t{1} << l;
        // difference table over the addresses without bit l, indexed by the full address with bit l clear
        for (int64_t a = 0; a < size; ++a)
            if (!(a & bit)) tmp[a] = lut[a | bit] - lut[a];
        // smooth by β^hamming over every other bit: one butterfly per bit
        for (int k = 0; k < n; ++k) {
            if (k == l) continue;
            const int64_t kb = int64_t{1} << k;
            for (int64_t a = 0; a < size; ++a) {
                if ((a & bit) || (a & kb)) continue;
                const float y0 = tmp[a], y1 = tmp[a | kb];
                tmp[a] = y0 + beta * y1;
                tmp[a | kb] = beta * y0 + y1;
            }
        }
        for (int64_t a = 0; a < size; ++a) coef[a * n + l] = alpha * tmp[a & ~bit];
    }
}

}  // namespace

extern "C" int dwn_lut_forward(const float* x, const int32_t* mapping, const float* luts, int64_t B, int64_t I,
                               int64_t N, int n, float* out, int64_t* addr, int threads) {
    const int64_t size = int64_t{1} << n;
    parallel(B, threads, 16, [=](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const float* xb = x + b * I;
            for (int64_t j = 0; j < N; ++j) {
                const int32_t* mj = mapping + j * n;
                int64_t a = 0;
                for (int l = 0; l < n; ++l) a |= static_cast<int64_t>(xb[mj[l]] > 0.0f) << l;
                addr[b * N + j] = a;
                out[b * N + j] = luts[j * size + a];
            }
        }
    });
    return 0;
}

// grad_x may be null (input gradient not needed); grad_x and grad_luts must be zeroed by the caller.
extern "C" int dwn_lut_backward(const float* grad_out, const int64_t* addr, const int32_t* mapping,
                                const float* luts, float alpha, float beta, int64_t B, int64_t I, int64_t N, int n,
                                float* grad_x, float* grad_luts, int threads) {
    const int64_t size = int64_t{1} << n;
    // LUT gradients, split over LUTs so no two threads write the same row
    parallel(N, threads, 256, [=](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j)
            for (int64_t b = 0; b < B; ++b) grad_luts[j * size + addr[b * N + j]] += grad_out[b * N + j];
    });
    if (grad_x == nullptr) return 0;
    std::vector<float> coef(static_cast<size_t>(N * size * n));
    float* cp = coef.data();
    parallel(N, threads, 256, [=](int64_t j0, int64_t j1) {
        std::vector<float> tmp(static_cast<size_t>(size));
        for (int64_t j = j0; j < j1; ++j) lut_coefficients(luts + j * size, n, alpha, beta, cp + j * size * n,
                                                           tmp.data());
    });
    // input gradients, split over samples (each sample owns its row of grad_x)
    parallel(B, threads, 16, [=](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            float* gx = grad_x + b * I;
            for (int64_t j = 0; j < N; ++j) {
                const float g = grad_out[b * N + j];
                const float* c = cp + (j * size + addr[b * N + j]) * n;
                const int32_t* mj = mapping + j * n;
                for (int l = 0; l < n; ++l) gx[mj[l]] += g * c[l];
            }
        }
    });
    return 0;
}
