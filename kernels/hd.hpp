// EIRNN_HD marks functions compiled for both host and device (math shared by the CPU kernels and
// their CUDA twins). Plain C++ translation units see nothing.
#pragma once

#if defined(__CUDACC__)
#define EIRNN_HD __host__ __device__
#else
#define EIRNN_HD
#endif
