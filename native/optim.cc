// optim kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void sgd_step(const SgdParams& p, float* param, const float* grad, float* momentum_buf /*nullable if momentum 0*/) { throw std::runtime_error("sgd_step: not implemented yet"); }
void adam_step(const AdamParams& p, float* param, const float* grad, float* exp_avg, float* exp_avg_sq) { throw std::runtime_error("adam_step: not implemented yet"); }

}  // namespace granq
