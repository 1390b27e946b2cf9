// pool2d kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void avgpool2d_fwd(const Pool2dShape& s, const float* x, float* y) { throw std::runtime_error("avgpool2d_fwd: not implemented yet"); }
void avgpool2d_bwd(const Pool2dShape& s, const float* dy, float* dx) { throw std::runtime_error("avgpool2d_bwd: not implemented yet"); }
void upsample_nearest_fwd(int64_t n, int64_t c, int64_t ih, int64_t iw, int64_t scale, const float* x, float* y) { throw std::runtime_error("upsample_nearest_fwd: not implemented yet"); }
void upsample_nearest_bwd(int64_t n, int64_t c, int64_t ih, int64_t iw, int64_t scale, const float* dy, float* dx) { throw std::runtime_error("upsample_nearest_bwd: not implemented yet"); }
void pad_channels_fwd(int64_t n, int64_t c, int64_t hw, int64_t before, int64_t after, const float* x, float* y) { throw std::runtime_error("pad_channels_fwd: not implemented yet"); }
void pad_channels_bwd(int64_t n, int64_t c, int64_t hw, int64_t before, int64_t after, const float* dy, float* dx) { throw std::runtime_error("pad_channels_bwd: not implemented yet"); }

}  // namespace granq
