// gemm kernels (stub: to be implemented)
#include <stdexcept>

#include "kernels.h"

namespace granq {

void gemm(const GemmParams& p) { throw std::runtime_error("gemm: not implemented yet"); }

}  // namespace granq
