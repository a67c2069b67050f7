// Fused learnable-mapping update: gradient tile + Adam + per-column argmax in one pass.
//
// The weight gradient of LearnableMapping is G = S^T g with S = 2x - 1 ([B, I]) and g = grad_out ([B, M]).
// At the MNIST shape G has 28 M entries; writing it, reading it back in Adam and reading the weights
// again for the argmax costs far more than computing it. Here each thread takes a tile of columns, keeps
// that tile of g in cache, and walks the rows: it computes G[i, tile] in registers, updates the Adam state
// and the weight in place, and tracks each column's argmax, so the mapping's state is read and written once.
//
// Plain C ABI (no torch headers) so the library builds in about a second on first use; called via ctypes.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr int64_t TILE = 64;  // columns per tile: 4 AVX-512 vectors

struct AdamArgs {
    float lr, beta1, beta2, eps, weight_decay;
    int decoupled, maximize;
    float step_size, bc2_sqrt;
};

template <int64_t W>
inline void process_tile(const float* st, const float* gt, int64_t I, int64_t B, int64_t M, int64_t c0,
                         int64_t width, float* w, float* m, float* v, int64_t* argmax, const AdamArgs& a) {
    float best[TILE];
    int64_t best_i[TILE];
    for (int64_t t = 0; t < TILE; ++t) {
        best[t] = -std::numeric_limits<float>::infinity();
        best_i[t] = 0;
    }
    const int64_t n = W > 0 ? W : width;
    const float one_m_b1 = 1.0f - a.beta1, one_m_b2 = 1.0f - a.beta2;
    const float decay = a.decoupled ? 1.0f - a.lr * a.weight_decay : 1.0f;
    for (int64_t i = 0; i < I; ++i) {
        float acc[TILE];
        for (int64_t t = 0; t < n; ++t) acc[t] = 0.0f;
        const float* s = st + i * B;
        for (int64_t b = 0; b < B; ++b) {
            const float sb = s[b];
            const float* gb = gt + b * TILE;
            for (int64_t t = 0; t < n; ++t) acc[t] += sb * gb[t];
        }
        float* wr = w + i * M + c0;
        float* mr = m + i * M + c0;
        float* vr = v + i * M + c0;
        for (int64_t t = 0; t < n; ++t) {
            float grad = a.maximize ? -acc[t] : acc[t];
            float p = wr[t];
            if (a.weight_decay != 0.0f) {
                if (a.decoupled) p *= decay;
                else grad += a.weight_decay * p;
            }
            const float mt = mr[t] + one_m_b1 * (grad - mr[t]);
            const float vt = a.beta2 * vr[t] + one_m_b2 * grad * grad;
            const float denom = std::sqrt(vt) / a.bc2_sqrt + a.eps;
            p -= a.step_size * mt / denom;
            mr[t] = mt;
            vr[t] = vt;
            wr[t] = p;
            // first index of the maximum, NaN counting as the maximum (what torch.argmax does)
            if (p > best[t] || (std::isnan(p) && !std::isnan(best[t]))) {
                best[t] = p;
                best_i[t] = i;
            }
        }
    }
    for (int64_t t = 0; t < n; ++t) argmax[c0 + t] = best_i[t];
}

}  // namespace

extern "C" int dwn_mapping_adam_argmax(const float* st, const float* g, int64_t I, int64_t B, int64_t M,
                                       float* w, float* m, float* v, int64_t* argmax, float lr, float beta1,
                                       float beta2, float eps, float weight_decay, int decoupled, int maximize,
                                       double bias_correction1, double bias_correction2, int threads) {
    AdamArgs a{lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
               static_cast<float>(lr / bias_correction1), static_cast<float>(std::sqrt(bias_correction2))};
    const int64_t tiles = (M + TILE - 1) / TILE;
#ifdef _OPENMP
    if (threads < 1) threads = 1;
#pragma omp parallel num_threads(threads)
#endif
    {
        std::vector<float> gt(static_cast<size_t>(B * TILE));
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t tile = 0; tile < tiles; ++tile) {
            const int64_t c0 = tile * TILE;
            const int64_t width = M - c0 < TILE ? M - c0 : TILE;
            // pack this tile of g densely so it stays in L1/L2 while the rows stream past
            for (int64_t b = 0; b < B; ++b) {
                std::memcpy(gt.data() + b * TILE, g + b * M + c0, sizeof(float) * width);
                for (int64_t t = width; t < TILE; ++t) gt[b * TILE + t] = 0.0f;
            }
            if (width == TILE)
                process_tile<TILE>(st, gt.data(), I, B, M, c0, width, w, m, v, argmax, a);
            else
                process_tile<0>(st, gt.data(), I, B, M, c0, width, w, m, v, argmax, a);
        }
    }
    return 0;
}
