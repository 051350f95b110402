// Device and pinned host memory with RAII owners. DeviceBuffer<T> (cudaMalloc; long-lived data),
// PoolBuffer<T> (cudaMallocAsync from the device's stream-ordered pool; per-wave and temporary
// buffers), PinnedBuffer<T> (page-locked host memory for async copies). All are move-only with
// noexcept moves; copies are explicit (clone). Every allocation call lives in memory.cpp.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <utility>

namespace eirnn::cuda {

namespace detail {
void* device_alloc(std::size_t bytes);
void device_free(void* p) noexcept;
void* pool_alloc(std::size_t bytes, cudaStream_t s);
void pool_free(void* p, cudaStream_t s) noexcept;
void* pinned_alloc(std::size_t bytes);
void pinned_free(void* p) noexcept;
void copy_async(void* dst, const void* src, std::size_t bytes, cudaStream_t s);
void zero_async(void* p, std::size_t bytes, cudaStream_t s);
}  // namespace detail

/// Owner of n elements of device memory (cudaMalloc).
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t n)
        : p_(n ? static_cast<T*>(detail::device_alloc(n * sizeof(T))) : nullptr), n_(n) {}
    DeviceBuffer(DeviceBuffer&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            detail::device_free(p_);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { detail::device_free(p_); }

    /// A new buffer with the same contents, copied on stream s.
    DeviceBuffer clone(cudaStream_t s) const {
        DeviceBuffer c(n_);
        detail::copy_async(c.p_, p_, n_ * sizeof(T), s);
        return c;
    }
    T* data() { return p_; }
    const T* data() const { return p_; }
    std::size_t size() const { return n_; }
    /// Non-owning view of the device memory (never dereferenced on the host).
    std::span<T> view() { return {p_, n_}; }
    std::span<const T> view() const { return {p_, n_}; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

/// Owner of n elements from the stream-ordered pool: allocated and freed in order on stream s.
template <class T>
class PoolBuffer {
public:
    PoolBuffer() = default;
    PoolBuffer(std::size_t n, cudaStream_t s)
        : p_(n ? static_cast<T*>(detail::pool_alloc(n * sizeof(T), s)) : nullptr), n_(n), s_(s) {}
    PoolBuffer(PoolBuffer&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), s_(o.s_) {}
    PoolBuffer& operator=(PoolBuffer&& o) noexcept {
        if (this != &o) {
            detail::pool_free(p_, s_);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
            s_ = o.s_;
        }
        return *this;
    }
    PoolBuffer(const PoolBuffer&) = delete;
    PoolBuffer& operator=(const PoolBuffer&) = delete;
    ~PoolBuffer() { detail::pool_free(p_, s_); }

    T* data() { return p_; }
    const T* data() const { return p_; }
    std::size_t size() const { return n_; }
    std::span<T> view() { return {p_, n_}; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
    cudaStream_t s_ = nullptr;
};

/// Owner of n elements of page-locked host memory.
template <class T>
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(std::size_t n)
        : p_(n ? static_cast<T*>(detail::pinned_alloc(n * sizeof(T))) : nullptr), n_(n) {}
    PinnedBuffer(PinnedBuffer&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
        if (this != &o) {
            detail::pinned_free(p_);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    ~PinnedBuffer() { detail::pinned_free(p_); }

    T* data() { return p_; }
    const T* data() const { return p_; }
    std::size_t size() const { return n_; }
    T& operator[](std::size_t i) { return p_[i]; }
    const T& operator[](std::size_t i) const { return p_[i]; }
    std::span<T> view() { return {p_, n_}; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

/// Asynchronous copies of n elements (host memory should be pinned for real overlap).
template <class T>
void copy_to_device(T* dst, const T* src, std::size_t n, cudaStream_t s) {
    detail::copy_async(dst, src, n * sizeof(T), s);
}
template <class T>
void copy_to_host(T* dst, const T* src, std::size_t n, cudaStream_t s) {
    detail::copy_async(dst, src, n * sizeof(T), s);
}
/// Sets n elements of device memory to all-zero bytes.
template <class T>
void zero(T* p, std::size_t n, cudaStream_t s) {
    detail::zero_async(p, n * sizeof(T), s);
}

}  // namespace eirnn::cuda
