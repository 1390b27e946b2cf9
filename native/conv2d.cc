// conv2d kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias /*nullable*/, float* y) { throw std::runtime_error("conv2d_fwd: not implemented yet"); }
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) { throw std::runtime_error("conv2d_bwd_data: not implemented yet"); }
void conv2d_bwd_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                       float* dbias /*nullable*/) { throw std::runtime_error("conv2d_bwd_weight: not implemented yet"); }

}  // namespace granq
