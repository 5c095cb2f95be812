package org.quant4j.kernel;

import jdk.incubator.vector.*;
import org.quant4j.format.GgmlType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.WeakHashMap;

import static jdk.incubator.vector.VectorOperators.*;

/**
 * Matrix-vector products of Q8_0, Q4_0, Q4_K and Q6_K weights on 8-bit activations, eight weight rows at a time from a copy
 * of the weights interleaved by rows, as llama.cpp's repacked CPU kernels ({@code ggml_gemv_q4_0_8x8_q8_0}, {@code
 * ggml_gemv_q4_K_8x8_q8_K}) do. In the row-by-row kernels ({@link Q8Kernels}) every block of 32 weights pays for its
 * own pair sum into int32, conversion, scale and FMA; here one int32 lane belongs to one row, so that work is shared by
 * eight rows, and the activations are broadcast two codes at a time ({@link Q8Activations#pairs}); Q8_0 and Q4_0 run
 * two groups of eight rows per call, sharing each broadcast:
 * <pre>
 *   int16 lane 2r+e  +=  w[r, 2i+e] · x[2i+e]        (sixteen such products per lane before the pair sum)
 *   int32 lane r     =   lane 2r + lane 2r+1
 * </pre>
 *
 * <p>Layout of a group of eight rows (rows r0..r0+7), block after block:
 * <ul>
 *   <li>Q8_0, per block of 32 (288 bytes): the eight scales as f32 (32 bytes), then sixteen chunks of 16 bytes; chunk j
 *       holds, for each row r, its codes 2j and 2j+1 (bytes 2r, 2r+1), signed as in the file.</li>
 *   <li>Q4_0, per block of 32 (160 bytes): the eight scales as f32 (32 bytes), then eight chunks of 16 bytes; chunk j
 *       holds, for each row r, the two code bytes 2j and 2j+1 of its block (bytes 2r, 2r+1): their low nibbles are
 *       weights 2j, 2j+1, their high nibbles weights 16+2j, 17+2j.</li>
 *   <li>Q4_K, per super-block of 256 (1216 bytes): d and dmin as f32 (2 × 32 bytes), the 6-bit scales and minimums
 *       unpacked to bytes, sub-block-major (2 × 64 bytes: byte 8j+r is row r's value for sub-block j), then for each
 *       pair of sub-blocks c (0..3) sixteen chunks of 16 bytes; chunk i holds bytes 2i, 2i+1 of each row's 32 code
 *       bytes of that pair: low nibbles sub-block 2c, high nibbles sub-block 2c+1.</li>
 *   <li>Q6_K, per super-block of 256 (2208 bytes): d as f32 (32 bytes), the sixteen int8 scales sub-block-major (128
 *       bytes), then per sub-block of 16 eight chunks of 16 bytes; chunk i holds each row's weights 2i, 2i+1 as signed
 *       bytes q − 32 (decoding the 6-bit codes once here is cheaper than in every product; 31 % more bytes).</li>
 * </ul>
 * The copy is made once per weight, only of read-only weights (a mapped model file, which cannot change under it), and
 * only for row counts that are a multiple of eight; {@code -Dquant4j.repack=off} turns it off, and copies stop at {@link #budget}. It costs memory and a
 * pause on first use: the copy is about 6 % (Q8_0), 11 % (Q4_0), 6 % (Q4_K) and 31 % (Q6_K) larger than the weights it copies, and
 * the mapped originals stay in the page cache for prompt processing. The scalar reference is {@link Q8Kernels#reference}, the same as for the row kernels.
 */
public final class Q8Repacked {
    private Q8Repacked() {}

    private static volatile boolean enabled = !"off".equalsIgnoreCase(System.getProperty("quant4j.repack", "on"));

    /** Turns the repacked kernels on or off (benchmarks comparing both paths in one JVM). */
    public static void setEnabled(boolean on) { enabled = on; }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    static final int Q4_0_BLOCK = 160, Q4_K_BLOCK = 1216, Q6_K_BLOCK = 2208, Q8_0_BLOCK = 288;

    /**
     * Original segment → its repacked copy; weak, so a copy lives as long as its weights. MemorySegment's equals compares
     * addresses only, so an entry is used only for the very segment object it was made from (a file mapped later at a
     * recycled address is a different object).
     */
    private static final Map<MemorySegment, Packed> CACHE = new WeakHashMap<>();

    private record Packed(java.lang.ref.WeakReference<MemorySegment> source, GgmlType type, int rows, int cols, MemorySegment data) {}

    /**
     * The most bytes of repacked copies alive at once: half the machine's physical memory unless
     * {@code -Dquant4j.repack.maxMiB} says otherwise. Weights beyond it keep the row kernels, so a model streamed from a
     * file larger than memory (a 70B checkpoint on a 24 GB machine) is never copied whole.
     */
    static volatile long budget = budget();

    /** Sets the budget in bytes (tests). */
    static void setBudget(long bytes) { budget = bytes; }
    private static final java.util.concurrent.atomic.AtomicLong LIVE = new java.util.concurrent.atomic.AtomicLong();
    private static final java.lang.ref.Cleaner CLEANER = java.lang.ref.Cleaner.create();

    private static long budget() {
        String mib = System.getProperty("quant4j.repack.maxMiB");
        if (mib != null) return Long.parseLong(mib.trim()) << 20;
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os)
            return os.getTotalMemorySize() / 2;
        return 4L << 30;
    }

    /** Bytes of repacked copies alive now (for tests and the bench). */
    static long liveBytes() { return LIVE.get(); }

    /** Whether a matrix-vector product of this weight runs here: a covered type, and its copy exists or fits the budget. */
    static boolean covers(GgmlType type, MemorySegment w, int rows) {
        if (!(enabled && (type == GgmlType.Q8_0 || type == GgmlType.Q4_0 || type == GgmlType.Q4_K || type == GgmlType.Q6_K) && rows % 8 == 0 && rows > 0 && w.isReadOnly())) return false;
        synchronized (CACHE) {
            Packed e = CACHE.get(w);
            if (e != null && e.source().get() == w) return true;
        }
        return LIVE.get() + w.byteSize() / 3 * 4 <= budget; // every copy is under 4/3 of its weights (Q6_K: +31 %)
    }

    /** out[b·rows + r] for every row and token b of x, on the repacked copy of w (made on first use). */
    static void matvec(GgmlType type, MemorySegment w, int rows, int cols, Q8Activations x, float[] out) {
        MemorySegment p = repacked(type, w, rows, cols);
        x.pairs(); // made here, before the threads read it
        int groups = rows / 8;
        long groupBytes = (long) switch (type) {
            case Q8_0 -> cols / 32 * Q8_0_BLOCK;
            case Q4_0 -> cols / 32 * Q4_0_BLOCK;
            case Q4_K -> cols / 256 * Q4_K_BLOCK;
            default -> cols / 256 * Q6_K_BLOCK;
        };
        int grain = Math.max(2, (MatMul.grain(cols, x.batch) / 8 + 1) & ~1); // whole pairs of groups per thread
        if (type == GgmlType.Q8_0) {
            Parallel.forRange(groups, grain, (start, end) -> {
                int g = start;
                for (; g + 2 <= end; g += 2) for (int b = 0; b < x.batch; b++) q8_0x16(p, g * groupBytes, groupBytes, x, b, out, b * rows + 8 * g);
                for (; g < end; g++) for (int b = 0; b < x.batch; b++) q8_0x8(p, g * groupBytes, x, b, out, b * rows + 8 * g);
            });
        } else if (type == GgmlType.Q4_0) {
            Parallel.forRange(groups, grain, (start, end) -> {
                int g = start;
                for (; g + 2 <= end; g += 2) for (int b = 0; b < x.batch; b++) q4_0x16(p, g * groupBytes, groupBytes, x, b, out, b * rows + 8 * g);
                for (; g < end; g++) for (int b = 0; b < x.batch; b++) q4_0x8(p, g * groupBytes, x, b, out, b * rows + 8 * g);
            });
        } else if (type == GgmlType.Q4_K) {
            Parallel.forRange(groups, grain, (start, end) -> {
                for (int g = start; g < end; g++) for (int b = 0; b < x.batch; b++) q4_Kx8(p, g * groupBytes, x, b, out, b * rows + 8 * g);
            });
        } else {
            Parallel.forRange(groups, grain, (start, end) -> {
                for (int g = start; g < end; g++) for (int b = 0; b < x.batch; b++) q6_Kx8(p, g * groupBytes, x, b, out, b * rows + 8 * g);
            });
        }
    }

    static MemorySegment repacked(GgmlType type, MemorySegment w, int rows, int cols) {
        synchronized (CACHE) {
            Packed e = CACHE.get(w);
            if (e == null || e.source().get() != w || e.type() != type || e.rows() != rows || e.cols() != cols) {
                MemorySegment p = switch (type) {
                    case Q8_0 -> repackQ8_0(Kernels.view(w), rows, cols);
                    case Q4_0 -> repackQ4_0(Kernels.view(w), rows, cols);
                    case Q4_K -> repackQ4_K(Kernels.view(w), rows, cols);
                    default -> repackQ6_K(Kernels.view(w), rows, cols);
                };
                CACHE.remove(w);
                e = new Packed(new java.lang.ref.WeakReference<>(w), type, rows, cols, p);
                CACHE.put(w, e);
                long bytes = p.byteSize();
                LIVE.addAndGet(bytes);
                CLEANER.register(w, () -> LIVE.addAndGet(-bytes)); // the copy becomes unreachable with its weights
            }
            return e.data();
        }
    }

    private static final ValueLayout.OfShort SH = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfFloat FL = ValueLayout.JAVA_FLOAT_UNALIGNED;

    static MemorySegment repackQ4_0(MemorySegment w, int rows, int cols) {
        int nb = cols / 32;
        long rowBytes = 18L * nb, groupBytes = (long) Q4_0_BLOCK * nb;
        MemorySegment p = HugePages.allocate(groupBytes * (rows / 8));
        Parallel.forRange(rows / 8, 1, (start, end) -> {
            for (int g = start; g < end; g++) {
                for (int k = 0; k < nb; k++) {
                    long dst = g * groupBytes + (long) Q4_0_BLOCK * k;
                    for (int r = 0; r < 8; r++) {
                        long src = (8L * g + r) * rowBytes + 18L * k;
                        p.set(FL, dst + 4L * r, Float.float16ToFloat(w.get(SH, src)));
                        for (int j = 0; j < 8; j++) p.set(SH, dst + 32 + 16L * j + 2L * r, w.get(SH, src + 2 + 2L * j));
                    }
                }
            }
        });
        return p;
    }

    static MemorySegment repackQ4_K(MemorySegment w, int rows, int cols) {
        int nb = cols / 256;
        long rowBytes = 144L * nb, groupBytes = (long) Q4_K_BLOCK * nb;
        MemorySegment p = HugePages.allocate(groupBytes * (rows / 8));
        Parallel.forRange(rows / 8, 1, (start, end) -> {
            for (int g = start; g < end; g++) {
                for (int k = 0; k < nb; k++) {
                    long dst = g * groupBytes + (long) Q4_K_BLOCK * k;
                    for (int r = 0; r < 8; r++) {
                        long src = (8L * g + r) * rowBytes + 144L * k;
                        p.set(FL, dst + 4L * r, Float.float16ToFloat(w.get(SH, src)));
                        p.set(FL, dst + 32 + 4L * r, Float.float16ToFloat(w.get(SH, src + 2)));
                        long lo = w.get(ValueLayout.JAVA_LONG_UNALIGNED, src + 4);
                        int hi = w.get(ValueLayout.JAVA_INT_UNALIGNED, src + 12);
                        long sc = Q8Kernels.kScales(lo, hi), m = Q8Kernels.kMins(lo, hi);
                        for (int j = 0; j < 8; j++) {
                            p.set(ValueLayout.JAVA_BYTE, dst + 64 + 8L * j + r, (byte) (sc >>> (8 * j)));
                            p.set(ValueLayout.JAVA_BYTE, dst + 128 + 8L * j + r, (byte) (m >>> (8 * j)));
                        }
                        for (int c = 0; c < 4; c++) {
                            for (int i = 0; i < 16; i++) p.set(SH, dst + 192 + 256L * c + 16L * i + 2L * r, w.get(SH, src + 16 + 32L * c + 2L * i));
                        }
                    }
                }
            }
        });
        return p;
    }

    /**
     * Q8_0's codes row-interleaved: per block of 32 and group of eight rows, the eight scales as f32, then sixteen
     * chunks of 16 bytes; chunk j holds each row's codes 2j, 2j+1 (bytes 2r, 2r+1), unchanged (signed).
     */
    static MemorySegment repackQ8_0(MemorySegment w, int rows, int cols) {
        int nb = cols / 32;
        long rowBytes = 34L * nb, groupBytes = (long) Q8_0_BLOCK * nb;
        MemorySegment p = HugePages.allocate(groupBytes * (rows / 8));
        Parallel.forRange(rows / 8, 1, (start, end) -> {
            for (int g = start; g < end; g++) {
                for (int k = 0; k < nb; k++) {
                    long dst = g * groupBytes + (long) Q8_0_BLOCK * k;
                    for (int r = 0; r < 8; r++) {
                        long src = (8L * g + r) * rowBytes + 34L * k;
                        p.set(FL, dst + 4L * r, Float.float16ToFloat(w.get(SH, src)));
                        for (int j = 0; j < 16; j++) p.set(SH, dst + 32 + 16L * j + 2L * r, w.get(SH, src + 2 + 2L * j));
                    }
                }
            }
        });
        return p;
    }

    /*
     * Q8_0 × Q8_0. A product of two codes fits in int16 (|q_w·q_x| ≤ 128·127 = 16256), two of them still do (32512),
     * so each int16 lane sums two chunks' products, and every pair of chunks is then moved into int32. Lane r of the
     * int32 view of that vector is 65536·hi + lo_u, hi the (signed) odd lane and lo_u the even lane read unsigned; with
     * 32768 added to every even lane first (the bias), lo_u = lo + 32768 exactly, so summing the int32 views and,
     * apart, their high halves (an arithmetic shift) gives, per row and block of 32,
     *   Σ lo + Σ hi  =  Σ view − 65536·Σ hi + Σ hi − 8·32768
     * in int32 (the wrap-around cancels: the true result is < 2^31): four operations per pair of chunks where the
     * usual widening (shift left, two shifts right, add, accumulate) takes five.
     */

    /** Rows 8g..8g+7 times token b: Σ_blocks d_w·d_x·Σ q_w·q_x, eight rows per int32 / float lane. */
    static void q8_0x8(MemorySegment p, long g, Q8Activations a, int b, float[] out, int o) {
        int n = a.n, nb = n / 32, xr = b * (n / 2), dr = b * nb;
        int[] x2 = a.pairs();
        float[] xd = a.d;
        ShortVector bias = IntVector.broadcast(I, 0x8000).reinterpretAsShorts(); // 32768 in the even int16 lanes
        IntVector start = IntVector.broadcast(I, -8 * 32768);
        FloatVector acc = FloatVector.zero(F);
        for (int k = 0; k < nb; k++) {
            long u = g + (long) Q8_0_BLOCK * k + 32;
            int xo = xr + 16 * k;
            IntVector all = start, hi = IntVector.zero(I), t;
            t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 0, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 0]).reinterpretAsShorts())
                    .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 16, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 1]).reinterpretAsShorts())).add(bias).reinterpretAsInts();
            all = all.add(t); hi = hi.add(t.lanewise(ASHR, 16));
            t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 32, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 2]).reinterpretAsShorts())
                    .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 48, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 3]).reinterpretAsShorts())).add(bias).reinterpretAsInts();
            all = all.add(t); hi = hi.add(t.lanewise(ASHR, 16));
            t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 64, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 4]).reinterpretAsShorts())
                    .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 80, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 5]).reinterpretAsShorts())).add(bias).reinterpretAsInts();
            all = all.add(t); hi = hi.add(t.lanewise(ASHR, 16));
            t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 96, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 6]).reinterpretAsShorts())
                    .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 112, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 7]).reinterpretAsShorts())).add(bias).reinterpretAsInts();
            all = all.add(t); hi = hi.add(t.lanewise(ASHR, 16));
            t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 128, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 8]).reinterpretAsShorts())
                    .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 144, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 9]).reinterpretAsShorts())).add(bias).reinterpretAsInts();
            all = all.add(t); hi = hi.add(t.lanewise(ASHR, 16));
            t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 160, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 10]).reinterpretAsShorts())
                    .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 176, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 11]).reinterpretAsShorts())).add(bias).reinterpretAsInts();
            all = all.add(t); hi = hi.add(t.lanewise(ASHR, 16));
            t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 192, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 12]).reinterpretAsShorts())
                    .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 208, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 13]).reinterpretAsShorts())).add(bias).reinterpretAsInts();
            all = all.add(t); hi = hi.add(t.lanewise(ASHR, 16));
            t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 224, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 14]).reinterpretAsShorts())
                    .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 240, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xo + 15]).reinterpretAsShorts())).add(bias).reinterpretAsInts();
            all = all.add(t); hi = hi.add(t.lanewise(ASHR, 16));
            IntVector sum = all.sub(hi.lanewise(LSHL, 16)).add(hi);
            acc = ((FloatVector) sum.convertShape(I2F, F, 0)).fma(FloatVector.fromMemorySegment(F, p, u - 32, LE).mul(xd[dr + k]), acc);
        }
        acc.intoArray(out, o);
    }

    /** Rows 8g..8g+15 (two groups, the second {@code gb} bytes after the first) times token b, sharing the broadcasts. */
    static void q8_0x16(MemorySegment p, long g, long gb, Q8Activations a, int b, float[] out, int o) {
        int n = a.n, nb = n / 32, xr = b * (n / 2), dr = b * nb;
        int[] x2 = a.pairs();
        float[] xd = a.d;
        ShortVector bias = IntVector.broadcast(I, 0x8000).reinterpretAsShorts(); // 32768 in the even int16 lanes
        IntVector start = IntVector.broadcast(I, -8 * 32768);
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        IntVector all0 = start, hi0 = IntVector.zero(I), all1 = start, hi1 = IntVector.zero(I), t0, t1;
        ShortVector x0, x1;
        // half a block (eight chunks) per iteration, the block's sums finished after its second half: the whole block
        // written out makes a method too large for C1 ("out of virtual registers"), which then stays on a tier whose
        // Vector API calls are not intrinsified, some hundred times slower, until C2 compiles it (C2 does not unroll a
        // loop with a vector body, so the four pairs of chunks are written out)
        for (int h = 0; h < 2 * nb; h++) {
            int k = h >> 1;
            long u = g + (long) Q8_0_BLOCK * k + 32 + 128L * (h & 1), v = u + gb;
            int xo = xr + 8 * h;
            x0 = IntVector.broadcast(I, x2[xo + 0]).reinterpretAsShorts(); x1 = IntVector.broadcast(I, x2[xo + 1]).reinterpretAsShorts();
            t0 = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 0, LE).convertShape(B2S, S, 0)).mul(x0).add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 16, LE).convertShape(B2S, S, 0)).mul(x1)).add(bias).reinterpretAsInts();
            t1 = ((ShortVector) ByteVector.fromMemorySegment(B128, p, v + 0, LE).convertShape(B2S, S, 0)).mul(x0).add(((ShortVector) ByteVector.fromMemorySegment(B128, p, v + 16, LE).convertShape(B2S, S, 0)).mul(x1)).add(bias).reinterpretAsInts();
            all0 = all0.add(t0); hi0 = hi0.add(t0.lanewise(ASHR, 16)); all1 = all1.add(t1); hi1 = hi1.add(t1.lanewise(ASHR, 16));
            x0 = IntVector.broadcast(I, x2[xo + 2]).reinterpretAsShorts(); x1 = IntVector.broadcast(I, x2[xo + 3]).reinterpretAsShorts();
            t0 = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 32, LE).convertShape(B2S, S, 0)).mul(x0).add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 48, LE).convertShape(B2S, S, 0)).mul(x1)).add(bias).reinterpretAsInts();
            t1 = ((ShortVector) ByteVector.fromMemorySegment(B128, p, v + 32, LE).convertShape(B2S, S, 0)).mul(x0).add(((ShortVector) ByteVector.fromMemorySegment(B128, p, v + 48, LE).convertShape(B2S, S, 0)).mul(x1)).add(bias).reinterpretAsInts();
            all0 = all0.add(t0); hi0 = hi0.add(t0.lanewise(ASHR, 16)); all1 = all1.add(t1); hi1 = hi1.add(t1.lanewise(ASHR, 16));
            x0 = IntVector.broadcast(I, x2[xo + 4]).reinterpretAsShorts(); x1 = IntVector.broadcast(I, x2[xo + 5]).reinterpretAsShorts();
            t0 = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 64, LE).convertShape(B2S, S, 0)).mul(x0).add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 80, LE).convertShape(B2S, S, 0)).mul(x1)).add(bias).reinterpretAsInts();
            t1 = ((ShortVector) ByteVector.fromMemorySegment(B128, p, v + 64, LE).convertShape(B2S, S, 0)).mul(x0).add(((ShortVector) ByteVector.fromMemorySegment(B128, p, v + 80, LE).convertShape(B2S, S, 0)).mul(x1)).add(bias).reinterpretAsInts();
            all0 = all0.add(t0); hi0 = hi0.add(t0.lanewise(ASHR, 16)); all1 = all1.add(t1); hi1 = hi1.add(t1.lanewise(ASHR, 16));
            x0 = IntVector.broadcast(I, x2[xo + 6]).reinterpretAsShorts(); x1 = IntVector.broadcast(I, x2[xo + 7]).reinterpretAsShorts();
            t0 = ((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 96, LE).convertShape(B2S, S, 0)).mul(x0).add(((ShortVector) ByteVector.fromMemorySegment(B128, p, u + 112, LE).convertShape(B2S, S, 0)).mul(x1)).add(bias).reinterpretAsInts();
            t1 = ((ShortVector) ByteVector.fromMemorySegment(B128, p, v + 96, LE).convertShape(B2S, S, 0)).mul(x0).add(((ShortVector) ByteVector.fromMemorySegment(B128, p, v + 112, LE).convertShape(B2S, S, 0)).mul(x1)).add(bias).reinterpretAsInts();
            all0 = all0.add(t0); hi0 = hi0.add(t0.lanewise(ASHR, 16)); all1 = all1.add(t1); hi1 = hi1.add(t1.lanewise(ASHR, 16));
            if ((h & 1) == 1) {
                IntVector sum0 = all0.sub(hi0.lanewise(LSHL, 16)).add(hi0), sum1 = all1.sub(hi1.lanewise(LSHL, 16)).add(hi1);
                FloatVector dx = FloatVector.broadcast(F, xd[dr + k]);
                acc0 = ((FloatVector) sum0.convertShape(I2F, F, 0)).fma(FloatVector.fromMemorySegment(F, p, u - 160, LE).mul(dx), acc0);
                acc1 = ((FloatVector) sum1.convertShape(I2F, F, 0)).fma(FloatVector.fromMemorySegment(F, p, v - 160, LE).mul(dx), acc1);
                all0 = start;
                hi0 = IntVector.zero(I);
                all1 = start;
                hi1 = IntVector.zero(I);
            }
        }
        acc0.intoArray(out, o);
        acc1.intoArray(out, o + 8);
    }

    /**
     * Rows 8g..8g+7 times token b: per block, Σ nibble·q_x in int16 lanes (16 products of ≤ 15·127 per lane, < 2^15),
     * pair-summed into one int32 lane per row, times d_w·d_x; the −8 offset through d_w·(d_x·Σ q_x).
     */
    static void q4_0x8(MemorySegment p, long g, Q8Activations a, int b, float[] out, int o) {
        int n = a.n, nb = n / 32, xr = b * (n / 2), dr = b * nb;
        int[] x2 = a.pairs();
        float[] xd = a.d, xs = a.dsum;
        FloatVector acc = FloatVector.zero(F), offs = FloatVector.zero(F);
        for (int k = 0; k < nb; k++) {
            long blk = g + (long) Q4_0_BLOCK * k;
            int xo = xr + 16 * k;
            FloatVector d = FloatVector.fromMemorySegment(F, p, blk, LE);
            ShortVector s = ShortVector.zero(S);
            for (int j = 0; j < 8; j += 2) {
                ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, p, blk + 32 + 16L * j, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, p, blk + 48 + 16L * j, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                s = s.add(q0.and((short) 15).mul(IntVector.broadcast(I, x2[xo + j]).reinterpretAsShorts()))
                        .add(q0.lanewise(LSHR, 4).mul(IntVector.broadcast(I, x2[xo + 8 + j]).reinterpretAsShorts()))
                        .add(q1.and((short) 15).mul(IntVector.broadcast(I, x2[xo + j + 1]).reinterpretAsShorts()))
                        .add(q1.lanewise(LSHR, 4).mul(IntVector.broadcast(I, x2[xo + 9 + j]).reinterpretAsShorts()));
            }
            IntVector v = s.reinterpretAsInts();
            IntVector sum = v.lanewise(LSHL, 16).lanewise(ASHR, 16).add(v.lanewise(ASHR, 16));
            acc = ((FloatVector) sum.convertShape(I2F, F, 0)).fma(d.mul(xd[dr + k]), acc);
            offs = d.fma(FloatVector.broadcast(F, xs[dr + k]), offs);
        }
        acc.sub(offs.mul(8f)).intoArray(out, o);
    }


    /** Rows 8g..8g+15 (two groups, the second {@code gb} bytes after the first) times token b, sharing the broadcasts. */
    static void q4_0x16(MemorySegment p, long g, long gb, Q8Activations a, int b, float[] out, int o) {
        int n = a.n, nb = n / 32, xr = b * (n / 2), dr = b * nb;
        int[] x2 = a.pairs();
        float[] xd = a.d, xs = a.dsum;
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F), offs0 = FloatVector.zero(F), offs1 = FloatVector.zero(F);
        for (int k = 0; k < nb; k++) {
            long u = g + (long) Q4_0_BLOCK * k + 32, v = u + gb;
            int xo = xr + 16 * k;
            // the eight chunks written out: C2 neither unrolls this loop nor keeps the accumulators in registers around it
            ShortVector s0 = ShortVector.zero(S), s1 = ShortVector.zero(S);
            {
                ShortVector xa = IntVector.broadcast(I, x2[xo + 0]).reinterpretAsShorts(), xb = IntVector.broadcast(I, x2[xo + 8]).reinterpretAsShorts();
                ShortVector xc = IntVector.broadcast(I, x2[xo + 1]).reinterpretAsShorts(), xe = IntVector.broadcast(I, x2[xo + 9]).reinterpretAsShorts();
                ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, p, u + 0, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, p, v + 0, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q2 = (ShortVector) ByteVector.fromMemorySegment(B128, p, u + 16, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q3 = (ShortVector) ByteVector.fromMemorySegment(B128, p, v + 16, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                s0 = s0.add(q0.and((short) 15).mul(xa)).add(q0.lanewise(LSHR, 4).mul(xb)).add(q2.and((short) 15).mul(xc)).add(q2.lanewise(LSHR, 4).mul(xe));
                s1 = s1.add(q1.and((short) 15).mul(xa)).add(q1.lanewise(LSHR, 4).mul(xb)).add(q3.and((short) 15).mul(xc)).add(q3.lanewise(LSHR, 4).mul(xe));
            }
            {
                ShortVector xa = IntVector.broadcast(I, x2[xo + 2]).reinterpretAsShorts(), xb = IntVector.broadcast(I, x2[xo + 10]).reinterpretAsShorts();
                ShortVector xc = IntVector.broadcast(I, x2[xo + 3]).reinterpretAsShorts(), xe = IntVector.broadcast(I, x2[xo + 11]).reinterpretAsShorts();
                ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, p, u + 32, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, p, v + 32, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q2 = (ShortVector) ByteVector.fromMemorySegment(B128, p, u + 48, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q3 = (ShortVector) ByteVector.fromMemorySegment(B128, p, v + 48, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                s0 = s0.add(q0.and((short) 15).mul(xa)).add(q0.lanewise(LSHR, 4).mul(xb)).add(q2.and((short) 15).mul(xc)).add(q2.lanewise(LSHR, 4).mul(xe));
                s1 = s1.add(q1.and((short) 15).mul(xa)).add(q1.lanewise(LSHR, 4).mul(xb)).add(q3.and((short) 15).mul(xc)).add(q3.lanewise(LSHR, 4).mul(xe));
            }
            {
                ShortVector xa = IntVector.broadcast(I, x2[xo + 4]).reinterpretAsShorts(), xb = IntVector.broadcast(I, x2[xo + 12]).reinterpretAsShorts();
                ShortVector xc = IntVector.broadcast(I, x2[xo + 5]).reinterpretAsShorts(), xe = IntVector.broadcast(I, x2[xo + 13]).reinterpretAsShorts();
                ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, p, u + 64, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, p, v + 64, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q2 = (ShortVector) ByteVector.fromMemorySegment(B128, p, u + 80, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q3 = (ShortVector) ByteVector.fromMemorySegment(B128, p, v + 80, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                s0 = s0.add(q0.and((short) 15).mul(xa)).add(q0.lanewise(LSHR, 4).mul(xb)).add(q2.and((short) 15).mul(xc)).add(q2.lanewise(LSHR, 4).mul(xe));
                s1 = s1.add(q1.and((short) 15).mul(xa)).add(q1.lanewise(LSHR, 4).mul(xb)).add(q3.and((short) 15).mul(xc)).add(q3.lanewise(LSHR, 4).mul(xe));
            }
            {
                ShortVector xa = IntVector.broadcast(I, x2[xo + 6]).reinterpretAsShorts(), xb = IntVector.broadcast(I, x2[xo + 14]).reinterpretAsShorts();
                ShortVector xc = IntVector.broadcast(I, x2[xo + 7]).reinterpretAsShorts(), xe = IntVector.broadcast(I, x2[xo + 15]).reinterpretAsShorts();
                ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, p, u + 96, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, p, v + 96, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q2 = (ShortVector) ByteVector.fromMemorySegment(B128, p, u + 112, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector q3 = (ShortVector) ByteVector.fromMemorySegment(B128, p, v + 112, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                s0 = s0.add(q0.and((short) 15).mul(xa)).add(q0.lanewise(LSHR, 4).mul(xb)).add(q2.and((short) 15).mul(xc)).add(q2.lanewise(LSHR, 4).mul(xe));
                s1 = s1.add(q1.and((short) 15).mul(xa)).add(q1.lanewise(LSHR, 4).mul(xb)).add(q3.and((short) 15).mul(xc)).add(q3.lanewise(LSHR, 4).mul(xe));
            }
            IntVector v0 = s0.reinterpretAsInts(), v1 = s1.reinterpretAsInts();
            IntVector sum0 = v0.lanewise(LSHL, 16).lanewise(ASHR, 16).add(v0.lanewise(ASHR, 16));
            IntVector sum1 = v1.lanewise(LSHL, 16).lanewise(ASHR, 16).add(v1.lanewise(ASHR, 16));
            FloatVector d0 = FloatVector.fromMemorySegment(F, p, u - 32, LE), d1 = FloatVector.fromMemorySegment(F, p, v - 32, LE);
            FloatVector dx = FloatVector.broadcast(F, xd[dr + k]), ds = FloatVector.broadcast(F, xs[dr + k]);
            acc0 = ((FloatVector) sum0.convertShape(I2F, F, 0)).fma(d0.mul(dx), acc0);
            acc1 = ((FloatVector) sum1.convertShape(I2F, F, 0)).fma(d1.mul(dx), acc1);
            offs0 = d0.fma(ds, offs0);
            offs1 = d1.fma(ds, offs1);
        }
        acc0.sub(offs0.mul(8f)).intoArray(out, o);
        acc1.sub(offs1.mul(8f)).intoArray(out, o + 8);
    }

    /**
     * Rows 8g..8g+7 times token b: per pair of sub-blocks, Σ nibble·q_x in int16 lanes as for Q4_0, pair-summed to
     * int32, times each row's 6-bit scale and summed over the super-block in int32 (|Σ| ≤ 256·15·127·63 < 2^31); the
     * minimums through the per-32 activation sums, Σ_j m_j·Σ q_x, also in int32.
     */
    static void q4_Kx8(MemorySegment p, long g, Q8Activations a, int b, float[] out, int o) {
        int n = a.n, nb = n / 256, xr = b * (n / 2), dr = b * nb, sr = b * (n / 32);
        int[] x2 = a.pairs(), sums = a.sum32;
        float[] xd = a.d;
        FloatVector acc = FloatVector.zero(F), mins = FloatVector.zero(F);
        for (int k = 0; k < nb; k++) {
            long blk = g + (long) Q4_K_BLOCK * k;
            int xo = xr + 128 * k, so = sr + 8 * k;
            IntVector isum = IntVector.zero(I), msum = IntVector.zero(I);
            for (int c = 0; c < 4; c++) {
                long q = blk + 192 + 256L * c;
                int xc = xo + 32 * c;
                ShortVector lo = ShortVector.zero(S), hi = ShortVector.zero(S);
                for (int i = 0; i < 16; i += 2) {
                    ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, p, q + 16L * i, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                    ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, p, q + 16L * i + 16, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                    lo = lo.add(q0.and((short) 15).mul(IntVector.broadcast(I, x2[xc + i]).reinterpretAsShorts()))
                            .add(q1.and((short) 15).mul(IntVector.broadcast(I, x2[xc + i + 1]).reinterpretAsShorts()));
                    hi = hi.add(q0.lanewise(LSHR, 4).mul(IntVector.broadcast(I, x2[xc + 16 + i]).reinterpretAsShorts()))
                            .add(q1.lanewise(LSHR, 4).mul(IntVector.broadcast(I, x2[xc + 17 + i]).reinterpretAsShorts()));
                }
                IntVector vl = lo.reinterpretAsInts(), vh = hi.reinterpretAsInts();
                IntVector sl = vl.lanewise(LSHL, 16).lanewise(ASHR, 16).add(vl.lanewise(ASHR, 16));
                IntVector sh = vh.lanewise(LSHL, 16).lanewise(ASHR, 16).add(vh.lanewise(ASHR, 16));
                IntVector sc0 = (IntVector) ByteVector.fromMemorySegment(B64, p, blk + 64 + 16L * c, LE).convertShape(ZERO_EXTEND_B2I, I, 0);
                IntVector sc1 = (IntVector) ByteVector.fromMemorySegment(B64, p, blk + 72 + 16L * c, LE).convertShape(ZERO_EXTEND_B2I, I, 0);
                IntVector m0 = (IntVector) ByteVector.fromMemorySegment(B64, p, blk + 128 + 16L * c, LE).convertShape(ZERO_EXTEND_B2I, I, 0);
                IntVector m1 = (IntVector) ByteVector.fromMemorySegment(B64, p, blk + 136 + 16L * c, LE).convertShape(ZERO_EXTEND_B2I, I, 0);
                isum = isum.add(sl.mul(sc0)).add(sh.mul(sc1));
                msum = msum.add(m0.mul(sums[so + 2 * c])).add(m1.mul(sums[so + 2 * c + 1]));
            }
            FloatVector dx = FloatVector.broadcast(F, xd[dr + k]);
            acc = ((FloatVector) isum.convertShape(I2F, F, 0)).fma(FloatVector.fromMemorySegment(F, p, blk, LE).mul(dx), acc);
            mins = ((FloatVector) msum.convertShape(I2F, F, 0)).fma(FloatVector.fromMemorySegment(F, p, blk + 32, LE).mul(dx), mins);
        }
        acc.sub(mins).intoArray(out, o);
    }

    /** Q6_K's codes as signed bytes (q − 32) and its int8 scales, row-interleaved (see the class comment). */
    static MemorySegment repackQ6_K(MemorySegment w, int rows, int cols) {
        int nb = cols / 256;
        long rowBytes = 210L * nb, groupBytes = (long) Q6_K_BLOCK * nb;
        MemorySegment p = HugePages.allocate(groupBytes * (rows / 8));
        Parallel.forRange(rows / 8, 1, (start, end) -> {
            byte[] q = new byte[256]; // (256) one row's codes of one super-block, q − 32
            for (int g = start; g < end; g++) {
                for (int k = 0; k < nb; k++) {
                    long dst = g * groupBytes + (long) Q6_K_BLOCK * k;
                    for (int r = 0; r < 8; r++) {
                        long src = (8L * g + r) * rowBytes + 210L * k;
                        // ggml's layout: per half of 128, ql[64] low nibbles, qh[32] two high bits each, four weights per l
                        for (int half = 0; half < 2; half++) {
                            long ql = src + 64L * half, qh = src + 128 + 32L * half;
                            for (int l = 0; l < 32; l++) {
                                int a = w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF, c = w.get(ValueLayout.JAVA_BYTE, ql + 32 + l) & 0xFF, h = w.get(ValueLayout.JAVA_BYTE, qh + l) & 0xFF;
                                int y = 128 * half + l;
                                q[y] = (byte) (((a & 15) | (h & 3) << 4) - 32);
                                q[y + 32] = (byte) (((c & 15) | (h >> 2 & 3) << 4) - 32);
                                q[y + 64] = (byte) (((a >> 4) | (h >> 4 & 3) << 4) - 32);
                                q[y + 96] = (byte) (((c >> 4) | (h >> 6 & 3) << 4) - 32);
                            }
                        }
                        p.set(FL, dst + 4L * r, Float.float16ToFloat(w.get(SH, src + 208)));
                        for (int sb = 0; sb < 16; sb++) {
                            p.set(ValueLayout.JAVA_BYTE, dst + 32 + 8L * sb + r, w.get(ValueLayout.JAVA_BYTE, src + 192 + sb));
                            for (int i = 0; i < 8; i++) {
                                p.set(ValueLayout.JAVA_BYTE, dst + 160 + 128L * sb + 16L * i + 2L * r, q[16 * sb + 2 * i]);
                                p.set(ValueLayout.JAVA_BYTE, dst + 160 + 128L * sb + 16L * i + 2L * r + 1, q[16 * sb + 2 * i + 1]);
                            }
                        }
                    }
                }
            }
        });
        return p;
    }

    /**
     * Rows 8g..8g+7 times token b: per sub-block of 16, Σ (q − 32)·q_x in int16 lanes (eight products of ≤ 32·127 per
     * lane, < 2^15), pair-summed to int32, times each row's int8 scale, summed over the super-block in int32
     * (|Σ| ≤ 256·32·127·128 < 2^31), then times d·d_x.
     */
    static void q6_Kx8(MemorySegment p, long g, Q8Activations a, int b, float[] out, int o) {
        int n = a.n, nb = n / 256, xr = b * (n / 2), dr = b * nb;
        int[] x2 = a.pairs();
        float[] xd = a.d;
        FloatVector acc = FloatVector.zero(F);
        for (int k = 0; k < nb; k++) {
            long blk = g + (long) Q6_K_BLOCK * k;
            int xo = xr + 128 * k;
            IntVector isum = IntVector.zero(I);
            for (int sb = 0; sb < 16; sb++) {
                long c = blk + 160 + 128L * sb;
                int xs = xo + 8 * sb;
                // the eight chunks of the sub-block written out (C2 does not unroll the loop)
                ShortVector t = ((ShortVector) ByteVector.fromMemorySegment(B128, p, c + 0, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xs + 0]).reinterpretAsShorts())
                        .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, c + 16, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xs + 1]).reinterpretAsShorts()))
                        .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, c + 32, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xs + 2]).reinterpretAsShorts()))
                        .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, c + 48, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xs + 3]).reinterpretAsShorts()))
                        .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, c + 64, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xs + 4]).reinterpretAsShorts()))
                        .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, c + 80, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xs + 5]).reinterpretAsShorts()))
                        .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, c + 96, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xs + 6]).reinterpretAsShorts()))
                        .add(((ShortVector) ByteVector.fromMemorySegment(B128, p, c + 112, LE).convertShape(B2S, S, 0)).mul(IntVector.broadcast(I, x2[xs + 7]).reinterpretAsShorts()));
                IntVector v = t.reinterpretAsInts();
                IntVector sc = (IntVector) ByteVector.fromMemorySegment(B64, p, blk + 32 + 8L * sb, LE).convertShape(B2I, I, 0);
                isum = isum.add(v.lanewise(LSHL, 16).lanewise(ASHR, 16).add(v.lanewise(ASHR, 16)).mul(sc));
            }
            acc = ((FloatVector) isum.convertShape(I2F, F, 0)).fma(FloatVector.fromMemorySegment(F, p, blk, LE).mul(xd[dr + k]), acc);
        }
        acc.intoArray(out, o);
    }
}
