// Fused learnable-mapping update: gradient tile + Adam + per-column argmax in one pass.
//
// The weight gradient of LearnableMapping is G = S^T g with S = 2x - 1 ([B, I]) and g = grad_out ([B, M]).
// At the MNIST shape G has 28 M entries; writing it, reading it back in Adam and reading the weights
// again for the argmax costs far more than computing it. Here, panel by panel of columns, g is packed into
// cache once; workers (parallel.h) take chunks of rows and compute G[i, tile] in registers (for binary x:
// by adding the g rows of the set bits), update the Adam state and the weight in place and track each
// column's argmax; the workers' maxima are merged with ties going to the lower row. The mapping's
// state is read and written once per step.
//
// Plain C ABI (no torch headers) so the library builds in about a second on first use; called via ctypes.
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>


#include "parallel.h"

namespace {

constexpr int64_t TILE = 64;  // columns per tile: 4 AVX-512 vectors

// Floats between packed tiles of g: B rows of TILE plus one cache line, so that row b of every tile does
// not land in the same cache set (a power-of-two stride would alias).
inline int64_t tile_stride(int64_t B) { return B * TILE + 16; }

struct AdamArgs {
    float lr, beta1, beta2, eps, weight_decay;
    int decoupled, maximize;
    float step_size, inv_bc2_sqrt;  // lr / (1 − β1ᵗ), 1 / sqrt(1 − β2ᵗ)
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
        const vf16 denom = root * a.inv_bc2_sqrt + a.eps;   // a multiply, not a second division
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

// Adam and the argmax for one entry, given its gradient (tails narrower than a tile).
inline void apply_scalar(float acc, float* wr, float* mr, float* vr, float* best, int32_t* best_i, int32_t i,
                         const AdamArgs& a) {
    float grad = a.maximize ? -acc : acc;
    float p = *wr * a.decay;
    grad += a.coupled_decay * p;
    const float mt = *mr + (1.0f - a.beta1) * (grad - *mr);
    const float vt = a.beta2 * *vr + (1.0f - a.beta2) * grad * grad;
    p -= a.step_size * mt / (std::sqrt(vt) * a.inv_bc2_sqrt + a.eps);
    *mr = mt;
    *vr = vt;
    *wr = p;
    if (p > *best || (p != p && *best == *best)) {
        *best = p;
        *best_i = i;
    }
}

// The last, narrower tile of a panel: plain scalar code.
inline void update_tail(const float* s, const float* gt, int64_t B, int64_t width, float* wr, float* mr,
                        float* vr, float* best, int32_t* best_i, int32_t i, const AdamArgs& a) {
    for (int64_t t = 0; t < width; ++t) {
        float acc = 0.0f;
        for (int64_t b = 0; b < B; ++b) acc += s[b] * gt[b * TILE + t];
        apply_scalar(acc, wr + t, mr + t, vr + t, best + t, best_i + t, i, a);
    }
}

// Binary inputs, rows [r0, r1) of the panel [c0, c0 + width): G[i] = 2·Σ_{b: x[b,i]=1} g[b] − Σ_b g[b].
// Each set bit adds one contiguous slice of g (read in place, cache resident for a narrow panel) into a
// row accumulator `acc` (width floats, in L1), then Adam and the argmax run over the accumulated row.
void process_rows_sparse(const float* g, const float* neg, int64_t M, int64_t c0, int64_t width, int64_t r0,
                         int64_t r1, const int32_t* bits, const int64_t* bits_ptr, float* w, float* m, float* v,
                         const AdamArgs& a, float* best, int32_t* best_i, float* acc) {
    const int64_t full = width / TILE;
    for (int64_t i = r0; i < r1; ++i) {
        std::memset(acc, 0, sizeof(float) * width);
        for (int64_t k = bits_ptr[i]; k < bits_ptr[i + 1]; ++k) {
            const float* gb = g + static_cast<int64_t>(bits[k]) * M + c0;
            for (int64_t t = 0; t < width; ++t) acc[t] += gb[t];
        }
        for (int64_t t = 0; t < width; ++t) acc[t] = 2.0f * acc[t] + neg[t];
        const int64_t row = i * M + c0;
        for (int64_t k = 0; k < full; ++k) {
            const int64_t off = k * TILE;
            vf16 tile[4];
            for (int q = 0; q < 4; ++q) tile[q] = load(acc + off + 16 * q);
            apply_tile(tile, w + row + off, m + row + off, v + row + off, best + off, best_i + off,
                       static_cast<int32_t>(i), a);
        }
        for (int64_t t = full * TILE; t < width; ++t)
            apply_scalar(acc[t], w + row + t, m + row + t, v + row + t, best + t, best_i + t,
                         static_cast<int32_t>(i), a);
    }
}

// Rows [r0, r1) of one panel of columns [c0, c0 + width), with the panel of g packed per 64-column tile in
// `gp`: folds these rows into the running maximum best/best_i of each column (rows must come in order).
void process_rows(const float* st, const float* gp, int64_t I, int64_t B, int64_t M, int64_t c0, int64_t width,
                  int64_t r0, int64_t r1, float* w, float* m, float* v, const AdamArgs& a, float* best,
                  int32_t* best_i) {
    const int64_t tiles = (width + TILE - 1) / TILE;
    const int64_t full = width / TILE;
    constexpr int R = 4;
    for (int64_t i0 = r0; i0 < r1; i0 += R) {
        const bool block = i0 + R <= r1;
        for (int64_t k = 0; k < full; ++k) {
            const int64_t off = k * TILE;
            const float* gt = gp + k * tile_stride(B);
            if (block)
                update_rows<R>(st, gt, B, M, w + c0 + off, m + c0 + off, v + c0 + off, best + off, best_i + off,
                               i0, a);
            else
                for (int64_t i = i0; i < r1; ++i)
                    update_rows<1>(st, gt, B, M, w + c0 + off, m + c0 + off, v + c0 + off, best + off,
                                   best_i + off, i, a);
        }
        if (full < tiles) {
            const int64_t off = full * TILE;
            for (int64_t i = i0; i < std::min(i0 + R, r1); ++i) {
                const int64_t row = i * M + c0 + off;
                update_tail(st + i * B, gp + full * tile_stride(B), B, width - off, w + row, m + row, v + row,
                            best + off, best_i + off, static_cast<int32_t>(i), a);
            }
        }
    }
}

constexpr int64_t CHUNK = 32;  // rows per chunk of work (a multiple of the 4-row block)

}  // namespace

// bits/bits_ptr: optional CSR list, per row i, of the samples b with x[b, i] = 1 (only when x is binary);
// nullptr for the dense product.
extern "C" int dwn_mapping_adam_argmax(const float* st, const float* g, int64_t I, int64_t B, int64_t M,
                                       float* w, float* m, float* v, int64_t* argmax, float lr, float beta1,
                                       float beta2, float eps, float weight_decay, int decoupled, int maximize,
                                       double bias_correction1, double bias_correction2, int threads,
                                       const int32_t* bits, const int64_t* bits_ptr) {
    AdamArgs a{lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
               static_cast<float>(lr / bias_correction1), static_cast<float>(1.0 / std::sqrt(bias_correction2)),
               decoupled ? 0.0f : weight_decay, decoupled ? 1.0f - lr * weight_decay : 1.0f};
    if (threads < 1) threads = 1;
    // Panels of columns. Dense product: the panel of g is packed per tile (B x width floats, about 2 MB) and
    // shared by the workers. Sparse product: g is read in place, so the panel is narrower (its slice of g
    // about 512 KB, the row accumulator in L1).
    const int64_t budget = bits != nullptr ? 131072 : 524288;
    const int64_t panel = std::min(M, std::max<int64_t>(TILE, (budget / std::max<int64_t>(B, 1)) / TILE * TILE));
    const int64_t panel_tiles = (panel + TILE - 1) / TILE;
    std::vector<float> gp(bits != nullptr ? 0 : static_cast<size_t>(panel_tiles * tile_stride(B)));
    std::vector<float> neg(bits != nullptr ? panel : 0);
    std::vector<float> acc(static_cast<size_t>(threads * panel));
    std::vector<float> best(static_cast<size_t>(threads * M));
    std::vector<int32_t> best_i(best.size());
    for (int64_t c0 = 0; c0 < M; c0 += panel) {
        const int64_t width = std::min(panel, M - c0);
        const int64_t tiles = (width + TILE - 1) / TILE;
        if (bits != nullptr) {
            for (int64_t t = 0; t < width; ++t) neg[t] = 0.0f;
            for (int64_t b = 0; b < B; ++b)
                for (int64_t t = 0; t < width; ++t) neg[t] -= g[b * M + c0 + t];
        } else {
            for (int64_t k = 0; k < tiles; ++k) {
                const int64_t tw = std::min(TILE, width - k * TILE);
                for (int64_t b = 0; b < B; ++b) {
                    float* dst = gp.data() + k * tile_stride(B) + b * TILE;
                    std::memcpy(dst, g + b * M + c0 + k * TILE, sizeof(float) * tw);
                    for (int64_t t = tw; t < TILE; ++t) dst[t] = 0.0f;
                }
            }
        }
        // Chunks of rows shared out by dwn::run_chunks; a worker's chunks come in increasing row order, so its
        // slot of best/best_i keeps the first maximum among its rows and the merge breaks ties on the row.
        for (int th = 0; th < threads; ++th) {
            std::fill_n(best.data() + th * M + c0, width, -std::numeric_limits<float>::infinity());
            std::fill_n(best_i.data() + th * M + c0, width, -1);   // -1: no row of this worker yet
        }
        const int64_t chunks = (I + CHUNK - 1) / CHUNK;
        dwn::run_chunks(chunks, threads, [&, c0, width](int64_t chunk, int worker) {
            const int64_t r0 = chunk * CHUNK, r1 = std::min(I, r0 + CHUNK);
            float* wb = best.data() + worker * M + c0;
            int32_t* wbi = best_i.data() + worker * M + c0;
            if (bits != nullptr)
                process_rows_sparse(g, neg.data(), M, c0, width, r0, r1, bits, bits_ptr, w, m, v, a, wb, wbi,
                                    acc.data() + worker * panel);
            else
                process_rows(st, gp.data(), I, B, M, c0, width, r0, r1, w, m, v, a, wb, wbi);
        });
    }
    // merge: the larger value wins, NaN counting as the largest; ties go to the lower row (torch.argmax)
    for (int64_t c = 0; c < M; ++c) {
        float bv = -std::numeric_limits<float>::infinity();
        int32_t bi = -1;
        for (int th = 0; th < threads; ++th) {
            const float p = best[th * M + c];
            const int32_t pi = best_i[th * M + c];
            if (pi < 0) continue;
            const bool p_nan = p != p, b_nan = bv != bv;
            bool take;
            if (bi < 0) take = true;
            else if (p_nan || b_nan) take = p_nan && (!b_nan || pi < bi);
            else take = p > bv || (p == bv && pi < bi);
            if (take) {
                bv = p;
                bi = pi;
            }
        }
        argmax[c] = bi < 0 ? 0 : bi;
    }
    return 0;
}

