// batchnorm kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void batchnorm_fwd_train(const BatchNormShape& s, const float* x, const float* gamma, const float* beta, float eps,
                         float momentum, float* running_mean, float* running_var, float* y, float* save_mean,
                         float* save_invstd) { throw std::runtime_error("batchnorm_fwd_train: not implemented yet"); }
void batchnorm_fwd_eval(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                        const float* running_mean, const float* running_var, float eps, float* y) { throw std::runtime_error("batchnorm_fwd_eval: not implemented yet"); }
void batchnorm_bwd_train(const BatchNormShape& s, const float* dy, const float* x, const float* save_mean,
                         const float* save_invstd, const float* gamma, float* dx, float* dgamma, float* dbeta) { throw std::runtime_error("batchnorm_bwd_train: not implemented yet"); }
void batchnorm_bwd_eval(const BatchNormShape& s, const float* dy, const float* x, const float* running_mean,
                        const float* running_var, float eps, const float* gamma, float* dx, float* dgamma,
                        float* dbeta) { throw std::runtime_error("batchnorm_bwd_eval: not implemented yet"); }

}  // namespace granq
