// The emulated device's runtime API: devices and their properties, errors (last and sticky),
// device / pool / pinned memory with a registry that checks every copy, streams as ordered queues
// with a worker thread each (real concurrency between streams, the legacy stream's implicit
// synchronisation), events, kernel attributes and the launch checks of the hardware.
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cxxabi.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "internal.hpp"

namespace emu {

// ------------------------------------------------------------------ options and shared state

namespace {

long env_long(const char* name, long fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

std::size_t env_bytes(const char* name, std::size_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    double x = std::strtod(v, &end);
    switch (end && *end ? *end : ' ') {
        case 'k':
        case 'K':
            x *= 1024.0;
            break;
        case 'm':
        case 'M':
            x *= 1024.0 * 1024;
            break;
        case 'g':
        case 'G':
            x *= 1024.0 * 1024 * 1024;
            break;
        default:
            break;
    }
    return static_cast<std::size_t>(x);
}

Options read_options() {
    Options o;
    o.device_memory = env_bytes("EIRNN_EMU_DEVICE_MEMORY", o.device_memory);
    o.devices = static_cast<int>(std::max(0L, env_long("EIRNN_EMU_DEVICES", 1)));
    const long hw = std::max(1L, static_cast<long>(std::thread::hardware_concurrency()));
    o.workers = static_cast<int>(std::clamp(env_long("EIRNN_EMU_WORKERS", hw), 1L, 64L));
    o.stack_bytes = env_bytes("EIRNN_EMU_STACK", 0);
    if (const char* f = std::getenv("EIRNN_EMU_FILL")) o.fill_nan = std::string(f) != "none";
    o.abort_on_fault = env_long("EIRNN_EMU_ABORT", 0) != 0;
    if (const char* k = std::getenv("EIRNN_EMU_FAULT_KERNEL")) o.fault_kernel = k;
    if (const char* d = std::getenv("EIRNN_EMU_DROP_SYNCTHREADS")) {
        o.drop_syncthreads = std::strtol(d, nullptr, 10);
        if (const char* colon = std::strchr(d, ':'))
            o.drop_syncthreads_warp = static_cast<int>(std::strtol(colon + 1, nullptr, 10));
    }
    o.drop_cluster_sync = env_long("EIRNN_EMU_DROP_CLUSTER_SYNC", 0);
    o.misalign_shared = static_cast<std::size_t>(env_long("EIRNN_EMU_MISALIGN_SHARED", 0));
    o.misalign_allocation = env_long("EIRNN_EMU_MISALIGN_ALLOCATION", 0);
    return o;
}

struct Counters {
    std::atomic<long> launches{0}, faults{0}, pageable{0}, pinned{0};
};
Counters& counters() {
    static auto* c = new Counters;
    return *c;
}

std::atomic<int> g_sticky{cudaSuccess};
std::mutex g_fault_mutex;
std::string g_last_fault;
thread_local cudaError_t t_last_error = cudaSuccess;
thread_local int t_device = 0;

}  // namespace

Options& options() {
    static auto* o = new Options(read_options());
    return *o;
}

// The lock, the condition and the registries live until the process ends (never destroyed): the
// stream workers may still wait on them while static objects are destroyed at exit.
std::mutex& lock() {
    static auto* m = new std::mutex;
    return *m;
}

std::condition_variable& changed() {
    static auto* c = new std::condition_variable;
    return *c;
}

thread_local constinit const ThreadView* t_view = nullptr;

void not_in_kernel(const char* what) {
    std::fprintf(stderr, "eirnn-emu: %s used outside a kernel\n", what);
    std::abort();
}

cudaError_t fail(cudaError_t e) {
    if (e != cudaSuccess) t_last_error = e;
    return e;
}

cudaError_t sticky() {
    return static_cast<cudaError_t>(g_sticky.load());
}

void device_fault(cudaError_t e, const std::string& message) {
    {
        std::lock_guard<std::mutex> g(g_fault_mutex);
        g_last_fault = message;
    }
    std::fprintf(stderr, "eirnn-emu: %s\n", message.c_str());
    std::fflush(stderr);
    counters().faults++;
    if (options().abort_on_fault) std::abort();
    int expected = cudaSuccess;
    g_sticky.compare_exchange_strong(expected, e);
}

void note_launch_done() {
    counters().launches++;
}

void note_async_copy(bool pageable) {
    (pageable ? counters().pageable : counters().pinned)++;
}

int current_device() {
    return t_device;
}

// ------------------------------------------------------------------ memory registry

namespace {

struct Allocation {
    std::size_t size = 0;    // bytes asked for
    std::size_t mapped = 0;  // bytes mapped (0: from the heap)
    void* raw = nullptr;     // what to release
    MemKind kind = MemKind::kDevice;
    int device = 0;
};

std::map<const std::byte*, Allocation>& live() {
    static auto* m = new std::map<const std::byte*, Allocation>;
    return *m;
}
// Freed device memory, kept unmapped (or poisoned by ASan) so that a late use faults; the oldest
// are released beyond 1 GiB.
std::map<const std::byte*, std::size_t>& freed() {
    static auto* m = new std::map<const std::byte*, std::size_t>;
    return *m;
}
std::deque<std::pair<void*, std::size_t>>& quarantine() {
    static auto* q = new std::deque<std::pair<void*, std::size_t>>;
    return *q;
}
[[maybe_unused]] std::size_t g_quarantined = 0;
std::size_t g_device_used[16] = {};
long g_device_allocations = 0;
std::size_t g_device_memory_override = 0;

constexpr std::size_t kPage = 4096;

std::size_t device_memory() {
    return g_device_memory_override ? g_device_memory_override : options().device_memory;
}

/// Device memory: exact-size heap blocks under AddressSanitizer (red zones, use after free),
/// otherwise mapped pages that are made inaccessible when freed. Called with lock() held.
cudaError_t allocate_device(void** out, std::size_t bytes) {
    *out = nullptr;
    if (bytes == 0) return cudaSuccess;
    const int dev = current_device();
    if (g_device_used[dev] + bytes > device_memory()) return cudaErrorMemoryAllocation;
    const bool misalign = options().misalign_allocation > 0 &&
                          ++g_device_allocations == options().misalign_allocation;
    const std::size_t shift = misalign ? 4 : 0;
    Allocation a;
    a.size = bytes;
    a.device = dev;
    std::byte* p = nullptr;
#if defined(__SANITIZE_ADDRESS__)
    if (posix_memalign(&a.raw, 256, bytes + shift) != 0) return cudaErrorMemoryAllocation;
    p = static_cast<std::byte*>(a.raw) + shift;
#else
    a.mapped = (bytes + shift + kPage - 1) / kPage * kPage;
    a.raw = mmap(nullptr, a.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a.raw == MAP_FAILED) return cudaErrorMemoryAllocation;
    p = static_cast<std::byte*>(a.raw) + shift;
#endif
    std::memset(p, options().fill_nan ? 0xff : 0, bytes);
    live()[p] = a;
    freed().erase(p);
    g_device_used[dev] += bytes;
    *out = p;
    return cudaSuccess;
}

cudaError_t release(void* ptr, MemKind kind) {
    if (!ptr) return cudaSuccess;
    auto it = live().find(static_cast<const std::byte*>(ptr));
    if (it == live().end() || it->second.kind != kind) return cudaErrorInvalidValue;
    Allocation a = it->second;
    live().erase(it);
    if (kind == MemKind::kPinned) {
        std::free(a.raw);
        return cudaSuccess;
    }
    g_device_used[a.device] -= a.size;
    freed()[static_cast<const std::byte*>(ptr)] = a.size;
#if defined(__SANITIZE_ADDRESS__)
    std::free(a.raw);
#else
    mprotect(a.raw, a.mapped, PROT_NONE);
    quarantine().emplace_back(a.raw, a.mapped);
    g_quarantined += a.mapped;
    while (g_quarantined > (std::size_t(1) << 30)) {
        auto [raw, n] = quarantine().front();
        quarantine().pop_front();
        munmap(raw, n);
        g_quarantined -= n;
        // Its address range may be handed out again: forget it as freed memory.
        auto lo = freed().lower_bound(static_cast<const std::byte*>(raw));
        auto hi = freed().lower_bound(static_cast<const std::byte*>(raw) + n);
        freed().erase(lo, hi);
    }
#endif
    return cudaSuccess;
}

}  // namespace

Region find_region(const void* ptr, std::size_t bytes) {
    Region r;
    const auto* p = static_cast<const std::byte*>(ptr);
    auto it = live().upper_bound(p);
    if (it != live().begin()) {
        --it;
        const Allocation& a = it->second;
        if (p >= it->first && p < it->first + std::max<std::size_t>(a.size, 1)) {
            r.kind = a.kind;
            r.device = a.device;
            r.base = it->first;
            r.size = a.size;
            r.inside = p + bytes <= it->first + a.size;
            return r;
        }
    }
    auto f = freed().upper_bound(p);
    if (f != freed().begin()) {
        --f;
        if (p >= f->first && p < f->first + f->second) {
#if defined(__SANITIZE_ADDRESS__)
            // Freed device blocks go back to the heap: once ASan lets the address out of its
            // quarantine, host memory may live there (no longer poisoned), and it is that.
            if (!__asan_address_is_poisoned(p)) {
                freed().erase(f);
                return r;
            }
#endif
            r.freed = true;
        }
    }
    return r;
}

Stats stats() {
    Stats s;
    s.launches = counters().launches;
    s.device_faults = counters().faults;
    s.async_pageable_copies = counters().pageable;
    s.async_pinned_copies = counters().pinned;
    std::lock_guard<std::mutex> g(lock());
    s.device_bytes_in_use = g_device_used[current_device()];
    return s;
}

std::string last_fault() {
    std::lock_guard<std::mutex> g(g_fault_mutex);
    return g_last_fault;
}

void set_device_memory(std::size_t bytes) {
    std::lock_guard<std::mutex> g(lock());
    g_device_memory_override = bytes;
}

// ------------------------------------------------------------------ streams and events

struct StreamState {
    int device = 0;
    bool blocking = true;
    bool legacy = false;
    bool destroyed = false;
    bool stop = false;
    std::deque<std::function<void()>> queue;
    std::uint64_t enqueued = 0, completed = 0;
    std::thread worker;

    void run() {
        std::unique_lock<std::mutex> g(lock());
        for (;;) {
            changed().wait(g, [&] { return stop || !queue.empty(); });
            if (queue.empty()) return;
            std::function<void()> op = std::move(queue.front());
            queue.pop_front();
            g.unlock();
            t_device = device;
            op();
            op = nullptr;
            g.lock();
            ++completed;
            changed().notify_all();
        }
    }
};

}  // namespace emu

struct CUstream_st {
    emu::StreamState* state = nullptr;
};

struct EventState {
    unsigned flags = 0;
    emu::StreamState* stream = nullptr;  // where it was last recorded (null: never)
    std::uint64_t seq = 0;               // complete when stream->completed >= seq
    std::uint64_t generation = 0;
    std::chrono::steady_clock::time_point time{};
    bool timed = false;
    bool destroyed = false;
};

struct CUevent_st {
    EventState state;
};

namespace emu {
namespace {

// Streams and events are kept (workers joined) until the process ends, so that a stale handle is
// recognised as destroyed instead of read after free.
std::vector<std::unique_ptr<CUstream_st>>& all_streams() {
    static auto* v = new std::vector<std::unique_ptr<CUstream_st>>;
    return *v;
}
std::set<const CUstream_st*>& live_streams() {
    static auto* s = new std::set<const CUstream_st*>;
    return *s;
}
std::vector<std::unique_ptr<CUevent_st>>& all_events() {
    static auto* v = new std::vector<std::unique_ptr<CUevent_st>>;
    return *v;
}
std::set<const CUevent_st*>& live_events() {
    static auto* s = new std::set<const CUevent_st*>;
    return *s;
}
StreamState* g_legacy[16] = {};

/// A new stream with its worker; lock() held by the caller.
StreamState* new_stream(int device, bool blocking, bool legacy) {
    auto handle = std::make_unique<CUstream_st>();
    handle->state = new StreamState;  // owned by the handle for the life of the process
    StreamState* s = handle->state;
    s->device = device;
    s->blocking = blocking;
    s->legacy = legacy;
    s->worker = std::thread([s] { s->run(); });
    if (!legacy) live_streams().insert(handle.get());
    all_streams().push_back(std::move(handle));
    return s;
}

StreamState* legacy_stream(int device) {
    if (!g_legacy[device]) g_legacy[device] = new_stream(device, true, true);
    return g_legacy[device];
}

bool valid_device(int d) {
    return d >= 0 && d < options().devices && d < 16;
}

struct Dependency {
    StreamState* stream;
    std::uint64_t seq;
};

/// Appends op (after waiting for deps) to s; returns its sequence number. lock() held.
std::uint64_t push(StreamState* s, std::function<void()> op, std::vector<Dependency> deps) {
    // The legacy stream waits for every blocking stream of its device and they wait for it.
    if (s->legacy) {
        for (auto& h : all_streams()) {
            StreamState* o = h->state;
            if (o != s && o->blocking && !o->destroyed && o->device == s->device)
                deps.push_back({o, o->enqueued});
        }
    } else if (s->blocking && g_legacy[s->device]) {
        deps.push_back({g_legacy[s->device], g_legacy[s->device]->enqueued});
    }
    if (deps.empty()) {
        s->queue.push_back(std::move(op));
    } else {
        s->queue.push_back([deps = std::move(deps), op = std::move(op)] {
            {
                std::unique_lock<std::mutex> g(lock());
                changed().wait(g, [&] {
                    for (const Dependency& d : deps)
                        if (d.stream->completed < d.seq) return false;
                    return true;
                });
            }
            op();
        });
    }
    changed().notify_all();
    return ++s->enqueued;
}

bool event_complete(const EventState& e) {
    return !e.stream || e.stream->completed >= e.seq;
}

}  // namespace

StreamState* resolve(cudaStream_t s, cudaError_t* err) {
    *err = cudaSuccess;
    if (!s) {
        if (!valid_device(current_device())) {
            *err = cudaErrorNoDevice;
            return nullptr;
        }
        return legacy_stream(current_device());
    }
    if (!live_streams().count(s)) {
        *err = cudaErrorInvalidResourceHandle;
        return nullptr;
    }
    return s->state;
}

int stream_device(const StreamState* s) {
    return s->device;
}

void enqueue(StreamState* s, std::function<void()> op) {
    push(s, std::move(op), {});
}

void wait_idle(StreamState* s) {
    std::unique_lock<std::mutex> g(lock(), std::adopt_lock);
    const std::uint64_t target = s->enqueued;
    changed().wait(g, [&] { return s->completed >= target; });
    g.release();
}

void reset_after_fault() {
    {
        std::unique_lock<std::mutex> g(lock());
        for (auto& h : all_streams()) {
            StreamState* s = h->state;
            const std::uint64_t target = s->enqueued;
            changed().wait(g, [&] { return s->completed >= target; });
        }
    }
    g_sticky = cudaSuccess;
    t_last_error = cudaSuccess;
    std::lock_guard<std::mutex> g(g_fault_mutex);
    g_last_fault.clear();
}

// ------------------------------------------------------------------ kernels: attributes, names

namespace {
std::map<const void*, KernelAttributes>& attributes() {
    static auto* m = new std::map<const void*, KernelAttributes>;
    return *m;
}
}  // namespace

KernelAttributes kernel_attributes(const void* kernel) {
    std::lock_guard<std::mutex> g(lock());
    auto it = attributes().find(kernel);
    return it == attributes().end() ? KernelAttributes{} : it->second;
}

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
    if (sticky()) return fail(sticky());
    if (!kernel) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(lock());
    KernelAttributes& a = attributes()[kernel];
    switch (attr) {
        case cudaFuncAttributeMaxDynamicSharedMemorySize:
            if (value < 0 || static_cast<std::size_t>(value) > kOptinSmem)
                return fail(cudaErrorInvalidValue);
            a.max_dynamic_smem = value;
            return cudaSuccess;
        case cudaFuncAttributeNonPortableClusterSizeAllowed:
            if (value != 0 && value != 1) return fail(cudaErrorInvalidValue);
            a.non_portable_cluster = value == 1;
            return cudaSuccess;
        case cudaFuncAttributePreferredSharedMemoryCarveout:
            if (value < -1 || value > 100) return fail(cudaErrorInvalidValue);
            return cudaSuccess;
    }
    return fail(cudaErrorInvalidValue);
}

extern "C" {
extern const std::uintptr_t __start___patchable_function_entries[] __attribute__((weak));
extern const std::uintptr_t __stop___patchable_function_entries[] __attribute__((weak));
}

unsigned launch_bound(const void* kernel) {
    // __launch_bounds__(n) gives the kernel a patchable entry of n one-byte NOPs (cuda_runtime.h);
    // the linker collects the entries' addresses in __patchable_function_entries.
    static const std::set<std::uintptr_t>& entries = *[] {
        auto* s = new std::set<std::uintptr_t>;
        if (__start___patchable_function_entries)
            for (const std::uintptr_t* e = __start___patchable_function_entries;
                 e != __stop___patchable_function_entries; ++e)
                s->insert(*e);
        return s;
    }();
    const auto addr = reinterpret_cast<std::uintptr_t>(kernel);
    if (!entries.count(addr)) return 0;
    const auto* code = reinterpret_cast<const unsigned char*>(kernel);
    unsigned n = 0;
    while (n < 2048 && code[n] == 0x90) ++n;
    return n;
}

namespace {

struct Symbol {
    std::uintptr_t addr;
    std::size_t size;
    std::string name;
};

/// Function symbols of the executable (.symtab: internal-linkage kernels are there, not in the
/// dynamic table), relocated by its load address.
const std::vector<Symbol>& symbols() {
    static const std::vector<Symbol>& syms = *[] {
        auto* out = new std::vector<Symbol>;
        std::vector<Symbol>& v = *out;
        std::ifstream f("/proc/self/exe", std::ios::binary);
        std::vector<char> img((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
        if (img.size() < sizeof(Elf64_Ehdr)) return out;
        const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(img.data());
        if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shoff == 0) return out;
        std::uintptr_t base = 0;
        dl_iterate_phdr(
            [](dl_phdr_info* info, std::size_t, void* out) {
                *static_cast<std::uintptr_t*>(out) = info->dlpi_addr;
                return 1;  // the first object is the executable
            },
            &base);
        const auto* sh = reinterpret_cast<const Elf64_Shdr*>(img.data() + eh->e_shoff);
        for (int i = 0; i < eh->e_shnum; ++i) {
            if (sh[i].sh_type != SHT_SYMTAB) continue;
            const Elf64_Shdr& strtab = sh[sh[i].sh_link];
            const auto* sym = reinterpret_cast<const Elf64_Sym*>(img.data() + sh[i].sh_offset);
            const std::size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
            for (std::size_t j = 0; j < n; ++j) {
                if (ELF64_ST_TYPE(sym[j].st_info) != STT_FUNC || sym[j].st_value == 0) continue;
                v.push_back({base + sym[j].st_value, sym[j].st_size,
                             img.data() + strtab.sh_offset + sym[j].st_name});
            }
        }
        std::sort(v.begin(), v.end(),
                  [](const Symbol& a, const Symbol& b) { return a.addr < b.addr; });
        return out;
    }();
    return syms;
}

}  // namespace

std::string kernel_name(const void* kernel) {
    const auto addr = reinterpret_cast<std::uintptr_t>(kernel);
    std::string mangled;
    Dl_info info{};
    if (dladdr(kernel, &info) && info.dli_sname && info.dli_saddr == kernel)
        mangled = info.dli_sname;
    if (mangled.empty()) {
        const auto& syms = symbols();
        auto it = std::upper_bound(syms.begin(), syms.end(), addr,
                                   [](std::uintptr_t a, const Symbol& s) { return a < s.addr; });
        if (it != syms.begin() && (--it)->addr == addr) mangled = it->name;
    }
    if (mangled.empty()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "kernel@%p", kernel);
        return buf;
    }
    int status = 0;
    char* d = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
    std::string name = status == 0 && d ? d : mangled;
    std::free(d);
    return name;
}

// ------------------------------------------------------------------ launches

namespace {

bool dims_ok(const dim3& d, unsigned max_x, unsigned max_y, unsigned max_z) {
    return d.x >= 1 && d.y >= 1 && d.z >= 1 && d.x <= max_x && d.y <= max_y && d.z <= max_z;
}

/// The checks a real launch makes before anything runs; the shape on success.
cudaError_t check_launch(const cudaLaunchConfig_t& cfg, const void* kernel, LaunchShape* shape,
                         bool occupancy_query) {
    if (!kernel) return cudaErrorInvalidValue;
    const dim3 g = cfg.gridDim, b = cfg.blockDim;
    if (!dims_ok(b, 1024, 1024, 64) ||
        static_cast<unsigned long>(b.x) * b.y * b.z > kMaxThreadsPerBlock)
        return cudaErrorInvalidConfiguration;
    if (!occupancy_query && !dims_ok(g, 0x7fffffffu, 65535, 65535))
        return cudaErrorInvalidConfiguration;
    const unsigned threads = b.x * b.y * b.z;
    const unsigned bound = launch_bound(kernel);
    if (bound && threads > bound) return cudaErrorInvalidValue;  // over __launch_bounds__
    const KernelAttributes attr = kernel_attributes(kernel);
    if (cfg.dynamicSmemBytes > static_cast<std::size_t>(attr.max_dynamic_smem))
        return cudaErrorInvalidValue;
    unsigned cl[3] = {1, 1, 1};
    for (unsigned i = 0; i < cfg.numAttrs; ++i) {
        if (!cfg.attrs) return cudaErrorInvalidValue;
        if (cfg.attrs[i].id == cudaLaunchAttributeClusterDimension) {
            cl[0] = cfg.attrs[i].val.clusterDim.x;
            cl[1] = cfg.attrs[i].val.clusterDim.y;
            cl[2] = cfg.attrs[i].val.clusterDim.z;
        }
    }
    if (cl[0] < 1 || cl[1] < 1 || cl[2] < 1) return cudaErrorInvalidClusterSize;
    const unsigned C = cl[0] * cl[1] * cl[2];
    if (C > static_cast<unsigned>(attr.non_portable_cluster ? kMaxCluster : kPortableCluster))
        return cudaErrorInvalidClusterSize;
    if (!occupancy_query && (g.x % cl[0] || g.y % cl[1] || g.z % cl[2]))
        return cudaErrorInvalidClusterSize;
    if (C > 1 && threads * C > static_cast<unsigned>(kMaxThreadsPerSm) * kSmsPerGpc)
        return cudaErrorInvalidClusterSize;
    shape->grid[0] = g.x;
    shape->grid[1] = g.y;
    shape->grid[2] = g.z;
    shape->block[0] = b.x;
    shape->block[1] = b.y;
    shape->block[2] = b.z;
    for (int i = 0; i < 3; ++i) shape->cluster[i] = cl[i];
    shape->smem = cfg.dynamicSmemBytes;
    return cudaSuccess;
}

}  // namespace

cudaError_t launch_kernel(const cudaLaunchConfig_t& cfg, const void* kernel,
                          std::function<void()> body) {
    if (sticky()) return fail(sticky());
    LaunchShape shape;
    if (cudaError_t e = check_launch(cfg, kernel, &shape, false)) return fail(e);
    std::lock_guard<std::mutex> g(lock());
    cudaError_t e = cudaSuccess;
    StreamState* s = resolve(cfg.stream, &e);
    if (!s) return fail(e);
    if (s->device != current_device()) return fail(cudaErrorInvalidResourceHandle);
    push(s, [kernel, shape, body = std::move(body)] { execute(kernel, shape, body); }, {});
    return cudaSuccess;
}

cudaError_t max_active_clusters(int* clusters, const void* kernel, const cudaLaunchConfig_t& cfg) {
    if (sticky()) return fail(sticky());
    LaunchShape shape;
    if (cudaError_t e = check_launch(cfg, kernel, &shape, true)) return fail(e);
    const unsigned threads = shape.block[0] * shape.block[1] * shape.block[2];
    const unsigned C = shape.cluster[0] * shape.cluster[1] * shape.cluster[2];
    // Blocks per SM: shared memory (1 KB reserved per block), threads, the 32-block limit.
    const long by_smem = static_cast<long>(kSmemPerSm / (shape.smem + 1024));
    const long by_threads = kMaxThreadsPerSm / static_cast<long>(threads);
    const long per_sm = std::min({by_smem, by_threads, 32L});
    *clusters = C == 1 ? static_cast<int>(per_sm * kSms)
                       : static_cast<int>(kGpcs * ((kSmsPerGpc * per_sm) / C));
    return cudaSuccess;
}

void warm_up_execution();  // execute.cpp

namespace {
// The runtime's shared objects are made at program start, on the main thread, before any stream
// or cluster worker exists: their one-time initialisation is then ordered before every use
// (this file is not instrumented by ThreadSanitizer, so a lazy initialisation's guard would not
// be seen as synchronisation). None of them is ever destroyed.
const bool g_ready = [] {
    options();
    lock();
    changed();
    counters();
    live();
    freed();
    quarantine();
    all_streams();
    live_streams();
    all_events();
    live_events();
    attributes();
    launch_bound(nullptr);
    warm_up_execution();
    return true;
}();
}  // namespace

}  // namespace emu

// ================================================================== the CUDA runtime API

using emu::fail;
using emu::lock;
using emu::sticky;

namespace {

#define EMU_STICKY()                                    \
    do {                                                \
        if (cudaError_t s_ = sticky()) return fail(s_); \
    } while (0)

emu::StreamState* stream_or(cudaStream_t s, cudaError_t* err) {
    return emu::resolve(s, err);
}

}  // namespace

cudaError_t cudaGetDeviceCount(int* count) {
    if (!count) return fail(cudaErrorInvalidValue);
    *count = emu::options().devices;
    return *count ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaGetDevice(int* device) {
    if (!device) return fail(cudaErrorInvalidValue);
    if (emu::options().devices == 0) return fail(cudaErrorNoDevice);
    *device = emu::current_device();
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    EMU_STICKY();
    if (!emu::valid_device(device)) return fail(cudaErrorInvalidDevice);
    emu::t_device = device;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    if (!value) return fail(cudaErrorInvalidValue);
    if (!emu::valid_device(device)) return fail(cudaErrorInvalidDevice);
    switch (attr) {
        case cudaDevAttrMaxThreadsPerBlock:
            *value = emu::kMaxThreadsPerBlock;
            break;
        case cudaDevAttrMaxSharedMemoryPerBlock:
            *value = 48 * 1024;
            break;
        case cudaDevAttrWarpSize:
            *value = 32;
            break;
        case cudaDevAttrMultiProcessorCount:
            *value = emu::kSms;
            break;
        case cudaDevAttrComputeCapabilityMajor:
            *value = 9;
            break;
        case cudaDevAttrComputeCapabilityMinor:
            *value = 0;
            break;
        case cudaDevAttrMaxSharedMemoryPerMultiprocessor:
            *value = int(emu::kSmemPerSm);
            break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin:
            *value = int(emu::kOptinSmem);
            break;
        case cudaDevAttrClusterLaunch:
            *value = 1;
            break;
        default:
            return fail(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
    if (!p) return fail(cudaErrorInvalidValue);
    if (!emu::valid_device(device)) return fail(cudaErrorInvalidDevice);
    *p = cudaDeviceProp{};
    std::snprintf(p->name, sizeof p->name, "eirnn emulated device (H100 SXM limits, on the CPU)");
    p->totalGlobalMem = emu::device_memory();
    p->sharedMemPerBlock = 48 * 1024;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = emu::kMaxThreadsPerBlock;
    p->maxThreadsDim[0] = 1024;
    p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff;
    p->maxGridSize[1] = 65535;
    p->maxGridSize[2] = 65535;
    p->clockRate = 1980000;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = emu::kSms;
    p->l2CacheSize = 50 << 20;
    p->maxThreadsPerMultiProcessor = emu::kMaxThreadsPerSm;
    p->sharedMemPerMultiprocessor = emu::kSmemPerSm;
    p->sharedMemPerBlockOptin = emu::kOptinSmem;
    p->clusterLaunch = 1;
    p->memoryBusWidth = 5120;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
    {
        std::unique_lock<std::mutex> g(lock());
        for (auto& h : emu::all_streams()) {
            emu::StreamState* s = h->state;
            if (s->device != emu::current_device()) continue;
            const std::uint64_t target = s->enqueued;
            emu::changed().wait(g, [&] { return s->completed >= target; });
        }
    }
    EMU_STICKY();
    return cudaSuccess;
}

cudaError_t cudaDeviceReset() {
    return cudaDeviceSynchronize();
}

cudaError_t cudaGetLastError() {
    cudaError_t e = emu::t_last_error;
    emu::t_last_error = cudaSuccess;
    if (e == cudaSuccess) e = sticky();
    return e;
}

cudaError_t cudaPeekAtLastError() {
    return emu::t_last_error != cudaSuccess ? emu::t_last_error : sticky();
}

const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define EMU_NAME(x) \
    case x:         \
        return #x;
        EMU_NAME(cudaSuccess)
        EMU_NAME(cudaErrorInvalidValue)
        EMU_NAME(cudaErrorMemoryAllocation)
        EMU_NAME(cudaErrorInitializationError)
        EMU_NAME(cudaErrorInvalidConfiguration)
        EMU_NAME(cudaErrorInvalidDevicePointer)
        EMU_NAME(cudaErrorInvalidMemcpyDirection)
        EMU_NAME(cudaErrorNoDevice)
        EMU_NAME(cudaErrorInvalidDevice)
        EMU_NAME(cudaErrorInvalidResourceHandle)
        EMU_NAME(cudaErrorNotReady)
        EMU_NAME(cudaErrorIllegalAddress)
        EMU_NAME(cudaErrorLaunchOutOfResources)
        EMU_NAME(cudaErrorIllegalInstruction)
        EMU_NAME(cudaErrorMisalignedAddress)
        EMU_NAME(cudaErrorLaunchFailure)
        EMU_NAME(cudaErrorNotSupported)
        EMU_NAME(cudaErrorInvalidClusterSize)
        EMU_NAME(cudaErrorUnknown)
#undef EMU_NAME
    }
    return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess:
            return "no error";
        case cudaErrorInvalidValue:
            return "invalid argument";
        case cudaErrorMemoryAllocation:
            return "out of memory";
        case cudaErrorInvalidConfiguration:
            return "invalid configuration argument";
        case cudaErrorNoDevice:
            return "no CUDA-capable device is detected";
        case cudaErrorInvalidDevice:
            return "invalid device ordinal";
        case cudaErrorInvalidResourceHandle:
            return "invalid resource handle";
        case cudaErrorNotReady:
            return "device not ready";
        case cudaErrorIllegalAddress:
            return "an illegal memory access was encountered";
        case cudaErrorLaunchOutOfResources:
            return "too many resources requested for launch";
        case cudaErrorLaunchFailure:
            return "unspecified launch failure";
        case cudaErrorInvalidClusterSize:
            return "cluster misconfiguration";
        default:
            return cudaGetErrorName(e);
    }
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total) {
    EMU_STICKY();
    if (!free_bytes || !total) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(lock());
    *total = emu::device_memory();
    const std::size_t used = emu::g_device_used[emu::current_device()];
    *free_bytes = used > *total ? 0 : *total - used;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
    EMU_STICKY();
    if (!ptr) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(lock());
    return fail(emu::allocate_device(ptr, bytes));
}

cudaError_t cudaFree(void* ptr) {
    {
        // cudaFree synchronises with the device before releasing (implicitly, as documented).
        std::unique_lock<std::mutex> g(lock());
        for (auto& h : emu::all_streams()) {
            emu::StreamState* s = h->state;
            const std::uint64_t target = s->enqueued;
            emu::changed().wait(g, [&] { return s->completed >= target; });
        }
        if (cudaError_t e = emu::release(ptr, emu::MemKind::kDevice)) return fail(e);
    }
    EMU_STICKY();
    return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** ptr, std::size_t bytes, cudaStream_t stream) {
    EMU_STICKY();
    if (!ptr) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(lock());
    cudaError_t e = cudaSuccess;
    if (!stream_or(stream, &e)) return fail(e);
    return fail(emu::allocate_device(ptr, bytes));
}

cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream) {
    EMU_STICKY();
    std::lock_guard<std::mutex> g(lock());
    cudaError_t e = cudaSuccess;
    emu::StreamState* s = stream_or(stream, &e);
    if (!s) return fail(e);
    if (!ptr) return cudaSuccess;
    auto it = emu::live().find(static_cast<const std::byte*>(ptr));
    if (it == emu::live().end() || it->second.kind != emu::MemKind::kDevice)
        return fail(cudaErrorInvalidValue);
    // Freed in stream order: once the work enqueued before it has run.
    emu::push(s,
              [ptr] {
                  std::lock_guard<std::mutex> g2(lock());
                  emu::release(ptr, emu::MemKind::kDevice);
              },
              {});
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, std::size_t bytes) {
    EMU_STICKY();
    if (!ptr) return fail(cudaErrorInvalidValue);
    *ptr = nullptr;
    if (bytes == 0) return cudaSuccess;
    void* p = nullptr;
    if (posix_memalign(&p, 4096, bytes) != 0) return fail(cudaErrorMemoryAllocation);
    std::lock_guard<std::mutex> g(lock());
    emu::Allocation a;
    a.size = bytes;
    a.raw = p;
    a.kind = emu::MemKind::kPinned;
    emu::live()[static_cast<const std::byte*>(p)] = a;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned) {
    return cudaMallocHost(ptr, bytes);
}

cudaError_t cudaFreeHost(void* ptr) {
    std::lock_guard<std::mutex> g(lock());
    return fail(emu::release(ptr, emu::MemKind::kPinned));
}

namespace {

enum class Side { kDevice, kPinned, kPageable };

/// Classifies one side of a copy; InvalidValue when it touches freed device memory or runs past
/// the end of a device or pinned allocation. lock() held.
cudaError_t classify(const void* p, std::size_t bytes, Side* side, int* device) {
    if (!p) return cudaErrorInvalidValue;
    const emu::Region r = emu::find_region(p, bytes);
    if (r.freed) return cudaErrorInvalidValue;
    if (r.kind == emu::MemKind::kNone) {
        *side = Side::kPageable;
        return cudaSuccess;
    }
    if (!r.inside) return cudaErrorInvalidValue;
    *side = r.kind == emu::MemKind::kDevice ? Side::kDevice : Side::kPinned;
    *device = r.device;
    return cudaSuccess;
}

cudaError_t check_copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                       bool* pageable) {
    Side ds, ss;
    int dd = 0, sd = 0;
    if (cudaError_t e = classify(dst, bytes, &ds, &dd)) return e;
    if (cudaError_t e = classify(src, bytes, &ss, &sd)) return e;
    const bool dev_dst = ds == Side::kDevice, dev_src = ss == Side::kDevice;
    switch (kind) {
        case cudaMemcpyHostToDevice:
            if (!dev_dst || dev_src) return cudaErrorInvalidValue;
            break;
        case cudaMemcpyDeviceToHost:
            if (dev_dst || !dev_src) return cudaErrorInvalidValue;
            break;
        case cudaMemcpyDeviceToDevice:
            if (!dev_dst || !dev_src) return cudaErrorInvalidValue;
            break;
        case cudaMemcpyHostToHost:
            if (dev_dst || dev_src) return cudaErrorInvalidValue;
            break;
        case cudaMemcpyDefault:
            break;
        default:
            return cudaErrorInvalidMemcpyDirection;
    }
    *pageable = ds == Side::kPageable || ss == Side::kPageable;
    return cudaSuccess;
}

cudaError_t check_set(void* ptr, std::size_t bytes) {
    const emu::Region r = emu::find_region(ptr, bytes);
    if (!ptr || r.kind != emu::MemKind::kDevice || !r.inside) return cudaErrorInvalidValue;
    return cudaSuccess;
}

}  // namespace

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    EMU_STICKY();
    if (bytes == 0) return cudaSuccess;
    std::unique_lock<std::mutex> g(lock());
    cudaError_t e = cudaSuccess;
    emu::StreamState* s = stream_or(stream, &e);
    if (!s) return fail(e);
    bool pageable = false;
    if ((e = check_copy(dst, src, bytes, kind, &pageable))) return fail(e);
    emu::note_async_copy(pageable);
    if (!pageable) {
        emu::push(s, [dst, src, bytes] { std::memmove(dst, src, bytes); }, {});
        return cudaSuccess;
    }
    // Pageable host memory: the copy is synchronous for the host (it waits for the stream).
    emu::push(s, [dst, src, bytes] { std::memmove(dst, src, bytes); }, {});
    emu::wait_idle(s);
    g.unlock();
    EMU_STICKY();
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
    EMU_STICKY();
    if (bytes == 0) return cudaSuccess;
    std::unique_lock<std::mutex> g(lock());
    cudaError_t e = cudaSuccess;
    emu::StreamState* s = stream_or(nullptr, &e);
    if (!s) return fail(e);
    bool pageable = false;
    if ((e = check_copy(dst, src, bytes, kind, &pageable))) return fail(e);
    // On the legacy stream, complete before returning.
    emu::push(s, [dst, src, bytes] { std::memmove(dst, src, bytes); }, {});
    emu::wait_idle(s);
    g.unlock();
    EMU_STICKY();
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t stream) {
    EMU_STICKY();
    if (bytes == 0) return cudaSuccess;
    std::lock_guard<std::mutex> g(lock());
    cudaError_t e = cudaSuccess;
    emu::StreamState* s = stream_or(stream, &e);
    if (!s) return fail(e);
    if ((e = check_set(ptr, bytes))) return fail(e);
    emu::push(s, [ptr, value, bytes] { std::memset(ptr, value, bytes); }, {});
    return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
    if (cudaError_t e = cudaMemsetAsync(ptr, value, bytes, nullptr)) return e;
    std::lock_guard<std::mutex> g(lock());
    cudaError_t e = cudaSuccess;
    emu::wait_idle(stream_or(nullptr, &e));
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
    EMU_STICKY();
    if (!stream || flags > cudaStreamNonBlocking) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(lock());
    if (!emu::valid_device(emu::current_device())) return fail(cudaErrorNoDevice);
    emu::new_stream(emu::current_device(), flags == cudaStreamDefault, false);
    *stream = emu::all_streams().back().get();
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
    return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    emu::StreamState* s = nullptr;
    {
        std::lock_guard<std::mutex> g(lock());
        if (!stream || !emu::live_streams().count(stream))
            return fail(cudaErrorInvalidResourceHandle);
        emu::live_streams().erase(stream);
        s = stream->state;
        s->destroyed = true;
        s->stop = true;  // the worker finishes the queue, then ends
        emu::changed().notify_all();
    }
    s->worker.join();
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    {
        std::lock_guard<std::mutex> g(lock());
        cudaError_t e = cudaSuccess;
        emu::StreamState* s = stream_or(stream, &e);
        if (!s) return fail(e);
        emu::wait_idle(s);
    }
    EMU_STICKY();
    return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
    EMU_STICKY();
    std::lock_guard<std::mutex> g(lock());
    cudaError_t e = cudaSuccess;
    emu::StreamState* s = stream_or(stream, &e);
    if (!s) return fail(e);
    return s->completed >= s->enqueued ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
    EMU_STICKY();
    if (!event || flags > (cudaEventBlockingSync | cudaEventDisableTiming))
        return fail(cudaErrorInvalidValue);
    auto* e = new CUevent_st;  // kept for the life of the process (see all_streams)
    e->state.flags = flags;
    std::lock_guard<std::mutex> g(lock());
    emu::all_events().emplace_back(e);
    emu::live_events().insert(e);
    *event = e;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    std::lock_guard<std::mutex> g(lock());
    if (!event || !emu::live_events().count(event)) return fail(cudaErrorInvalidResourceHandle);
    emu::live_events().erase(event);
    event->state.destroyed = true;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    EMU_STICKY();
    std::lock_guard<std::mutex> g(lock());
    if (!event || !emu::live_events().count(event)) return fail(cudaErrorInvalidResourceHandle);
    cudaError_t e = cudaSuccess;
    emu::StreamState* s = stream_or(stream, &e);
    if (!s) return fail(e);
    EventState* ev = &event->state;
    const std::uint64_t gen = ++ev->generation;
    ev->stream = s;
    ev->timed = false;
    ev->seq = emu::push(s,
                        [ev, gen] {
                            const auto now = std::chrono::steady_clock::now();
                            std::lock_guard<std::mutex> g2(lock());
                            if (ev->generation == gen) {
                                ev->time = now;
                                ev->timed = true;
                            }
                        },
                        {});
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags) {
    EMU_STICKY();
    if (flags != 0) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(lock());
    if (!event || !emu::live_events().count(event)) return fail(cudaErrorInvalidResourceHandle);
    cudaError_t e = cudaSuccess;
    emu::StreamState* s = stream_or(stream, &e);
    if (!s) return fail(e);
    const EventState& ev = event->state;
    if (!ev.stream) return cudaSuccess;  // never recorded: nothing to wait for
    emu::push(s, [] {}, {{ev.stream, ev.seq}});
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    {
        std::unique_lock<std::mutex> g(lock());
        if (!event || !emu::live_events().count(event)) return fail(cudaErrorInvalidResourceHandle);
        const EventState& ev = event->state;
        emu::StreamState* s = ev.stream;
        const std::uint64_t seq = ev.seq;
        emu::changed().wait(g, [&] { return !s || s->completed >= seq; });
    }
    EMU_STICKY();
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
    EMU_STICKY();
    std::lock_guard<std::mutex> g(lock());
    if (!event || !emu::live_events().count(event)) return fail(cudaErrorInvalidResourceHandle);
    return emu::event_complete(event->state) ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    EMU_STICKY();
    if (!ms) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(lock());
    for (cudaEvent_t ev : {start, end})
        if (!ev || !emu::live_events().count(ev)) return fail(cudaErrorInvalidResourceHandle);
    const EventState &a = start->state, &b = end->state;
    if ((a.flags | b.flags) & cudaEventDisableTiming) return fail(cudaErrorInvalidResourceHandle);
    if (!a.stream || !b.stream) return fail(cudaErrorInvalidResourceHandle);
    if (!emu::event_complete(a) || !emu::event_complete(b)) return fail(cudaErrorNotReady);
    *ms = std::chrono::duration<float, std::milli>(b.time - a.time).count();
    return cudaSuccess;
}
