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

// Scratch memory for one thread's use inside a kernel call; 64-byte aligned, grows, never shrinks.
float* thread_scratch(int slot, size_t floats);

}  // namespace granq
