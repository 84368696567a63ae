#include "UnmaskCKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

// A one-token forward of a small model makes a few hundred products of tens of microseconds
// each. Waking a sleeping thread for each (as libdispatch does) costs about as much as the
// product, so such products ran on one core. The pool's threads poll for the next job for a while after each
// one, as llama.cpp's and OpenMP's do, and sleep on a condition variable when none comes.

enum { MAX_THREADS = 255 };

/// How long an idle thread polls before it sleeps: long enough to bridge the gaps between one
/// forward's products (norms, attention, the Swift code between), short enough that an idle
/// process stops using the cores at once.
static const long POLL_NANOSECONDS = 200 * 1000;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic int sleepers;
    /// The job's number (bumped by each) times 2^16 plus its worker count: a thread runs a job it
    /// has not seen when its index is below the count. One word, so a thread not taking part in a
    /// job never reads the next job's fields half written.
    _Atomic uint64_t job;
    /// Threads of the current job that have not finished it.
    _Atomic int pending;
    /// Set while a caller owns the pool: a second caller (another thread, or a task calling the
    /// pool again) is told to run its work another way.
    atomic_flag busy;
    /// Set by `unmask_pool_rest`: idle threads sleep at once instead of polling.
    _Atomic int resting;
    int started;
    unmask_pool_task task;
    void *context;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, ATOMIC_FLAG_INIT, 0, 0, 0, 0};

static long elapsed_nanoseconds(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

static void *pool_thread(void *argument) {
    int index = (int)(intptr_t)argument;
    // Jobs are numbered from 1. A thread is started by a job that needs it and may first see the
    // job before (whose workers it is not among) or that job itself.
    uint64_t seen = 0;
    for (;;) {
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        uint64_t job;
        for (int spins = 1; (job = atomic_load_explicit(&pool.job, memory_order_acquire)) == seen; spins++) {
            CPU_RELAX();
            if (spins % 64 == 0) {
                sched_yield();
                if (atomic_load_explicit(&pool.resting, memory_order_relaxed) || elapsed_nanoseconds(&start) > POLL_NANOSECONDS) {
                    pthread_mutex_lock(&pool.lock);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while (atomic_load(&pool.job) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.lock);
                    clock_gettime(CLOCK_MONOTONIC, &start);
                }
            }
        }
        seen = job;
        if (index < (int)(job & 0xFFFF)) {
            pool.task(pool.context, index);
            atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
        }
    }
    return 0;
}

int unmask_pool_run(int workers, unmask_pool_task task, void *context) {
    if (workers < 2 || workers > MAX_THREADS + 1 || atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) return 0;
    for (; pool.started < workers - 1; pool.started++) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, pool_thread, (void *)(intptr_t)(pool.started + 1));
        pthread_attr_destroy(&attributes);
        if (failed) {
            if (pool.started + 1 < workers) workers = pool.started + 1;
            break;
        }
    }
    if (workers < 2) {
        atomic_flag_clear_explicit(&pool.busy, memory_order_release);
        return 0;
    }
    pool.task = task;
    pool.context = context;
    atomic_store_explicit(&pool.pending, workers - 1, memory_order_relaxed);
    atomic_store_explicit(&pool.resting, 0, memory_order_relaxed);
    // Sequentially consistent with the sleepers' count: either a thread about to sleep sees the
    // new job, or this sees it counted and wakes it.
    uint64_t number = (atomic_load_explicit(&pool.job, memory_order_relaxed) >> 16) + 1;
    atomic_store(&pool.job, number << 16 | (uint64_t)workers);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    task(context, 0);
    for (int spins = 1; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; spins++) {
        CPU_RELAX();
        if (spins % 64 == 0) sched_yield();
    }
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
    return 1;
}

void unmask_pool_rest(void) { atomic_store_explicit(&pool.resting, 1, memory_order_relaxed); }
