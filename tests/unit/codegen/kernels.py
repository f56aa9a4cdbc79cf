"""Loop-IR kernels shared by the C and LLVM backend tests."""

# two barriers between shared-memory accesses of GPU threads (a no-op on the CPU)
BARRIER_KERNEL = """
func @bar(A: float32[8], C: float32[8]) {
  for t in threadIdx.x(0, 8) {
    alloc T: shared float32[8] {
      T[t] = A[t] * 2.0
      eval barrier()
      C[t] = T[t] + 1.0
      eval barrier()
    }
  }
}
"""
