// Cooperative groups of the emulated device: this_cluster() (sync, block_rank, num_blocks,
// map_shared_rank) and this_thread_block(), as kernels/cuda uses them.
#pragma once
#include <source_location>

#include "cuda_runtime.h"

namespace cooperative_groups {

class cluster_group {
public:
    /// barrier.cluster.arrive.release + wait.acquire over every non-exited thread of the cluster.
    void sync(std::source_location where = std::source_location::current()) const {
        ::emu::cluster_sync(where);
    }
    unsigned block_rank() const { return ::emu::cluster_rank(); }
    unsigned num_blocks() const { return ::emu::cluster_size(); }
    /// The address of *p in the shared memory of cluster block `rank`.
    template <class T>
    T* map_shared_rank(T* p, unsigned rank) const {
        return static_cast<T*>(::emu::map_shared_rank(p, rank));
    }
};

class thread_block {
public:
    void sync(std::source_location where = std::source_location::current()) const {
        ::emu::syncthreads(where);
    }
    unsigned thread_rank() const {
        return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    }
};

inline cluster_group this_cluster() {
    return {};
}
inline thread_block this_thread_block() {
    return {};
}

}  // namespace cooperative_groups
