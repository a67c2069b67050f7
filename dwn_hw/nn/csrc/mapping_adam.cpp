// Fused learnable-mapping update: gradient tile + Adam + per-column argmax in one pass.
//
// The weight gradient of LearnableMapping is G = S^T g with S = 2x - 1 ([B, I]) and g = grad_out ([B, M]).
// At the MNIST shape G has 28 M entries; writing it, reading it back in Adam and reading the weights
// again for the argmax costs far more than computing it. Here each thread takes a contiguous range of rows;
// panel by panel of columns it packs that panel of g into cache, walks its rows computing G[i, tile] in
// registers (for binary x: adding the g rows of the set bits), updates the Adam state and the weight in
// place and tracks each column's argmax; the per-thread maxima are merged in row order. The mapping's
// state is read and written once per step.
//
// Plain C ABI (no torch headers) so the library builds in about a second on first use; called via ctypes.
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include <atomic>
#include <thread>

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

// Binary inputs (x in {0, 1}): G[i] = 2·Σ_{b: x[b,i]=1} g[b] − Σ_b g[b], so a row costs one vector add per
// set bit instead of B multiply-adds. `gt2` holds 2·g for the tile, `neg` −Σ_b g[b] for it.
inline void update_sparse(const int32_t* bits, int64_t count, const float* gt2, const float* neg, float* wr,
                          float* mr, float* vr, float* best, int32_t* best_i, int32_t i, const AdamArgs& a) {
    vf16 acc[4];
    for (int q = 0; q < 4; ++q) acc[q] = load(neg + 16 * q);
    for (int64_t k = 0; k < count; ++k) {
        const float* gb = gt2 + static_cast<int64_t>(bits[k]) * TILE;
        for (int q = 0; q < 4; ++q) acc[q] += load(gb + 16 * q);
    }
    apply_tile(acc, wr, mr, vr, best, best_i, i, a);
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

// Rows [r0, r1) of one panel of columns [c0, c0 + width), with the panel of g packed per 64-column tile in
// `gp`: folds these rows into the running maximum best/best_i of each column (rows must come in order).
void process_rows(const float* st, const float* gp, int64_t I, int64_t B, int64_t M, int64_t c0, int64_t width,
                  int64_t r0, int64_t r1, float* w, float* m, float* v, const AdamArgs& a, float* best,
                  int32_t* best_i, const int32_t* bits, const int64_t* bits_ptr, const float* gp2,
                  const float* neg) {
    const int64_t tiles = (width + TILE - 1) / TILE;
    const int64_t full = width / TILE;
    if (bits != nullptr) {
        for (int64_t i = r0; i < r1; ++i) {
            const int32_t* row_bits = bits + bits_ptr[i];
            const int64_t count = bits_ptr[i + 1] - bits_ptr[i];
            for (int64_t k = 0; k < full; ++k) {
                const int64_t off = k * TILE;
                const int64_t row = i * M + c0 + off;
                update_sparse(row_bits, count, gp2 + k * B * TILE, neg + off, w + row, m + row, v + row,
                              best + off, best_i + off, static_cast<int32_t>(i), a);
            }
            if (full < tiles) {
                const int64_t off = full * TILE;
                const int64_t row = i * M + c0 + off;
                update_tail(st + i * B, gp + full * B * TILE, B, width - off, w + row, m + row, v + row,
                            best + off, best_i + off, static_cast<int32_t>(i), a);
            }
        }
        return;
    }
    constexpr int R = 4;
    for (int64_t i0 = r0; i0 < r1; i0 += R) {
        const bool block = i0 + R <= r1;
        for (int64_t k = 0; k < full; ++k) {
            const int64_t off = k * TILE;
            const float* gt = gp + k * B * TILE;
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
                update_tail(st + i * B, gp + full * B * TILE, B, width - off, w + row, m + row, v + row,
                            best + off, best_i + off, static_cast<int32_t>(i), a);
            }
        }
    }
}

// One thread's share of the work, panel by panel of columns: packs its own copy of the panel of g (and 2g
// and −Σ_b g for the sparse product), then takes chunks of rows from the panel's shared counter until none
// are left. Chunks are handed out dynamically so a thread the OS descheduled does not hold up the others;
// a thread's chunks come in increasing row order, so best/best_i ([M], this thread's maxima) keep the first
// maximum among its rows and the merge breaks ties on the row index.
constexpr int64_t CHUNK = 32;  // rows per chunk (a multiple of the 4-row block)

void process_all(const float* st, const float* g, int64_t I, int64_t B, int64_t M, int64_t panel,
                 std::atomic<int64_t>* counters, float* w, float* m, float* v, const AdamArgs& a, float* best,
                 int32_t* best_i, const int32_t* bits, const int64_t* bits_ptr) {
    const int64_t panel_tiles = (panel + TILE - 1) / TILE;
    const int64_t chunks = (I + CHUNK - 1) / CHUNK;
    std::vector<float> gp(static_cast<size_t>(panel_tiles * B * TILE));
    std::vector<float> gp2(bits != nullptr ? gp.size() : 0), neg(bits != nullptr ? panel_tiles * TILE : 0);
    std::vector<float> pbest(static_cast<size_t>(panel_tiles * TILE));
    std::vector<int32_t> pbest_i(pbest.size());
    for (int64_t p = 0, c0 = 0; c0 < M; ++p, c0 += panel) {
        const int64_t width = std::min(panel, M - c0);
        const int64_t tiles = (width + TILE - 1) / TILE;
        int64_t chunk = counters[p].fetch_add(1);
        if (chunk >= chunks) {
            for (int64_t t = 0; t < width; ++t) {
                best[c0 + t] = -std::numeric_limits<float>::infinity();
                best_i[c0 + t] = -1;    // no rows: never wins the merge
            }
            continue;
        }
        for (int64_t k = 0; k < tiles; ++k) {
            const int64_t tw = std::min(TILE, width - k * TILE);
            for (int64_t b = 0; b < B; ++b) {
                float* dst = gp.data() + (k * B + b) * TILE;
                std::memcpy(dst, g + b * M + c0 + k * TILE, sizeof(float) * tw);
                for (int64_t t = tw; t < TILE; ++t) dst[t] = 0.0f;
            }
        }
        if (bits != nullptr) {
            for (size_t k = 0; k < gp.size(); ++k) gp2[k] = 2.0f * gp[k];
            for (int64_t k = 0; k < tiles; ++k)
                for (int64_t t = 0; t < TILE; ++t) {
                    float sum = 0.0f;
                    for (int64_t b = 0; b < B; ++b) sum += gp[(k * B + b) * TILE + t];
                    neg[k * TILE + t] = -sum;
                }
        }
        std::fill(pbest.begin(), pbest.end(), -std::numeric_limits<float>::infinity());
        std::fill(pbest_i.begin(), pbest_i.end(), -1);   // -1: no row of this thread beats -inf yet
        for (; chunk < chunks; chunk = counters[p].fetch_add(1)) {
            const int64_t r0 = chunk * CHUNK, r1 = std::min(I, r0 + CHUNK);
            process_rows(st, gp.data(), I, B, M, c0, width, r0, r1, w, m, v, a, pbest.data(), pbest_i.data(),
                         bits, bits_ptr, gp2.data(), neg.data());
        }
        std::memcpy(best + c0, pbest.data(), sizeof(float) * width);
        std::memcpy(best_i + c0, pbest_i.data(), sizeof(int32_t) * width);
    }
}

}  // namespace

// bits/bits_ptr: optional CSR list, per row i, of the samples b with x[b, i] = 1 (only when x is binary);
// nullptr for the dense product.
extern "C" int dwn_mapping_adam_argmax(const float* st, const float* g, int64_t I, int64_t B, int64_t M,
                                       float* w, float* m, float* v, int64_t* argmax, float lr, float beta1,
                                       float beta2, float eps, float weight_decay, int decoupled, int maximize,
                                       double bias_correction1, double bias_correction2, int threads,
                                       const int32_t* bits, const int64_t* bits_ptr) {
    AdamArgs a{lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
               static_cast<float>(lr / bias_correction1), static_cast<float>(std::sqrt(bias_correction2)),
               decoupled ? 0.0f : weight_decay, decoupled ? 1.0f - lr * weight_decay : 1.0f};
    if (threads < 1) threads = 1;
    // panels of columns whose packed g (B x width floats) stays within about 2 MB of cache
    const int64_t panel = std::min(M, std::max<int64_t>(TILE, (524288 / std::max<int64_t>(B, 1)) / TILE * TILE));
    const int64_t panels = (M + panel - 1) / panel;
    std::vector<std::atomic<int64_t>> counters(static_cast<size_t>(panels));
    for (auto& c : counters) c.store(0);
    std::vector<float> best(static_cast<size_t>(threads * M));
    std::vector<int32_t> best_i(best.size());
    // Plain std::threads, not OpenMP: a second OpenMP runtime beside torch's would leave its idle workers
    // spinning on the cores torch needs next.
    auto work = [&](int tid) {
        process_all(st, g, I, B, M, panel, counters.data(), w, m, v, a, best.data() + tid * M,
                    best_i.data() + tid * M, bits, bits_ptr);
    };
    std::vector<std::thread> pool;
    for (int tid = 1; tid < threads; ++tid) pool.emplace_back(work, tid);
    work(0);
    for (auto& t : pool) t.join();
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

