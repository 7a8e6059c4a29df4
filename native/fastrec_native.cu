// FastRec native CUDA library: C ABI entry points P/Invoked from src/Kernels/Gpu (placeholder until the GPU issue).
#include <cuda_runtime.h>

extern "C" {
// Returns the library's ABI version and the number of CUDA devices (or -1 if the runtime fails).
int fastrec_native_version(int* device_count) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) n = -1;
    if (device_count) *device_count = n;
    return 1;
}
}
