// Allocator tuning: glibc mallopt settings that keep large allocations on the heap (see alloc.h).
#include "alloc.h"

#include <malloc.h>

namespace granq {

// Activations are freshly allocated typed arrays of a few MB each. By default glibc serves those with mmap and
// returns them to the OS on free, so every new activation pays page faults (measured: half of a training step).
// Keeping large blocks on the heap lets freed activations be reused without faults.
void keep_large_allocations_on_heap() {
#ifdef __GLIBC__
  // 32 MiB is the largest threshold glibc accepts on 64-bit (a larger value is refused and changes nothing).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

}  // namespace granq
