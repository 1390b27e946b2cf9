// loss kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void softmax_fwd(int64_t rows, int64_t cols, bool log, const float* x, float* y) { throw std::runtime_error("softmax_fwd: not implemented yet"); }
void softmax_bwd(int64_t rows, int64_t cols, bool log, const float* y, const float* dy, float* dx) { throw std::runtime_error("softmax_bwd: not implemented yet"); }
void embedding_fwd(int64_t n, int64_t num, int64_t dim, const int32_t* idx, const float* weight, float* y) { throw std::runtime_error("embedding_fwd: not implemented yet"); }
void embedding_bwd(int64_t n, int64_t num, int64_t dim, const int32_t* idx, const float* dy, float* dweight) { throw std::runtime_error("embedding_bwd: not implemented yet"); }

}  // namespace granq
