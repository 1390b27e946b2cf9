// quant kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void quant_rows_fwd(const QuantRowsParams& p, const float* x, float* y, float* row_min, float* row_max) {
  throw std::runtime_error("quant_rows_fwd: not implemented yet");
}
void quant_channel_loop_fwd(int64_t n, int64_t c, int64_t hw, int32_t bits, const float* x, float* y) {
  throw std::runtime_error("quant_channel_loop_fwd: not implemented yet");
}
void quant_groups_fwd(const QuantGroupsParams& p, const float* mins, const float* maxs, const float* x, float* y) {
  throw std::runtime_error("quant_groups_fwd: not implemented yet");
}

}  // namespace granq
