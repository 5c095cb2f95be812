package org.quant4j.kernel;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.*;

class ParallelTest {
    @AfterEach
    void restore() { Parallel.setThreads(Runtime.getRuntime().availableProcessors()); }

    @Test
    void everyIndexRunsExactlyOnce() {
        for (int threads : new int[]{1, 2, 3, 5}) {
            Parallel.setThreads(threads);
            for (int n : new int[]{0, 1, 2, 7, 64, 1000, 4097}) {
                for (int grain : new int[]{1, 16, 100}) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(1, n));
                    Parallel.forRange(n, grain, (s, e) -> { for (int i = s; i < e; i++) hits.incrementAndGet(i); });
                    for (int i = 0; i < n; i++) assertEquals(1, hits.get(i), "threads=" + threads + " n=" + n + " i=" + i);
                }
            }
        }
    }

    @Test
    void manySmallLoopsInARow() {
        Parallel.setThreads(2);
        long[] sum = new long[1];
        for (int k = 0; k < 20000; k++) {
            java.util.concurrent.atomic.AtomicLong total = new java.util.concurrent.atomic.AtomicLong();
            Parallel.forRange(10, 1, (s, e) -> { long acc = 0; for (int i = s; i < e; i++) acc += i; total.addAndGet(acc); });
            sum[0] += total.get();
        }
        assertEquals(20000L * 45, sum[0]);
    }

    @Test
    void chunkBoundariesAreMultiplesOfTheGrainAndTheSameEveryRun() {
        Parallel.setThreads(2);
        java.util.Set<java.util.List<Integer>> first = null;
        for (int run = 0; run < 200; run++) {
            java.util.Set<java.util.List<Integer>> chunks = java.util.concurrent.ConcurrentHashMap.newKeySet();
            Parallel.forRange(1000, 16, (s, e) -> {
                assertEquals(0, s % 16, "chunk start " + s);
                assertTrue(e == 1000 || e % 16 == 0, "chunk end " + e);
                chunks.add(java.util.List.of(s, e));
            });
            assertTrue(chunks.size() >= 2 && chunks.size() <= 2 * Parallel.CHUNKS_PER_THREAD, "chunks: " + chunks);
            if (first == null) first = chunks;
            else assertEquals(first, chunks, "run " + run);
        }
    }

    @Test
    void exceptionsReachTheCaller() {
        Parallel.setThreads(2);
        RuntimeException e = assertThrows(RuntimeException.class, () -> Parallel.forRange(100, 1, (s, en) -> {
            if (s > 0) throw new IllegalStateException("boom");
        }));
        assertEquals("boom", e.getMessage());
        // the pool still works afterwards
        AtomicIntegerArray hits = new AtomicIntegerArray(10);
        Parallel.forRange(10, 1, (s, en) -> { for (int i = s; i < en; i++) hits.incrementAndGet(i); });
        for (int i = 0; i < 10; i++) assertEquals(1, hits.get(i));
    }
}
