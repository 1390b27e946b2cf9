// Shared by every kernel family: the thread pool interface and small numeric helpers.
// Kernels never see Node-API types; addon.cc checks arguments and hands them plain pointers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace granq {

// Thread pool (pool.cc). Sized from GRANQ_THREADS, else the machine's core count.
int num_threads();
void set_num_threads(int n);

// Runs fn(begin, end) over [0, n) split into contiguous ranges, one per thread, the caller included.
// Ranges never split an item, so a kernel whose items are independent gives results that do not
// depend on the thread count. `grain` is the smallest number of items worth a thread of its own.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

// Elementwise work split into fixed blocks of 4096 elements: which elements a vector body or a scalar tail handles
// never depends on the thread count, so results are bit-identical for any number of threads. fn(begin, end).
template <class Fn>
void parallel_for_blocks(int64_t len, Fn&& fn) {
  constexpr int64_t kBlock = 4096;
  constexpr int64_t kGrainBlocks = 8;  // ~32K elements before a second thread helps
  const int64_t nb = (len + kBlock - 1) / kBlock;
  parallel_for(
      nb,
      [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) fn(k * kBlock, k * kBlock + kBlock < len ? k * kBlock + kBlock : len);
      },
      kGrainBlocks);
}

// Scratch memory for one thread's use inside a kernel call; 64-byte aligned, grows, never shrinks.
float* thread_scratch(int slot, size_t floats);

}  // namespace granq
