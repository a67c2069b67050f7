// Work sharing for the CPU kernels without a thread pool of our own.
//
// run_chunks(chunks, threads, fn) calls fn(chunk, worker) for every chunk in [0, chunks) on the calling
// thread (worker 0) and up to threads-1 detached helpers (workers 1..). Chunks are taken from a shared
// counter, and the caller waits only for chunks already taken: a helper the OS has not scheduled yet by
// the time the work runs out is not waited for (it finds nothing left and exits), so a busy machine never
// stalls the caller on a sleeping thread. We do not use OpenMP: a second runtime beside torch's would
// leave idle workers spinning on the cores torch needs next.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

namespace dwn {

struct ChunkState {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    int64_t chunks = 0;
    std::function<void(int64_t, int)> fn;
};

inline void drain(ChunkState& s, int worker) {
    for (int64_t c = s.next.fetch_add(1); c < s.chunks; c = s.next.fetch_add(1)) {
        s.fn(c, worker);
        s.done.fetch_add(1, std::memory_order_release);
    }
}

template <typename F>
void run_chunks(int64_t chunks, int threads, F fn) {
    if (chunks <= 0) return;
    threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, chunks)));
    if (threads == 1) {
        for (int64_t c = 0; c < chunks; ++c) fn(c, 0);
        return;
    }
    auto state = std::make_shared<ChunkState>();
    state->chunks = chunks;
    state->fn = fn;  // a helper starting late finds no chunk and never calls it
    for (int w = 1; w < threads; ++w) {
        try {
            std::thread([state, w] { drain(*state, w); }).detach();
        } catch (...) {
            break;  // no thread to be had: the caller does the rest
        }
    }
    drain(*state, 0);
    while (state->done.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
}

}  // namespace dwn
