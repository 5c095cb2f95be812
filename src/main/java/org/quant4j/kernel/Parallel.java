package org.quant4j.kernel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed pool of worker threads for the hundreds of small parallel loops one decoded token needs. The caller runs
 * a share of the work itself; workers spin briefly on a generation counter before parking, so hand-off costs
 * microseconds, not the tens of microseconds an executor's queue costs.
 *
 * <p>Thread count: {@code -Dquant4j.threads=N} or {@link #setThreads}, default the number of available cores.
 */
public final class Parallel {

    /** A loop body over the index range [start, end). */
    @FunctionalInterface
    public interface Range { void run(int start, int end); }

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
     * Runs {@code body} over [0, n) split into one contiguous chunk per thread (chunk boundaries multiples of
     * {@code grain}); runs inline when the work is too small to share.
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
        p.run(n, g, parts, body);
    }

    private static final class Worker extends Thread {
        Worker(Runnable r, String name) { super(r, name); setDaemon(true); }
    }

    private static final class Pool {
        final int size;
        final Worker[] workers;
        // the task currently published
        volatile long generation;
        volatile boolean stopped;
        Range body;
        int n, grain, parts;
        final AtomicInteger remaining = new AtomicInteger();
        volatile Thread caller;
        volatile Throwable failure;

        Pool(int size) {
            this.size = size;
            this.workers = new Worker[size - 1];
            for (int i = 0; i < workers.length; i++) {
                final int id = i + 1;
                workers[i] = new Worker(() -> loop(id), "quant4j-worker-" + id);
                workers[i].start();
            }
        }

        synchronized void run(int n, int grain, int parts, Range body) {
            this.body = body;
            this.n = n;
            this.grain = grain;
            this.parts = parts;
            this.failure = null;
            this.caller = Thread.currentThread();
            remaining.set(parts - 1);
            generation++;                       // publish (volatile write after the plain writes)
            for (int i = 0; i < parts - 1; i++) LockSupport.unpark(workers[i]);
            try {
                part(0);
            } catch (Throwable t) {
                failure = t;
            }
            int spins = 0;
            while (remaining.get() > 0) {
                if (++spins < 20000) Thread.onSpinWait();
                else LockSupport.parkNanos(20_000);
            }
            this.body = null;
            Throwable f = failure;
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error e) throw e;
        }

        void part(int id) {
            int units = (n + grain - 1) / grain;
            int startUnit = (int) ((long) units * id / parts);
            int endUnit = (int) ((long) units * (id + 1) / parts);
            int start = Math.min(n, startUnit * grain), end = Math.min(n, endUnit * grain);
            if (start < end) body.run(start, end);
        }

        void loop(int id) {
            long seen = 0;
            while (!stopped) {
                long g = generation;
                if (g == seen) {
                    for (int s = 0; s < 2000 && generation == seen && !stopped; s++) Thread.onSpinWait();
                    if (generation == seen) LockSupport.parkNanos(1_000_000);
                    continue;
                }
                seen = g;
                if (id < parts) {
                    try {
                        part(id);
                    } catch (Throwable t) {
                        failure = t;
                    }
                    if (remaining.decrementAndGet() == 0) LockSupport.unpark(caller);
                }
            }
        }

        void shutdown() {
            stopped = true;
            for (Worker w : workers) LockSupport.unpark(w);
        }
    }
}
