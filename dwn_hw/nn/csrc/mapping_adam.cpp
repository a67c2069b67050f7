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
#include <algorithm>
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
    float coupled_decay;  // Adam's L2 term (0 for AdamW)
    float decay;          // AdamW's weight shrink (1 for Adam)
};

// GCC/Clang vector extension: 16 floats, lowered to whatever the target has (one AVX-512 register).
typedef float vf16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t vi16 __attribute__((vector_size(64), aligned(4)));

inline vf16 load(const float* p) { vf16 v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, vf16 v) { std::memcpy(p, &v, sizeof v); }

// Adam and the argmax on a full 64-column tile of row i, given its gradient in four vectors.
inline void apply_tile(const vf16* acc, float* wr, float* mr, float* vr, float* best, int32_t* best_i, int32_t i,
                       const AdamArgs& a) {
    const float one_m_b1 = 1.0f - a.beta1, one_m_b2 = 1.0f - a.beta2;
    for (int q = 0; q < 4; ++q) {
        const int o = 16 * q;
        vf16 grad = a.maximize ? -acc[q] : acc[q];
        vf16 p = load(wr + o) * a.decay;
        grad += a.coupled_decay * p;
        const vf16 m0 = load(mr + o);
        const vf16 mt = m0 + one_m_b1 * (grad - m0);
        const vf16 vt = a.beta2 * load(vr + o) + one_m_b2 * grad * grad;
        vf16 root;
        for (int k = 0; k < 16; ++k) root[k] = std::sqrt(vt[k]);
        const vf16 denom = root / a.bc2_sqrt + a.eps;
        p -= a.step_size * mt / denom;
        store(mr + o, mt);
        store(vr + o, vt);
        store(wr + o, p);
        // first index of the maximum, NaN counting as the maximum (what torch.argmax does)
        const vf16 bst = load(best + o);
        const vi16 take = (p > bst) | ((p != p) & (bst == bst));
        vi16 bi;
        std::memcpy(&bi, best_i + o, sizeof bi);
        const vi16 pi = (vi16){} + i;
        bi = take ? pi : bi;
        const vf16 nb = take ? p : bst;
        store(best + o, nb);
        std::memcpy(best_i + o, &bi, sizeof bi);
    }
}

// Full 64-column tiles of rows i .. i+R-1: G = s · g_tile in 4R register accumulators (each g load feeds R
// FMAs), then Adam and the argmax row by row (rows in order, so the argmax keeps the first maximum).
template <int R>
inline void update_rows(const float* st, const float* gt, int64_t B, int64_t M, float* w, float* m, float* v,
                        float* best, int32_t* best_i, int64_t i, const AdamArgs& a) {
    vf16 acc[R][4] = {};
    for (int64_t b = 0; b < B; ++b) {
        const float* gb = gt + b * TILE;
        const vf16 g0 = load(gb), g1 = load(gb + 16), g2 = load(gb + 32), g3 = load(gb + 48);
        for (int r = 0; r < R; ++r) {
            const float sb = st[(i + r) * B + b];
            acc[r][0] += sb * g0;
            acc[r][1] += sb * g1;
            acc[r][2] += sb * g2;
            acc[r][3] += sb * g3;
        }
    }
    for (int r = 0; r < R; ++r) {
        const int64_t row = (i + r) * M;
        apply_tile(acc[r], w + row, m + row, v + row, best, best_i, static_cast<int32_t>(i + r), a);
    }
}

// The last, narrower tile of a panel: plain scalar code.
inline void update_tail(const float* s, const float* gt, int64_t B, int64_t width, float* wr, float* mr,
                        float* vr, float* best, int32_t* best_i, int32_t i, const AdamArgs& a) {
    for (int64_t t = 0; t < width; ++t) {
        float acc = 0.0f;
        for (int64_t b = 0; b < B; ++b) acc += s[b] * gt[b * TILE + t];
        float grad = a.maximize ? -acc : acc;
        float p = wr[t] * a.decay;
        grad += a.coupled_decay * p;
        const float mt = mr[t] + (1.0f - a.beta1) * (grad - mr[t]);
        const float vt = a.beta2 * vr[t] + (1.0f - a.beta2) * grad * grad;
        p -= a.step_size * mt / (std::sqrt(vt) / a.bc2_sqrt + a.eps);
        mr[t] = mt;
        vr[t] = vt;
        wr[t] = p;
        if (p > best[t] || (p != p && best[t] == best[t])) {
            best[t] = p;
            best_i[t] = i;
        }
    }
}

// One panel of columns [c0, c0 + width): the panel of g (packed per 64-column tile) stays in L2 while the
// rows stream past; each row touches `width` contiguous floats of w, m and v (few TLB misses per row).
void process_panel(const float* st, const float* g, int64_t I, int64_t B, int64_t M, int64_t c0, int64_t width,
                   float* w, float* m, float* v, int64_t* argmax, const AdamArgs& a, std::vector<float>& gp,
                   std::vector<float>& best, std::vector<int32_t>& best_i) {
    const int64_t tiles = (width + TILE - 1) / TILE;
    gp.assign(static_cast<size_t>(tiles * B * TILE), 0.0f);
    for (int64_t k = 0; k < tiles; ++k) {
        const int64_t tw = std::min(TILE, width - k * TILE);
        for (int64_t b = 0; b < B; ++b)
            std::memcpy(gp.data() + (k * B + b) * TILE, g + b * M + c0 + k * TILE, sizeof(float) * tw);
    }
    best.assign(static_cast<size_t>(tiles * TILE), -std::numeric_limits<float>::infinity());
    best_i.assign(static_cast<size_t>(tiles * TILE), 0);
    const int64_t full = width / TILE;
    constexpr int R = 4;
    for (int64_t i0 = 0; i0 < I; i0 += R) {
        const bool block = i0 + R <= I;
        for (int64_t k = 0; k < full; ++k) {
            const int64_t off = k * TILE;
            const float* gt = gp.data() + k * B * TILE;
            if (block)
                update_rows<R>(st, gt, B, M, w + c0 + off, m + c0 + off, v + c0 + off, best.data() + off,
                               best_i.data() + off, i0, a);
            else
                for (int64_t i = i0; i < I; ++i)
                    update_rows<1>(st, gt, B, M, w + c0 + off, m + c0 + off, v + c0 + off, best.data() + off,
                                   best_i.data() + off, i, a);
        }
        if (full < tiles) {
            const int64_t off = full * TILE;
            for (int64_t i = i0; i < std::min(i0 + R, I); ++i) {
                const int64_t row = i * M + c0 + off;
                update_tail(st + i * B, gp.data() + full * B * TILE, B, width - off, w + row, m + row, v + row,
                            best.data() + off, best_i.data() + off, static_cast<int32_t>(i), a);
            }
        }
    }
    for (int64_t t = 0; t < width; ++t) argmax[c0 + t] = best_i[t];
}

}  // namespace

extern "C" int dwn_mapping_adam_argmax(const float* st, const float* g, int64_t I, int64_t B, int64_t M,
                                       float* w, float* m, float* v, int64_t* argmax, float lr, float beta1,
                                       float beta2, float eps, float weight_decay, int decoupled, int maximize,
                                       double bias_correction1, double bias_correction2, int threads) {
    AdamArgs a{lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
               static_cast<float>(lr / bias_correction1), static_cast<float>(std::sqrt(bias_correction2)),
               decoupled ? 0.0f : weight_decay, decoupled ? 1.0f - lr * weight_decay : 1.0f};
    // panel width: keep the packed g panel near 128 KB (in L2), at least one tile
    int64_t panel = std::max<int64_t>(TILE, (32768 / std::max<int64_t>(B, 1)) / TILE * TILE);
    const int64_t panels = (M + panel - 1) / panel;
#ifdef _OPENMP
    if (threads < 1) threads = 1;
#pragma omp parallel num_threads(threads)
#endif
    {
        std::vector<float> gp, best;
        std::vector<int32_t> best_i;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t k = 0; k < panels; ++k) {
            const int64_t c0 = k * panel;
            process_panel(st, g, I, B, M, c0, std::min(panel, M - c0), w, m, v, argmax, a, gp, best, best_i);
        }
    }
    return 0;
}
