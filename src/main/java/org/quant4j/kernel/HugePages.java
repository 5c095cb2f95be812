package org.quant4j.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Zeroed off-heap memory for the large copies the kernels stream every token (the repacked weights), backed by 2 MiB
 * pages where Linux offers transparent huge pages on request ({@code /sys/kernel/mm/transparent_hugepage/enabled} =
 * madvise or always): an anonymous mmap, madvise(MADV_HUGEPAGE) before the first write, munmap when the segment
 * becomes unreachable. A token reads every weight once, so with 4 KiB pages each 4 KiB of weights costs a TLB miss;
 * with 2 MiB pages one miss covers 512 times as much.
 *
 * <p>Off unless {@code -Dquant4j.hugePages=on}: on this machine (AMD EPYC, 2 cores) it measured slower, not faster.
 * TinyLlama-shaped Q4_0, tg32 at one thread, on / off / on / off in turn on the idle machine: 11.04, 12.21, 11.20, 12.26
 * tokens/s; at two threads 19.94, 23.03, 21.96, 20.05. It stays as an option to measure elsewhere. Without it, or on
 * another OS, without native access, or after a failed call, it is {@code Arena.ofAuto().allocate}.
 */
final class HugePages {
    private HugePages() {}

    private static final long HUGE = 2L << 20;
    private static final int PROT_READ_WRITE = 0x3, MAP_PRIVATE_ANONYMOUS = 0x22, MADV_HUGEPAGE = 14;
    private static final MethodHandle MMAP, MADVISE, MUNMAP;

    static {
        MethodHandle mmap = null, madvise = null, munmap = null;
        boolean on = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux");
        if (on) {
            try {
                Linker linker = Linker.nativeLinker();
                var lookup = linker.defaultLookup();
                mmap = linker.downcallHandle(lookup.find("mmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                madvise = linker.downcallHandle(lookup.find("madvise").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
                munmap = linker.downcallHandle(lookup.find("munmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
            } catch (Throwable t) {   // no native access, no such symbols: the plain allocation below
                mmap = madvise = munmap = null;
            }
        }
        MMAP = mmap;
        MADVISE = madvise;
        MUNMAP = munmap;
    }

    private static final boolean ENABLED = "on".equalsIgnoreCase(System.getProperty("quant4j.hugePages", "off"));

    /** Whether huge-page mappings can be made here (Linux, native access granted). */
    static boolean available() { return MMAP != null; }

    /** {@code bytes} of zeroed memory, 64-byte aligned at least, freed when the returned segment becomes unreachable. */
    static MemorySegment allocate(long bytes) {
        return ENABLED ? allocateHuge(bytes) : Arena.ofAuto().allocate(bytes, 64);
    }

    /** As {@link #allocate}, in a mapping advised for huge pages whenever {@link #available()}, whatever the switch. */
    static MemorySegment allocateHuge(long bytes) {
        if (MMAP == null || bytes < HUGE) return Arena.ofAuto().allocate(bytes, 64);
        long len = (bytes + HUGE - 1) / HUGE * HUGE + HUGE;     // room to start on a 2 MiB boundary
        try {
            MemorySegment base = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, len, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
            if (base.address() == -1L) return Arena.ofAuto().allocate(bytes, 64);
            long start = (base.address() + HUGE - 1) / HUGE * HUGE;
            int advised = (int) MADVISE.invokeExact(MemorySegment.ofAddress(start), (bytes + HUGE - 1) / HUGE * HUGE, MADV_HUGEPAGE); // 0, or -1: 4 KiB pages then
            long address = base.address(), length = len;
            MethodHandle munmap = MUNMAP;
            return MemorySegment.ofAddress(start).reinterpret(bytes, Arena.ofAuto(), s -> {
                try {
                    int r = (int) munmap.invokeExact(MemorySegment.ofAddress(address), length);
                } catch (Throwable t) {
                    // nothing to do: the mapping stays until the process ends
                }
            });
        } catch (Throwable t) {
            return Arena.ofAuto().allocate(bytes, 64);
        }
    }
}
