// reduce kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void reduce_fwd(ReduceOp op, const int64_t shape[4], const bool mask[4], const float* x, float* y) { throw std::runtime_error("reduce_fwd: not implemented yet"); }
void reduce_minmax_bwd(const int64_t shape[4], const bool mask[4], const float* x, const float* y, const float* dy,
                       float* dx) { throw std::runtime_error("reduce_minmax_bwd: not implemented yet"); }

}  // namespace granq
