// Kernels on the emulated device: every CUDA thread is a fiber with its own stack; the
// fibers of one cluster are scheduled cooperatively on one OS thread (clusters of a grid on a
// small pool), deterministically, until each blocks at a barrier, a warp operation or a cluster
// barrier, or exits. A barrier whose participants cannot all arrive is a deadlock the scheduler
// sees at once: it is reported with the kernel's name and where each waiting thread stands.
//
// ThreadSanitizer: each emulated thread is a TSan fiber, switched to without synchronisation; the
// only happens-before edges are those the hardware gives: launch -> every thread, barrier
// arrivals -> barrier departures (__syncthreads, __syncwarp, cluster.sync), every thread -> the
// launch's completion. Shuffles exchange values without ordering memory, as on the device. This
// file is compiled without TSan instrumentation (its own bookkeeping is ordered by construction);
// what runs on an emulated thread's behalf allocates nothing and calls no intercepted library
// function (its containers are sized when the cluster is made), so ThreadSanitizer never sees the
// emulator's own memory as shared between emulated threads.
#include <sys/mman.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "internal.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// ---- the context switch: callee-saved registers, MXCSR and the x87 control word on the stack ----
#if defined(__x86_64__)
extern "C" void eirnn_emu_switch(void** save_sp, void* next_sp);
extern "C" void eirnn_emu_fiber_start();
asm(R"(
    .text
    .globl eirnn_emu_switch
    .type eirnn_emu_switch, @function
eirnn_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size eirnn_emu_switch, .-eirnn_emu_switch

    .globl eirnn_emu_fiber_start
    .type eirnn_emu_fiber_start, @function
eirnn_emu_fiber_start:
    movq %r12, %rdi
    call eirnn_emu_fiber_main
    ud2
    .size eirnn_emu_fiber_start, .-eirnn_emu_fiber_start
)");
#endif

namespace emu {
namespace {

constexpr std::size_t kPage = 4096;

struct Cta;
struct Cluster;
struct Launch;

enum class State { kReady, kBlocked, kExited };

/// Where a blocked thread waits (for the report of a deadlock).
struct Wait {
    const char* what = "";
    std::source_location where;
    long count = 0;
    unsigned mask = 0;
};

struct Thread {
    Cta* cta = nullptr;
    Cluster* cl = nullptr;
    ThreadView view{};
    const ThreadView* running_view = &view;  // the copy on the thread's own stack once it runs
    bool started = false;
    unsigned linear = 0, lane = 0, warp = 0;
    State state = State::kReady;
    Wait wait;
    long syncthreads = 0, syncwarps = 0, cluster_syncs = 0;
    std::uint64_t shuffle_result = 0;
#if defined(__x86_64__)
    void* sp = nullptr;  // saved stack pointer while switched out
#else
    ucontext_t ctx{};
#endif
    void* stack = nullptr;
    std::size_t stack_bytes = 0;
    void* tsan_fiber = nullptr;
    void* asan_fake_stack = nullptr;
    char name[96] = {};
};

/// A barrier of a changing set of participants (exited threads drop out, as on the device).
struct Barrier {
    const char* what = "";
    int expected = 0, arrived = 0;
    long generation = 0;
    std::source_location site;  // of the first arrival of the current generation
    long count = 0;             // the first arrival's own count of this barrier kind
    std::vector<Thread*> waiters;
    char sync[2] = {};  // ThreadSanitizer sync objects, one per generation parity
};

/// A warp operation in progress: the lanes of `mask` that have arrived so far.
struct WarpOp {
    bool shuffle = false;
    unsigned mask = 0, arrived = 0;
    std::source_location where;
    std::uint64_t value[32] = {};
    ShuffleMode mode[32] = {};
    int arg[32] = {}, width[32] = {};
    Thread* lanes[32] = {};
};

struct Warp {
    unsigned existing = 0;  // lanes that exist in this block
    unsigned exited = 0;
    WarpOp ops[8];  // in progress: those with a non-zero mask (a lane is in one at a time)
    long generation[32] = {};
    char sync[32][2] = {};
};

struct Cta {
    unsigned rank = 0;
    unsigned idx[3] = {};
    std::byte* dynamic = nullptr;  // dynamic shared memory (after the misalignment, if any)
    std::size_t dynamic_bytes = 0;
    void* raw = nullptr;  // the mapping or heap block of the dynamic part
    std::size_t mapped = 0;
    struct Static {
        const void* key;
        std::byte* p;
        std::size_t bytes;
    };
    std::vector<Static> statics;  // static arrays by declaration
    std::size_t static_used = 0;
    int alive = 0;
    bool exited = false;
    Barrier bar;
    std::vector<Warp> warps;
};

struct Cluster {
    Launch* launch = nullptr;
    std::vector<std::unique_ptr<Cta>> ctas;
    std::vector<std::unique_ptr<Thread>> threads;
    // Threads ready to run: a ring buffer sized for every thread of the cluster (no allocation
    // once the cluster runs).
    std::vector<Thread*> ready;
    std::size_t head = 0, count = 0;
    void push_ready(Thread* t) {
        ready[(head + count) % ready.size()] = t;
        ++count;
    }
    Thread* pop_ready() {
        Thread* t = ready[head];
        head = (head + 1) % ready.size();
        --count;
        return t;
    }
    Barrier bar;
    int alive = 0;
    char setup_sync = 0;   // the scheduler's set-up (memory, stacks) -> the cluster's threads
    bool abandon = false;  // the launch failed: blocked threads end without going on
#if defined(__x86_64__)
    void* sched_sp = nullptr;
#else
    ucontext_t sched{};
#endif
    void* tsan_sched = nullptr;
    const void* asan_bottom = nullptr;
    std::size_t asan_size = 0;
};

struct Launch {
    const void* kernel = nullptr;
    std::string name;
    LaunchShape shape;
    const std::function<void()>* body = nullptr;
    unsigned threads = 0, blocks = 0, cluster = 0, clusters = 0;
    std::atomic<unsigned> next{0};
    std::atomic<unsigned> done{0};
    std::atomic<bool> failed{false};
    bool faults = false;  // fault injection applies to this kernel
    char start_sync = 0, end_sync = 0;
};

thread_local Thread* t_self = nullptr;

std::string describe(const Launch& L) {
    char buf[160];
    std::snprintf(buf, sizeof buf, " <<<(%u,%u,%u), (%u,%u,%u), %zu>>>", L.shape.grid[0],
                  L.shape.grid[1], L.shape.grid[2], L.shape.block[0], L.shape.block[1],
                  L.shape.block[2], L.shape.smem);
    return "kernel " + L.name + buf;
}

std::string where_text(const std::source_location& w) {
    std::string f = w.file_name();
    const auto slash = f.rfind('/');
    if (slash != std::string::npos) {
        const auto prev = f.rfind('/', slash - 1);
        f = f.substr(prev == std::string::npos ? 0 : prev + 1);
    }
    return f + ":" + std::to_string(w.line());
}

std::string block_text(const Cta& c) {
    return "block (" + std::to_string(c.idx[0]) + "," + std::to_string(c.idx[1]) + "," +
           std::to_string(c.idx[2]) + ")";
}

// ------------------------------------------------------------------ fiber switching

/// Stacks are mapped once with a guard page below each (an overflow faults) and reused.
struct StackPool {
    std::mutex m;
    std::vector<void*> free;
    std::size_t bytes = 0;
};
StackPool& stacks() {
    static auto* p = new StackPool;
    return *p;
}

void* stack_alloc(std::size_t bytes) {
    StackPool& pool = stacks();
    {
        std::lock_guard<std::mutex> g(pool.m);
        if (pool.bytes != bytes) {
            for (void* p : pool.free)
                munmap(static_cast<std::byte*>(p) - kPage, pool.bytes + kPage);
            pool.free.clear();
            pool.bytes = bytes;
        }
        if (!pool.free.empty()) {
            void* p = pool.free.back();
            pool.free.pop_back();
#if defined(__SANITIZE_ADDRESS__)
            ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#endif
            return p;
        }
    }
    void* p =
        mmap(nullptr, bytes + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        std::fprintf(stderr, "eirnn-emu: cannot map a thread stack\n");
        std::abort();
    }
    mprotect(p, kPage, PROT_NONE);
    return static_cast<std::byte*>(p) + kPage;
}

[[maybe_unused]] void stack_free(void* p, std::size_t bytes) {
    StackPool& pool = stacks();
    std::lock_guard<std::mutex> g(pool.m);
    if (pool.bytes == bytes && pool.free.size() < 8192) {
        pool.free.push_back(p);
        return;
    }
    munmap(static_cast<std::byte*>(p) - kPage, bytes + kPage);
}

std::size_t stack_bytes() {
    if (options().stack_bytes) return (options().stack_bytes + kPage - 1) / kPage * kPage;
#if defined(__SANITIZE_ADDRESS__)
    return 256 * 1024;
#elif defined(EIRNN_EMU_TSAN)
    return 64 * 1024;
#else
    return 64 * 1024;
#endif
}

/// From the scheduler to thread t; returns when t blocks or exits.
void switch_to(Cluster& cl, Thread* t) {
    t_self = t;
    t_view = t->running_view;
#if defined(EIRNN_EMU_TSAN)
    __tsan_switch_to_fiber(t->tsan_fiber, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(__SANITIZE_ADDRESS__)
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, t->stack, t->stack_bytes);
#endif
#if defined(__x86_64__)
    eirnn_emu_switch(&cl.sched_sp, t->sp);
#else
    swapcontext(&cl.sched, &t->ctx);
#endif
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    t_self = nullptr;
    t_view = nullptr;
}

/// From the running thread back to its scheduler; `final`: it will never be resumed.
void switch_out(Thread* t, bool final) {
    Cluster& cl = *t->cl;
#if defined(EIRNN_EMU_TSAN)
    __tsan_switch_to_fiber(cl.tsan_sched, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(final ? nullptr : &t->asan_fake_stack, cl.asan_bottom,
                                   cl.asan_size);
#endif
#if defined(__x86_64__)
    eirnn_emu_switch(&t->sp, cl.sched_sp);
#else
    swapcontext(&t->ctx, &cl.sched);
#endif
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(t->asan_fake_stack, nullptr, nullptr);
#endif
    (void) final;
}

/// A thread of a failed launch: what it did happens before the launch's end; it never goes on.
[[noreturn]] void abandon_here(Thread* t) {
    EMU_TSAN_RELEASE(&t->cl->launch->end_sync);
    t->state = State::kBlocked;
    switch_out(t, true);
    std::abort();  // never resumed
}

/// From the running thread back to its scheduler (exiting: it never comes back).
void yield(Thread* t, bool exiting) {
    switch_out(t, exiting);
    if (t->cl->abandon) abandon_here(t);
}

[[noreturn]] void stop_here(Thread* t) {
    EMU_TSAN_RELEASE(&t->cl->launch->end_sync);
    t->state = State::kBlocked;
    t->wait.what = "a device fault";
    for (;;) yield(t, false);
}

/// A rule broken inside a kernel by thread t: the launch stops, and so does the running thread.
[[noreturn]] void kernel_fault(Thread* t, cudaError_t e, const std::string& what) {
    Launch& L = *t->cl->launch;
    bool expected = false;
    if (L.failed.compare_exchange_strong(expected, true)) {
        char who[96];
        std::snprintf(who, sizeof who, ", thread (%u,%u,%u)", t->view.tid[0], t->view.tid[1],
                      t->view.tid[2]);
        device_fault(e, describe(L) + ", " + block_text(*t->cta) + who + ": " + what);
    }
    stop_here(t_self);
}

Thread* self(const char* what) {
    Thread* t = t_self;
    if (!t) not_in_kernel(what);
    return t;
}

// ------------------------------------------------------------------ barriers

void complete(Cluster& cl, Barrier& b) {
    for (Thread* w : b.waiters) {
        w->state = State::kReady;
        cl.push_ready(w);
    }
    b.waiters.clear();
    b.arrived = 0;
    ++b.generation;
}

/// Thread t arrives at b (its own count of such barriers: count). Returns when b completes.
void arrive(Thread* t, Barrier& b, const std::source_location& where, long count) {
    if (b.arrived == 0) {
        b.site = where;
        b.count = count;
    } else if (b.count != count || b.site.line() != where.line() ||
               (b.site.file_name() != where.file_name() &&
                std::strcmp(b.site.file_name(), where.file_name()) != 0)) {
        kernel_fault(t, cudaErrorLaunchFailure,
                     std::string("divergent barrier: ") + b.what + " at " + where_text(where) +
                         " (this thread's call " + std::to_string(count) + ") while " +
                         std::to_string(b.arrived) + " thread(s) wait at " + where_text(b.site) +
                         " (their call " + std::to_string(b.count) + ")");
    }
    const long gen = b.generation;
    EMU_TSAN_RELEASE(&b.sync[gen & 1]);
    ++b.arrived;
    if (b.arrived == b.expected) {
        complete(*t->cl, b);  // t goes on at once; the waiters were made ready
    } else {
        b.waiters.push_back(t);
        t->state = State::kBlocked;
        t->wait = {b.what, where, count, 0};
        yield(t, false);
    }
    EMU_TSAN_ACQUIRE(&b.sync[gen & 1]);
}

/// An exited thread no longer holds up b.
void drop(Cluster& cl, Barrier& b) {
    --b.expected;
    if (b.arrived > 0 && b.arrived == b.expected) complete(cl, b);
}

// ------------------------------------------------------------------ warp operations

unsigned lane_bit(unsigned lane) {
    return 1u << lane;
}

std::string hex(unsigned mask) {
    char m[16];
    std::snprintf(m, sizeof m, "0x%08x", mask);
    return m;
}

/// Finishes op (every participating lane has arrived): shuffle results, waiters ready.
void finish_warp_op(Cluster& cl, WarpOp& op, Thread* current) {
    if (op.shuffle) {
        for (unsigned l = 0; l < 32; ++l) {
            if (!(op.arrived & lane_bit(l))) continue;
            const int width = op.width[l];
            const int seg = static_cast<int>(l) / width * width;
            int src = static_cast<int>(l);
            switch (op.mode[l]) {
                case ShuffleMode::kIdx:
                    src = seg + ((op.arg[l] % width) + width) % width;
                    break;
                case ShuffleMode::kUp:
                    src = static_cast<int>(l) - op.arg[l];
                    if (src < seg) src = static_cast<int>(l);
                    break;
                case ShuffleMode::kDown:
                    src = static_cast<int>(l) + op.arg[l];
                    if (src >= seg + width) src = static_cast<int>(l);
                    break;
                case ShuffleMode::kXor:
                    src = static_cast<int>(l) ^ op.arg[l];
                    if (src >= seg + width) src = static_cast<int>(l);
                    break;
            }
            if (src < 0 || src > 31 || !(op.arrived & lane_bit(static_cast<unsigned>(src))))
                kernel_fault(op.lanes[l], cudaErrorIllegalInstruction,
                             "warp shuffle at " + where_text(op.where) + ": lane " +
                                 std::to_string(l) + " reads lane " + std::to_string(src) +
                                 ", which is not in the mask " + hex(op.mask) +
                                 " or has exited (an undefined value)");
            op.lanes[l]->shuffle_result = op.value[src];
        }
    }
    for (unsigned l = 0; l < 32; ++l) {
        Thread* t = op.lanes[l];
        op.lanes[l] = nullptr;
        if (!t || t == current) continue;
        t->state = State::kReady;
        cl.push_ready(t);
    }
    op.mask = 0;
    op.arrived = 0;
}

void warp_op(Thread* t, bool shuffle, unsigned mask, std::uint64_t value, ShuffleMode mode, int arg,
             int width, const std::source_location& where) {
    Warp& w = t->cta->warps[t->warp];
    const char* what = shuffle ? "warp shuffle" : "__syncwarp";
    if (!(mask & lane_bit(t->lane)))
        kernel_fault(t, cudaErrorIllegalInstruction,
                     std::string(what) + " at " + where_text(where) + ": the mask " + hex(mask) +
                         " does not name the calling lane " + std::to_string(t->lane));
    if (mask & ~w.existing)
        kernel_fault(t, cudaErrorIllegalInstruction,
                     std::string(what) + " at " + where_text(where) + ": the mask " + hex(mask) +
                         " names lanes that do not exist (the warp has " +
                         std::to_string(__builtin_popcount(w.existing)) + " threads)");
    if (shuffle && (width < 1 || width > 32 || (width & (width - 1))))
        kernel_fault(t, cudaErrorIllegalInstruction,
                     std::string(what) + " at " + where_text(where) + ": width " +
                         std::to_string(width) + " is not a power of 2 up to 32");
    // The operation of this mask in progress, or a free slot for it.
    WarpOp* op = nullptr;
    for (WarpOp& o : w.ops)
        if (o.mask == mask) op = &o;
    if (!op) {
        for (WarpOp& o : w.ops)
            if (o.mask == 0) {
                op = &o;
                break;
            }
        if (!op)
            kernel_fault(t, cudaErrorIllegalInstruction,
                         std::string(what) + " at " + where_text(where) +
                             ": more than 8 warp operations with different masks at once");
        op->shuffle = shuffle;
        op->mask = mask;
        op->arrived = 0;
        op->where = where;
    } else if (op->shuffle != shuffle) {
        kernel_fault(t, cudaErrorIllegalInstruction,
                     std::string(what) + " at " + where_text(where) + " while lanes of the mask " +
                         hex(mask) + " wait at " + (op->shuffle ? "a shuffle" : "__syncwarp") +
                         " at " + where_text(op->where));
    }
    op->arrived |= lane_bit(t->lane);
    op->value[t->lane] = value;
    op->mode[t->lane] = mode;
    op->arg[t->lane] = arg;
    op->width[t->lane] = width;
    op->lanes[t->lane] = t;
    const unsigned first = static_cast<unsigned>(__builtin_ctz(mask));
    const long gen = w.generation[first];
    if (!shuffle) EMU_TSAN_RELEASE(&w.sync[first][gen & 1]);
    const unsigned needed = mask & w.existing & ~w.exited;
    if ((op->arrived & needed) == needed) {
        ++w.generation[first];
        finish_warp_op(*t->cl, *op, t);
    } else {
        t->state = State::kBlocked;
        t->wait = {what, where, 0, mask};
        yield(t, false);
    }
    if (!shuffle) EMU_TSAN_ACQUIRE(&w.sync[first][gen & 1]);
}

/// Lane t exited: warp operations that waited only for it complete.
void drop_from_warp(Thread* t) {
    Warp& w = t->cta->warps[t->warp];
    w.exited |= lane_bit(t->lane);
    for (WarpOp& op : w.ops) {
        if (!op.mask) continue;
        const unsigned needed = op.mask & w.existing & ~w.exited;
        if (op.arrived && (op.arrived & needed) == needed) {
            ++w.generation[__builtin_ctz(op.mask)];
            finish_warp_op(*t->cl, op, nullptr);
        }
    }
}

// ------------------------------------------------------------------ shared memory

void release_cta_memory(Cta& c) {
#if defined(__SANITIZE_ADDRESS__)
    std::free(c.raw);
    for (const Cta::Static& a : c.statics) std::free(a.p);
#else
    if (c.mapped)
        munmap(c.raw, c.mapped);
    else
        std::free(c.raw);
#endif
    c.raw = nullptr;
    c.statics.clear();
}

/// Dynamic shared memory, and (without AddressSanitizer) room for the static arrays after it;
/// mapped pages in a cluster (made inaccessible when the block exits), heap memory otherwise.
void make_cta_memory(Cta& c, std::size_t dynamic, [[maybe_unused]] bool cluster) {
    const std::size_t shift = options().misalign_shared;
    c.dynamic_bytes = dynamic;
#if defined(__SANITIZE_ADDRESS__)
    // Heap blocks: ASan's red zones catch accesses past the end; freed when the block exits.
    if (posix_memalign(&c.raw, 128, dynamic + shift + 1) != 0) std::abort();
    c.dynamic = static_cast<std::byte*>(c.raw) + shift;
    std::memset(c.raw, 0xff, dynamic + shift);
#else
    const std::size_t bytes = (dynamic + shift + kStaticSmemLimit + 2 * kPage) / kPage * kPage;
#if defined(EIRNN_EMU_TSAN)
    cluster = true;  // mapped: unmapping forgets the block's accesses (see kReuseStacks)
#endif
    if (cluster) {
        c.mapped = bytes;
        c.raw = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c.raw == MAP_FAILED) std::abort();
    } else if (posix_memalign(&c.raw, kPage, bytes) != 0) {
        std::abort();
    }
    c.dynamic = static_cast<std::byte*>(c.raw) + shift;
    std::memset(c.raw, 0xff, bytes);  // shared memory starts as NaN bit patterns
    (void)cluster;
#endif
}

/// Where p lies in block c's shared memory: the dynamic part (key null) or a static array.
bool in_shared(const Cta& c, const std::byte* p, std::size_t* offset, const void** key) {
    if (p >= c.dynamic && p < c.dynamic + std::max<std::size_t>(c.dynamic_bytes, 1)) {
        *offset = static_cast<std::size_t>(p - c.dynamic);
        *key = nullptr;
        return true;
    }
    for (const Cta::Static& a : c.statics)
        if (p >= a.p && p < a.p + a.bytes) {
            *offset = static_cast<std::size_t>(p - a.p);
            *key = a.key;
            return true;
        }
    return false;
}

/// The static array `key` of block c, made on first use (t: the thread to blame for a fault).
std::byte* static_array_of(Thread* t, Cta& c, const void* key, std::size_t bytes,
                           std::size_t align) {
    for (const Cta::Static& a : c.statics)
        if (a.key == key) return a.p;
    align = std::max<std::size_t>(align, 16);
    const std::size_t at = (c.static_used + align - 1) / align * align;
    if (at + bytes > kStaticSmemLimit || c.dynamic_bytes + at + bytes > kOptinSmem)
        kernel_fault(t, cudaErrorLaunchOutOfResources,
                     "static shared memory of " + std::to_string(at + bytes) + " bytes (with " +
                         std::to_string(c.dynamic_bytes) +
                         " dynamic) is more than a block may have (48 KB static, 227 KB in all)");
    std::byte* p = nullptr;
#if defined(__SANITIZE_ADDRESS__)
    void* raw = nullptr;
    if (posix_memalign(&raw, align, bytes + 1) != 0) std::abort();
    p = static_cast<std::byte*>(raw);
    std::memset(p, 0xff, bytes);  // shared memory starts as NaN bit patterns
#else
    p = c.dynamic + c.dynamic_bytes + at;
#endif
    if (c.statics.size() == c.statics.capacity())
        kernel_fault(t, cudaErrorLaunchOutOfResources, "more than 16 static shared arrays");
    c.static_used = at + bytes;
    c.statics.push_back({key, p, bytes});
    return p;
}

// ------------------------------------------------------------------ running a cluster

void fiber_main(Thread* t) {
    Cluster& cl = *t->cl;
    // The kernel's built-ins read this copy: it lives (and dies, unmapped) with the thread's
    // stack, so no other emulated thread's memory is ever read for threadIdx.
    const ThreadView view = t->view;
    t->running_view = &view;
    t_view = &view;
    t->started = true;
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(nullptr, &cl.asan_bottom, &cl.asan_size);
#endif
    EMU_TSAN_ACQUIRE(&cl.launch->start_sync);
    EMU_TSAN_ACQUIRE(&cl.setup_sync);
    (*cl.launch->body)();
    EMU_TSAN_RELEASE(&cl.launch->end_sync);
    // Exit: leave every barrier; a block whose threads have all exited loses its shared memory.
    t->state = State::kExited;
    Cta& c = *t->cta;
    drop_from_warp(t);
    drop(cl, c.bar);
    drop(cl, cl.bar);
    --cl.alive;
    if (--c.alive == 0) {
        c.exited = true;
        if (cl.ctas.size() > 1) {
#if defined(__SANITIZE_ADDRESS__)
            release_cta_memory(c);  // a peer's late access is a use after free
#else
            mprotect(c.raw, c.mapped, PROT_NONE);  // a peer's late access faults
#endif
        }
    }
    yield(t, true);
    std::abort();  // never resumed
}

#if !defined(__x86_64__)
void fiber_main_ucontext(unsigned hi, unsigned lo) {
    fiber_main(reinterpret_cast<Thread*>((static_cast<std::uintptr_t>(hi) << 32) | lo));
}
#endif

#if defined(EIRNN_EMU_TSAN)
// ThreadSanitizer's fibers are costly to make (most of the run time if made per thread), so each
// worker keeps four sets and the clusters it runs take them in turn. A fiber carries what its
// earlier users did: a block is seen as ordered after the block that ran four clusters earlier on
// the same worker (races between those two blocks are missed; between blocks within four
// clusters of each other, or on different workers, they are seen). Barriers, threads of a block
// and of a cluster are exact.
constexpr int kFiberSets = 4;
// A fiber keeps its own stack for life: only it ever touches that memory.
struct TsanFiber {
    void* fiber;
    void* stack;
};
thread_local std::vector<TsanFiber> t_fiber_sets[kFiberSets];
thread_local int t_fiber_turn = 0;
thread_local std::vector<TsanFiber>* t_fiber_set = nullptr;

void next_fiber_set() {
    t_fiber_set = &t_fiber_sets[t_fiber_turn++ % kFiberSets];
}

const TsanFiber& tsan_fiber(std::size_t i, std::size_t stack_bytes) {
    std::vector<TsanFiber>& set = *t_fiber_set;
    while (set.size() <= i) set.push_back({__tsan_create_fiber(0), stack_alloc(stack_bytes)});
    return set[i];
}
#endif

/// Thread t's stack and initial context, entering fiber_main.
__attribute__((noinline)) void make_fiber(Thread* t, std::size_t bytes) {
    t->stack_bytes = bytes;
#if !defined(EIRNN_EMU_TSAN)
    t->stack = stack_alloc(bytes);
#endif
#if defined(__x86_64__)
    // The frame eirnn_emu_switch pops: MXCSR / x87 word, r15..r12 (r12 = t), rbx, rbp, then the
    // return address eirnn_emu_fiber_start; 16-byte aligned at its call.
    auto* top = reinterpret_cast<std::uint64_t*>(static_cast<std::byte*>(t->stack) + bytes);
    std::uint64_t* f = top - 10;
    std::uint32_t mxcsr = 0;
    std::uint16_t fpcw = 0;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpcw));
    f[0] = mxcsr | (static_cast<std::uint64_t>(fpcw) << 32);
    f[1] = f[2] = f[3] = 0;                     // r15, r14, r13
    f[4] = reinterpret_cast<std::uint64_t>(t);  // r12: the argument
    f[5] = f[6] = 0;                            // rbx, rbp
    f[7] = reinterpret_cast<std::uint64_t>(&eirnn_emu_fiber_start);
    f[8] = f[9] = 0;
    t->sp = f;
#else
    getcontext(&t->ctx);
    t->ctx.uc_stack.ss_sp = t->stack;
    t->ctx.uc_stack.ss_size = bytes;
    t->ctx.uc_link = nullptr;
    const auto p = reinterpret_cast<std::uintptr_t>(t);
    makecontext(&t->ctx, reinterpret_cast<void (*)()>(fiber_main_ucontext), 2,
                static_cast<unsigned>(p >> 32), static_cast<unsigned>(p & 0xffffffffu));
#endif
}

std::string deadlock_report(Cluster& cl) {
    // Group the waiting threads by what they wait at.
    struct Group {
        std::string key;
        std::vector<std::string> who;
    };
    std::vector<Group> groups;
    for (auto& tp : cl.threads) {
        const Thread& t = *tp;
        if (t.state != State::kBlocked) continue;
        std::string key = std::string(t.wait.what) + " at " + where_text(t.wait.where);
        if (t.wait.count) key += " (call " + std::to_string(t.wait.count) + ")";
        if (t.wait.mask) {
            char m[24];
            std::snprintf(m, sizeof m, " mask 0x%08x", t.wait.mask);
            key += m;
        }
        auto it = std::find_if(groups.begin(), groups.end(),
                               [&](const Group& g) { return g.key == key; });
        if (it == groups.end()) {
            groups.push_back({key, {}});
            it = groups.end() - 1;
        }
        it->who.push_back(block_text(*t.cta) + " thread " + std::to_string(t.linear));
    }
    std::string s = "divergent barrier (no thread can go on):";
    for (const Group& g : groups) {
        s += " [" + std::to_string(g.who.size()) + " thread(s) wait at " + g.key + ": " +
             g.who.front();
        if (g.who.size() > 1) s += " ... " + g.who.back();
        s += "]";
    }
    return s;
}

void run_cluster(Launch& L, unsigned index) {
    Cluster cl;
    cl.launch = &L;
    const unsigned threads = L.threads, C = L.cluster;
    const auto* g = L.shape.grid;
    const auto* cd = L.shape.cluster;
    // Blocks of the cluster: cluster index -> its blocks, x fastest within the cluster.
    const unsigned ncx = g[0] / cd[0], ncy = g[1] / cd[1];
    const unsigned cx = index % ncx, cy = (index / ncx) % ncy, cz = index / (ncx * ncy);
    cl.bar.what = "cluster.sync()";
    cl.bar.expected = static_cast<int>(threads * C);
    cl.alive = static_cast<int>(threads * C);
    const std::size_t sbytes = stack_bytes();
#if defined(EIRNN_EMU_TSAN)
    cl.tsan_sched = __tsan_get_current_fiber();
    next_fiber_set();
#endif
    for (unsigned r = 0; r < C; ++r) {
        auto c = std::make_unique<Cta>();
        c->rank = r;
        const unsigned rx = r % cd[0], ry = (r / cd[0]) % cd[1], rz = r / (cd[0] * cd[1]);
        c->idx[0] = cx * cd[0] + rx;
        c->idx[1] = cy * cd[1] + ry;
        c->idx[2] = cz * cd[2] + rz;
        make_cta_memory(*c, L.shape.smem, C > 1);
        c->bar.what = "__syncthreads()";
        c->bar.expected = static_cast<int>(threads);
        c->alive = static_cast<int>(threads);
        c->statics.reserve(16);
        c->warps.resize((threads + 31) / 32);
        for (unsigned w = 0; w < c->warps.size(); ++w) {
            const unsigned n = std::min(32u, threads - 32 * w);
            c->warps[w].existing = n == 32 ? ~0u : (1u << n) - 1;
        }
        cl.ctas.push_back(std::move(c));
    }
    const unsigned bx = L.shape.block[0], by = L.shape.block[1];
    for (unsigned r = 0; r < C; ++r)
        for (unsigned i = 0; i < threads; ++i) {
            auto t = std::make_unique<Thread>();
            Cta& c = *cl.ctas[r];
            t->cta = &c;
            t->cl = &cl;
            t->linear = i;
            t->lane = i % 32;
            t->warp = i / 32;
            t->view.tid[0] = i % bx;
            t->view.tid[1] = (i / bx) % by;
            t->view.tid[2] = i / (bx * by);
            for (int d = 0; d < 3; ++d) {
                t->view.bid[d] = c.idx[d];
                t->view.bdim[d] = L.shape.block[d];
                t->view.gdim[d] = L.shape.grid[d];
            }
#if defined(EIRNN_EMU_TSAN)
            const TsanFiber& f = tsan_fiber(i + r * threads, sbytes);
            t->tsan_fiber = f.fiber;
            t->stack = f.stack;
            std::snprintf(t->name, sizeof t->name, "emulated thread (%u,%u,%u) of block (%u,%u,%u)",
                          t->view.tid[0], t->view.tid[1], t->view.tid[2], c.idx[0], c.idx[1],
                          c.idx[2]);
            __tsan_set_fiber_name(t->tsan_fiber, t->name);
#endif
            make_fiber(t.get(), sbytes);
            cl.ready.push_back(nullptr);
            cl.threads.push_back(std::move(t));
        }
    for (auto& t : cl.threads) cl.push_ready(t.get());
    EMU_TSAN_RELEASE(&cl.setup_sync);
    cl.bar.waiters.reserve(cl.threads.size());
    for (auto& c : cl.ctas) c->bar.waiters.reserve(threads);
    while (cl.count > 0 && !L.failed) {
        Thread* t = cl.pop_ready();
        if (t->state != State::kReady) continue;
        switch_to(cl, t);
    }
    if (cl.alive > 0 && !L.failed.exchange(true))
        device_fault(cudaErrorLaunchFailure, describe(L) + ": " + deadlock_report(cl));
    if (cl.alive > 0) {
        // The launch failed: every started thread still blocked ends once more, so that all it
        // did is ordered before the launch's end (then its memory is released).
        cl.abandon = true;
        for (auto& t : cl.threads)
            if (t->started && t->state != State::kExited) switch_to(cl, t.get());
    }
#if !defined(EIRNN_EMU_TSAN)
    for (auto& t : cl.threads) {
#if defined(__SANITIZE_ADDRESS__)
        ASAN_UNPOISON_MEMORY_REGION(t->stack, t->stack_bytes);
#endif
        stack_free(t->stack, t->stack_bytes);
    }
#endif
    for (auto& c : cl.ctas) release_cta_memory(*c);
}

// ------------------------------------------------------------------ the cluster pool

// Under ThreadSanitizer only the pool's (long-lived) threads run clusters: their fiber sets are
// made once.
#if defined(EIRNN_EMU_TSAN)
constexpr bool kPoolOnly = true;
#else
constexpr bool kPoolOnly = false;
#endif

class Pool {
public:
    static Pool& get() {
        static Pool* p = new Pool;  // never destroyed: workers may outlive static destruction
        return *p;
    }

    /// Runs every cluster of L, on the calling thread and the pool's workers.
    void run(Launch& L) {
        if ((L.clusters > 1 || kPoolOnly) && !workers_.empty()) {
            std::lock_guard<std::mutex> g(m_);
            jobs_.push_back(&L);
            cv_.notify_all();
        }
        if (!kPoolOnly) work_on(L);
        std::unique_lock<std::mutex> g(m_);
        cv_.wait(g, [&] { return L.done == L.clusters && busy_with(&L) == 0; });
        jobs_.erase(std::remove(jobs_.begin(), jobs_.end(), &L), jobs_.end());
    }

private:
    Pool() {
        const int n = options().workers - (kPoolOnly ? 0 : 1);
        for (int i = 0; i < n; ++i) workers_.emplace_back([this] { loop(); });
        for (auto& w : workers_) w.detach();
    }

    void work_on(Launch& L) {
        for (unsigned i = L.next++; i < L.clusters; i = L.next++) {
            if (!L.failed) run_cluster(L, i);
            std::lock_guard<std::mutex> g(m_);
            ++L.done;
            cv_.notify_all();
        }
    }

    int busy_with(Launch* L) const {
        return static_cast<int>(std::count(active_.begin(), active_.end(), L));
    }

    void loop() {
        std::unique_lock<std::mutex> g(m_);
        for (;;) {
            cv_.wait(g, [&] { return !jobs_.empty(); });
            Launch* L = jobs_.front();
            if (L->next >= L->clusters) {
                jobs_.pop_front();
                continue;
            }
            active_.push_back(L);
            g.unlock();
            work_on(*L);
            g.lock();
            active_.erase(std::find(active_.begin(), active_.end(), L));
            cv_.notify_all();
        }
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::deque<Launch*> jobs_;
    std::vector<Launch*> active_;
    std::vector<std::thread> workers_;
};

}  // namespace

void warm_up_execution() {
    stacks();
    Pool::get();
}

namespace {

bool faults_apply(const Launch& L) {
    const Options& o = options();
    if (!o.drop_syncthreads && !o.drop_cluster_sync) return false;
    return o.fault_kernel.empty() || L.name.find(o.fault_kernel) != std::string::npos;
}

}  // namespace

// ------------------------------------------------------------------ entry points

void execute(const void* kernel, const LaunchShape& shape, const std::function<void()>& body) {
    if (sticky()) return;  // the device is in an error state: nothing runs
    Launch L;
    L.kernel = kernel;
    L.name = kernel_name(kernel);
    L.shape = shape;
    L.body = &body;
    L.threads = shape.block[0] * shape.block[1] * shape.block[2];
    L.blocks = shape.grid[0] * shape.grid[1] * shape.grid[2];
    L.cluster = shape.cluster[0] * shape.cluster[1] * shape.cluster[2];
    L.clusters = L.blocks / L.cluster;
    L.faults = faults_apply(L);
    EMU_TSAN_RELEASE(&L.start_sync);
    Pool::get().run(L);
    EMU_TSAN_ACQUIRE(&L.end_sync);
    if (!L.failed) note_launch_done();
}

void syncthreads(const std::source_location& where) {
    Thread* t = self("__syncthreads");
    const long n = ++t->syncthreads;
    const Options& o = options();
    if (t->cl->launch->faults && n == o.drop_syncthreads &&
        (o.drop_syncthreads_warp < 0 || static_cast<unsigned>(o.drop_syncthreads_warp) == t->warp))
        return;  // fault injection: this barrier is skipped
    arrive(t, t->cta->bar, where, n);
}

void syncwarp(unsigned mask, const std::source_location& where) {
    Thread* t = self("__syncwarp");
    ++t->syncwarps;
    warp_op(t, false, mask, 0, ShuffleMode::kIdx, 0, 32, where);
}

std::uint64_t shuffle(unsigned mask, std::uint64_t bits, ShuffleMode mode, int arg, int width,
                      const std::source_location& where) {
    Thread* t = self("a warp shuffle");
    warp_op(t, true, mask, bits, mode, arg, width, where);
    return t->shuffle_result;
}

void* dynamic_shared() {
    return self("dynamic shared memory")->cta->dynamic;
}

void* static_shared(const void* key, std::size_t bytes, std::size_t align) {
    Thread* t = self("__shared__ memory");
    return static_array_of(t, *t->cta, key, bytes, align);
}

void cluster_sync(const std::source_location& where) {
    Thread* t = self("cluster.sync()");
    const long n = ++t->cluster_syncs;
    if (t->cl->launch->faults && n == options().drop_cluster_sync) return;  // fault injection
    arrive(t, t->cl->bar, where, n);
}

unsigned cluster_rank() {
    return self("cluster.block_rank()")->cta->rank;
}

unsigned cluster_size() {
    return self("cluster.num_blocks()")->cl->launch->cluster;
}

void* map_shared_rank(const void* ptr, unsigned rank) {
    Thread* t = self("cluster.map_shared_rank()");
    Cluster& cl = *t->cl;
    const auto* p = static_cast<const std::byte*>(ptr);
    std::size_t off = 0;
    const void* key = nullptr;
    if (!in_shared(*t->cta, p, &off, &key))
        kernel_fault(t, cudaErrorIllegalAddress,
                     "map_shared_rank: the address is not in this block's shared memory");
    if (rank >= cl.ctas.size())
        kernel_fault(t, cudaErrorIllegalAddress,
                     "map_shared_rank: rank " + std::to_string(rank) + " of a cluster of " +
                         std::to_string(cl.ctas.size()));
    if (t->cluster_syncs == 0 && cl.ctas.size() > 1)
        kernel_fault(t, cudaErrorIllegalAddress,
                     "distributed shared memory used before this thread's first cluster.sync(): "
                     "the peer block may not have started");
    Cta& peer = *cl.ctas[rank];
    if (peer.exited)
        kernel_fault(t, cudaErrorIllegalAddress,
                     "distributed shared memory of cluster rank " + std::to_string(rank) +
                         ", which has exited");
    if (!key) return peer.dynamic + off;
    std::size_t bytes = 0;
    for (const Cta::Static& a : t->cta->statics)
        if (a.key == key) bytes = a.bytes;
    return static_array_of(t, peer, key, bytes, 16) + off;
}

}  // namespace emu

extern "C" void eirnn_emu_fiber_main(void* thread) {
    emu::fiber_main(static_cast<emu::Thread*>(thread));
}
