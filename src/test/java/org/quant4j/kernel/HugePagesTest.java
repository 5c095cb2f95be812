package org.quant4j.kernel;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.*;

class HugePagesTest {
    @Test
    void largeAllocationsAreZeroedWritableAndAlignedSmallOnesToo() {
        for (long bytes : new long[]{100, (5L << 20) + 12345}) {
            MemorySegment s = HugePages.allocateHuge(bytes);
            assertEquals(bytes, s.byteSize());
            assertEquals(0, s.address() % 64);
            if (HugePages.available() && bytes >= (2L << 20)) assertEquals(0, s.address() % (2L << 20), "starts on a 2 MiB page");
            for (long i = 0; i < bytes; i += 4093) assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i));
            for (long i = 0; i + 8 <= bytes; i += 8) s.set(ValueLayout.JAVA_LONG_UNALIGNED, i, i * 31);
            for (long i = 0; i + 8 <= bytes; i += 8) assertEquals(i * 31, s.get(ValueLayout.JAVA_LONG_UNALIGNED, i));
        }
    }

    @Test
    void unreachableAllocationsAreUnmapped() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(HugePages.available(), "huge pages are not offered here");
        long before = virtualKiB();
        for (int i = 0; i < 40; i++) {   // 40 × 64 MiB mapped in turn; kept, the address space would grow by 2.5 GiB
            MemorySegment s = HugePages.allocateHuge(64L << 20);
            s.set(ValueLayout.JAVA_BYTE, s.byteSize() - 1, (byte) 1);
            if (i % 4 == 3) { System.gc(); Thread.sleep(50); }
        }
        System.gc();
        Thread.sleep(200);
        long grown = virtualKiB() - before;
        assertTrue(grown < (1L << 20), "address space grew by " + grown + " KiB");
    }

    private static long virtualKiB() throws java.io.IOException {
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
            if (line.startsWith("VmSize:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
        throw new IllegalStateException("no VmSize in /proc/self/status");
    }
}
