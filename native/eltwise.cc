// eltwise kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void unary_fwd(UnaryOp op, int64_t len, const float* x, float* y, float alpha, float beta) { throw std::runtime_error("unary_fwd: not implemented yet"); }
void unary_bwd(UnaryOp op, int64_t len, const float* x, const float* y, const float* dy, float* dx, float alpha,
               float beta) { throw std::runtime_error("unary_bwd: not implemented yet"); }
void binary_fwd(BinaryOp op, const Strided4& s, const float* a, const float* b, float* y) { throw std::runtime_error("binary_fwd: not implemented yet"); }
void axpby(int64_t len, float alpha, const float* x, float beta, float* y) { throw std::runtime_error("axpby: not implemented yet"); }
void copy_strided(const int64_t shape[4], const int64_t stride[4], const float* x, float* y) { throw std::runtime_error("copy_strided: not implemented yet"); }

}  // namespace granq
