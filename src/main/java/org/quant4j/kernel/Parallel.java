package org.quant4j.kernel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed pool of worker threads for the hundreds of small parallel loops one decoded token needs. The caller runs
 * its share of the work itself; workers spin on a generation counter for a while before parking, so hand-off costs
 * microseconds, not the tens of microseconds an executor's queue costs.
 *
 * <p>A loop is cut into a fixed set of contiguous chunks ({@link #CHUNKS_PER_THREAD} per thread, boundaries multiples
 * of the grain), which the threads take from a shared counter: a worker that wakes late, or a core the machine lends to
 * another process for a moment, then costs the loop only a chunk, not a whole static share. The chunk boundaries depend
 * on n, the grain and the thread count only, never on timing, so results are the same from run to run.
 * {@code -Dquant4j.parallel=static} gives one chunk per thread (the earlier schedule), for measuring one against the
 * other.
 *
 * <p>Thread count: {@code -Dquant4j.threads=N} or {@link #setThreads}, default the number of available cores.
 */
public final class Parallel {

    /** A loop body over the index range [start, end). */
    @FunctionalInterface
    public interface Range { void run(int start, int end); }

    /** Chunks per thread of one loop (dynamic schedule). */
    static final int CHUNKS_PER_THREAD = "static".equalsIgnoreCase(System.getProperty("quant4j.parallel", "dynamic")) ? 1 : 4;
    /** How long an idle worker spins before it parks: longer than the serial gap between two matvecs of a token. */
    private static final long SPIN_NANOS = Long.getLong("quant4j.spinMicros", 200) * 1000;

    private static volatile Pool pool = new Pool(Integer.getInteger("quant4j.threads", Runtime.getRuntime().availableProcessors()));

    private Parallel() {}

    public static int threads() { return pool.size; }

    /** Replaces the pool (e.g. for a benchmark at 1 and 2 threads). */
    public static synchronized void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("threads must be >= 1");
        if (n == pool.size) return;
        Pool old = pool;
        pool = new Pool(n);
        old.shutdown();
    }

    /**
     * Runs {@code body} over [0, n) in contiguous chunks whose boundaries are multiples of {@code grain}; runs inline
     * when the work is too small to share. Each index is run exactly once, by some thread.
     */
    public static void forRange(int n, int grain, Range body) {
        Pool p = pool;
        if (n <= 0) return;
        int g = Math.max(1, grain);
        int units = (n + g - 1) / g;
        int parts = Math.min(p.size, units);
        if (parts <= 1 || Thread.currentThread() instanceof Worker) {
            body.run(0, n);
            return;
        }
        p.run(new Task(body, n, g, units, Math.min(units, parts * CHUNKS_PER_THREAD)), parts);
    }

    /** One published loop: chunks are taken from {@code next}; the caller waits until {@code done} reaches {@code chunks}. */
    private static final class Task {
        final Range body;
        final int n, grain, units, chunks;
        final AtomicInteger next = new AtomicInteger(), done = new AtomicInteger();
        volatile Throwable failure;

        Task(Range body, int n, int grain, int units, int chunks) {
            this.body = body;
            this.n = n;
            this.grain = grain;
            this.units = units;
            this.chunks = chunks;
        }

        /** Takes and runs chunks until none is left; true when this call finished the last one. */
        boolean work() {
            boolean last = false;
            for (int c; (c = next.getAndIncrement()) < chunks; ) {
                int start = Math.min(n, (int) ((long) units * c / chunks) * grain);
                int end = Math.min(n, (int) ((long) units * (c + 1) / chunks) * grain);
                try {
                    if (start < end) body.run(start, end);
                } catch (Throwable t) {
                    failure = t;
                }
                last = done.incrementAndGet() == chunks;
            }
            return last;
        }
    }

    private static final class Worker extends Thread {
        Worker(Runnable r, String name) { super(r, name); setDaemon(true); }
    }

    private static final class Pool {
        final int size;
        final Worker[] workers;
        volatile long generation;
        volatile Task task;
        volatile boolean stopped;
        volatile Thread caller;

        Pool(int size) {
            this.size = size;
            this.workers = new Worker[size - 1];
            for (int i = 0; i < workers.length; i++) {
                workers[i] = new Worker(this::loop, "quant4j-worker-" + (i + 1));
                workers[i].start();
            }
        }

        synchronized void run(Task t, int parts) {
            caller = Thread.currentThread();
            task = t;
            generation++;                       // publish (volatile write after the task)
            for (int i = 0; i < parts - 1; i++) LockSupport.unpark(workers[i]);
            t.work();
            int spins = 0;
            while (t.done.get() < t.chunks) {
                if (++spins < 20000) Thread.onSpinWait();
                else LockSupport.parkNanos(20_000);
            }
            task = null;
            Throwable f = t.failure;
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error e) throw e;
        }

        void loop() {
            long seen = 0;
            while (!stopped) {
                long g = generation;
                if (g == seen) {
                    long until = System.nanoTime() + SPIN_NANOS;
                    for (int s = 0; generation == seen && !stopped; s++) {
                        Thread.onSpinWait();
                        if ((s & 63) == 63 && System.nanoTime() > until) break;
                    }
                    if (generation == seen) LockSupport.parkNanos(1_000_000);
                    continue;
                }
                seen = g;
                Task t = task;
                if (t != null && t.work()) LockSupport.unpark(caller);
            }
        }

        void shutdown() {
            stopped = true;
            for (Worker w : workers) LockSupport.unpark(w);
        }
    }
}
