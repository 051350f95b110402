// Data-type tags of the CUDA libraries (the emulated device's copy of the values the API uses).
#pragma once

enum cudaDataType {
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_C_32F = 4,
    CUDA_C_64F = 5,
};
typedef cudaDataType cudaDataType_t;
