// Allocator tuning for the addon (alloc.cc), applied once when the addon loads.
#pragma once

namespace granq {

// Keeps large blocks (activations) on the glibc heap instead of mmap, so freed ones are reused without page faults.
// Does nothing on other C libraries.
void keep_large_allocations_on_heap();

}  // namespace granq
