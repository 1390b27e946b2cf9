// A persistent thread pool: workers wait on a generation counter; the calling thread takes range 0.
// Kernels are called synchronously from JS, one at a time, so one job is in flight at most.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

namespace granq {
namespace {

// How long a waiting thread spins before it sleeps. Between two kernels JS runs for microseconds up to a fraction of
// a millisecond, and waking a sleeping thread (futex) costs tens of microseconds in a VM: with a budget of 20000
// spins (~0.1 ms) the worker fell asleep between ops and a batch-16 training iteration was ~10% slower.
constexpr auto kSpinBudget = std::chrono::microseconds(1000);

// Spins while `waiting()` holds, up to kSpinBudget; true if it stopped holding, false when the budget ran out.
template <class Pred>
bool spin_while(Pred waiting) {
  const auto start = std::chrono::steady_clock::now();
  for (unsigned spins = 1; waiting(); ++spins) {
    if ((spins & 1023) == 0 && std::chrono::steady_clock::now() - start > kSpinBudget) return false;
  }
  return true;
}

class Pool {
 public:
  Pool() { resize(default_threads()); }
  ~Pool() { stop_workers(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    if (n < 1) n = 1;
    if (n > 256) n = 256;
    if (n == nthreads_) return;
    stop_workers();
    nthreads_ = n;
    stopping_ = false;
    // A worker must start from the generation current now, not when its thread happens to get scheduled:
    // otherwise a job posted in between is never seen and run() waits forever.
    const uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int t = 1; t < n; ++t) workers_.emplace_back([this, t, gen] { worker_loop(t, gen); });
  }

  void run(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
    if (n <= 0) return;
    // A kernel running inside a pool job (e.g. a threaded GEMM called per image by a threaded conv) runs its
    // inner loop serially: the pool has one job slot, and the outer level already uses every thread.
    if (in_job_) {
      fn(0, n);
      return;
    }
    int64_t max_parts = grain > 0 ? (n + grain - 1) / grain : n;
    int parts = static_cast<int>(std::min<int64_t>(nthreads_, max_parts));
    if (parts <= 1) {
      fn(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      job_n_ = n;
      job_parts_ = parts;
      pending_.store(parts - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    in_job_ = true;
    fn(0, range_end(0));
    in_job_ = false;
    // Spin, then sleep: most jobs finish within microseconds of each other.
    if (!spin_while([this] { return pending_.load(std::memory_order_acquire) != 0; })) {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
  }

 private:
  static int default_threads() {
    if (const char* env = std::getenv("GRANQ_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) return v;
    }
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : static_cast<int>(hc);
  }

  int64_t range_begin(int part) const { return job_n_ * part / job_parts_; }
  int64_t range_end(int part) const { return job_n_ * (part + 1) / job_parts_; }

  void worker_loop(int t, uint64_t seen) {
    for (;;) {
      // Spin before sleeping so back-to-back kernels do not pay a wake-up each.
      const auto idle = [&] { return generation_.load(std::memory_order_acquire) == seen && !stopping_.load(); };
      if (!spin_while(idle)) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !idle(); });
      }
      const uint64_t gen = generation_.load(std::memory_order_acquire);
      if (stopping_.load()) return;
      seen = gen;
      if (t < job_parts_) {
        in_job_ = true;
        (*job_)(range_begin(t), range_end(t));
        in_job_ = false;
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard<std::mutex> lock(mu_);
          done_cv_.notify_one();
        }
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  static thread_local bool in_job_;
  int nthreads_ = 0;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_parts_ = 0;
};

thread_local bool Pool::in_job_ = false;

Pool& pool() {
  static Pool p;
  return p;
}

struct Scratch {
  float* ptr = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(ptr); }
};

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  pool().run(n, fn, grain);
}

float* thread_scratch(int slot, size_t floats) {
  static thread_local Scratch slots[4];
  Scratch& s = slots[slot & 3];
  if (s.cap < floats) {
    std::free(s.ptr);
    size_t bytes = ((floats * sizeof(float)) + 63) / 64 * 64;
    s.ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
    s.cap = s.ptr ? floats : 0;
    if (!s.ptr) throw std::bad_alloc();
  }
  return s.ptr;
}

}  // namespace granq
