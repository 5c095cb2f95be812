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
 * <p>Elsewhere (another OS, no native access, a failed call) and under {@code -Dquant4j.hugePages=off} it is
 * {@code Arena.ofAuto().allocate}.
 */
final class HugePages {
    private HugePages() {}

    private static final long HUGE = 2L << 20;
    private static final int PROT_READ_WRITE = 0x3, MAP_PRIVATE_ANONYMOUS = 0x22, MADV_HUGEPAGE = 14;
    private static final MethodHandle MMAP, MADVISE, MUNMAP;

    static {
        MethodHandle mmap = null, madvise = null, munmap = null;
        boolean on = !"off".equalsIgnoreCase(System.getProperty("quant4j.hugePages", "on"))
                && System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux");
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

    /** Whether allocations here ask for huge pages (Linux, native access granted, not switched off). */
    static boolean available() { return MMAP != null; }

    /** {@code bytes} of zeroed memory, 64-byte aligned at least, freed when the returned segment becomes unreachable. */
    static MemorySegment allocate(long bytes) {
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
