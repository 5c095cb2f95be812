package org.quant4j.format;

import jdk.incubator.vector.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * quant4j's storage for linear integer quantization (RTN, GPTQ, AWQ weights). Each row is cut into groups of
 * {@code groupSize} values; the last group of a row may be shorter (a ragged group) when the row length is not a
 * multiple. A per-channel scheme is one group spanning the row. Each group is stored as
 * <pre>
 *   f16 scale | [int8 zeroPoint, asymmetric only] | codes
 * </pre>
 * and value = scale · (q − zeroPoint); symmetric schemes have zeroPoint = 0 and store none. How codes are laid out:
 * <ul>
 *   <li>8 bits: q as a signed byte, in order;</li>
 *   <li>4 bits: q + 8 as nibbles in ggml's order: in each run of 32 values (the last run of a group may be shorter,
 *       r values), byte j holds value j in its low nibble and value j + r/2 in its high nibble;</li>
 *   <li>2, 3, 5, 6, 7 bits: q − qmin (qmin = −2^(bits−1)), packed low bits first (as {@code BitPacking}), the last
 *       byte of a group padded with zero bits.</li>
 * </ul>
 * So a symmetric INT4 group of 32 is byte for byte a ggml Q4_0 block, and a symmetric INT8 group of 32 a Q8_0 block.
 *
 * @param groupSize values per group, or 0 for one group per row (per-channel)
 */
public record IntQuantType(int bits, int groupSize, boolean symmetric) implements StorageType {

    public IntQuantType {
        if (bits < 2 || bits > 8) throw new IllegalArgumentException("2..8 bits, not " + bits);
        if (groupSize < 0) throw new IllegalArgumentException("group size must be positive (or 0 for per-channel)");
        if (bits == 4 && groupSize % 2 != 0) throw new IllegalArgumentException("4-bit groups hold an even number of values");
    }

    public static IntQuantType perChannel(int bits, boolean symmetric) { return new IntQuantType(bits, 0, symmetric); }

    public boolean perChannel() { return groupSize == 0; }

    public int headerBytes() { return 2 + (symmetric ? 0 : 1); }

    /** Bytes of a group of {@code n} values. */
    public int groupBytes(int n) { return headerBytes() + (n * bits + 7) / 8; }

    /** Length of group {@code g} in a row of {@code cols} values. */
    public int groupLength(int cols, int g) {
        int size = perChannel() ? cols : groupSize;
        return Math.min(size, cols - g * size);
    }

    public int groupsPerRow(int cols) { return perChannel() ? 1 : (cols + groupSize - 1) / groupSize; }

    /** Byte offset of group g within a row (every group before the last is full). */
    public long groupOffset(int cols, int g) { return perChannel() ? 0 : (long) g * groupBytes(groupSize); }

    @Override public long rowBytes(long cols) {
        if (cols == 0) return 0;
        if (bits == 4 && cols % 2 != 0) throw new IllegalArgumentException("4-bit rows hold an even number of values, not " + cols);
        if (perChannel()) return groupBytes((int) cols);
        long full = cols / groupSize;
        int rem = (int) (cols % groupSize);
        return full * groupBytes(groupSize) + (rem > 0 ? groupBytes(rem) : 0);
    }

    @Override public int blockSize() { return perChannel() ? 1 : groupSize; }

    @Override public int typeSize() { return perChannel() ? headerBytes() + bits : groupBytes(groupSize); }

    @Override public long byteSize(long count) {
        if (perChannel()) throw new IllegalArgumentException("per-channel storage has no size without the row length");
        if (count % groupSize != 0) throw new IllegalArgumentException(count + " values do not divide into groups of " + groupSize);
        return Math.multiplyExact(count / groupSize, (long) groupBytes(groupSize));
    }

    @Override public double bitsPerWeight() { return perChannel() ? bits : 8.0 * groupBytes(groupSize) / groupSize; }

    @Override public String name() { return "INT" + bits + (symmetric ? "S" : "A") + (perChannel() ? "_C" : "_G" + groupSize); }

    /** Parses {@link #name()}: "INT4A_G32", "INT8S_C". */
    public static IntQuantType parse(String name) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("INT([2-8])([SA])_(C|G([1-9][0-9]{0,6}))").matcher(name);
        if (!m.matches()) throw new IllegalArgumentException("not a quant4j integer storage type: '" + name + "'");
        return new IntQuantType(Integer.parseInt(m.group(1)), m.group(4) == null ? 0 : Integer.parseInt(m.group(4)), m.group(2).equals("S"));
    }

    public int qmin() { return -(1 << (bits - 1)); }

    public int qmax() { return (1 << (bits - 1)) - 1; }

    // ---- one group -------------------------------------------------------------------------------------------

    /** Writes a group of n values: the scale (rounded to f16), the zero point and the codes q (each in [qmin, qmax]). */
    public void writeGroup(MemorySegment dst, long off, int n, float scale, int zeroPoint, int[] q, int qOff) {
        dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, off, Float.floatToFloat16(scale));
        if (!symmetric) dst.set(ValueLayout.JAVA_BYTE, off + 2, (byte) zeroPoint);
        long codes = off + headerBytes();
        int codeBytes = (n * bits + 7) / 8;
        for (int i = 0; i < codeBytes; i++) dst.set(ValueLayout.JAVA_BYTE, codes + i, (byte) 0);
        for (int i = 0; i < n; i++) {
            int qi = q[qOff + i];
            if (qi < qmin() || qi > qmax()) throw new IllegalArgumentException("code " + qi + " outside [" + qmin() + ", " + qmax() + "]");
            if (bits == 8) {
                dst.set(ValueLayout.JAVA_BYTE, codes + i, (byte) qi);
            } else if (bits == 4) {
                int run = i / 32, j = i % 32, half = Math.min(32, n - run * 32) / 2;
                long at = codes + run * 16L + (j % half);
                int nibble = (qi + 8) << (j < half ? 0 : 4);
                dst.set(ValueLayout.JAVA_BYTE, at, (byte) (dst.get(ValueLayout.JAVA_BYTE, at) | nibble));
            } else {
                long bit = (long) i * bits;
                long at = codes + (bit >>> 3);
                int shift = (int) (bit & 7);
                int v = (qi - qmin()) << shift;
                dst.set(ValueLayout.JAVA_BYTE, at, (byte) (dst.get(ValueLayout.JAVA_BYTE, at) | v));
                if (shift + bits > 8) dst.set(ValueLayout.JAVA_BYTE, at + 1, (byte) (dst.get(ValueLayout.JAVA_BYTE, at + 1) | (v >>> 8)));
            }
        }
    }

    public float scale(MemorySegment src, long groupOff) { return Float.float16ToFloat(src.get(ValueLayout.JAVA_SHORT_UNALIGNED, groupOff)); }

    public int zeroPoint(MemorySegment src, long groupOff) { return symmetric ? 0 : src.get(ValueLayout.JAVA_BYTE, groupOff + 2); }

    /** The integer code q of value i of a group of n values at {@code groupOff}. */
    public int code(MemorySegment src, long groupOff, int n, int i) {
        long codes = groupOff + headerBytes();
        if (bits == 8) return src.get(ValueLayout.JAVA_BYTE, codes + i);
        if (bits == 4) {
            int run = i / 32, j = i % 32, half = Math.min(32, n - run * 32) / 2;
            int b = src.get(ValueLayout.JAVA_BYTE, codes + run * 16L + (j % half)) & 0xff;
            return (j < half ? b & 0x0f : b >>> 4) - 8;
        }
        long bit = (long) i * bits;
        long at = codes + (bit >>> 3);
        int shift = (int) (bit & 7);
        int v = src.get(ValueLayout.JAVA_BYTE, at) & 0xff;
        if (shift + bits > 8) v |= (src.get(ValueLayout.JAVA_BYTE, at + 1) & 0xff) << 8;
        return ((v >>> shift) & ((1 << bits) - 1)) + qmin();
    }

    // ---- rows ------------------------------------------------------------------------------------------------

    /** Dequantizes a row of {@code cols} values stored at byte {@code off}. */
    public void decodeRow(MemorySegment src, long off, int cols, float[] dst, int dstOff) {
        for (int g = 0; g < groupsPerRow(cols); g++) {
            long go = off + groupOffset(cols, g);
            int n = groupLength(cols, g), base = dstOff + (perChannel() ? 0 : g * groupSize);
            float s = scale(src, go);
            int z = zeroPoint(src, go);
            for (int i = 0; i < n; i++) dst[base + i] = s * (code(src, go, n, i) - z);
        }
    }

    /** Scalar reference: Σ_i w_i · x_i over a row of {@code cols} values. */
    public float dotScalar(MemorySegment w, long off, float[] x, int xOff, int cols) {
        float sum = 0;
        for (int g = 0; g < groupsPerRow(cols); g++) {
            long go = off + groupOffset(cols, g);
            int n = groupLength(cols, g), base = xOff + (perChannel() ? 0 : g * groupSize);
            int z = zeroPoint(w, go);
            float acc = 0;
            for (int i = 0; i < n; i++) acc += (code(w, go, n, i) - z) * x[base + i];
            sum += scale(w, go) * acc;
        }
        return sum;
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    /**
     * Vector path: 8 codes at a time are widened to ints, offset by the zero point and converted to floats in
     * registers, multiplied with x and accumulated per group; each group's sum joins the row's with one FMA by its
     * scale, and the lanes are added once per row. 8-bit codes and full 32-value runs of 4-bit codes take the vector
     * path; other widths and ragged tails use the scalar loop.
     */
    public float dot(MemorySegment w, long off, float[] x, int xOff, int cols) {
        if (bits != 8 && bits != 4) return dotScalar(w, off, x, xOff, cols);
        int header = headerBytes();
        int groups = groupsPerRow(cols);
        FloatVector total = FloatVector.zero(F);
        float tailSum = 0;
        for (int g = 0; g < groups; g++) {
            long go = off + groupOffset(cols, g);
            int n = groupLength(cols, g), xo = xOff + (perChannel() ? 0 : g * groupSize);
            int z = zeroPoint(w, go);
            float scale = scale(w, go);
            FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
            int i = 0;
            long codes = go + header;
            if (bits == 8) {
                for (; i + 16 <= n; i += 16) {
                    IntVector q0 = (IntVector) ByteVector.fromMemorySegment(B64, w, codes + i, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
                    IntVector q1 = (IntVector) ByteVector.fromMemorySegment(B64, w, codes + i + 8, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
                    acc0 = ((FloatVector) q0.sub(z).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + i), acc0);
                    acc1 = ((FloatVector) q1.sub(z).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + i + 8), acc1);
                }
            } else {
                int shift = 8 + z;                                          // value/scale = nibble − 8 − z
                for (; i + 32 <= n; i += 32) {
                    for (int j = 0; j < 16; j += 8) {
                        IntVector b = (IntVector) ByteVector.fromMemorySegment(B64, w, codes + i / 2 + j, ByteOrder.LITTLE_ENDIAN)
                                .convertShape(VectorOperators.B2I, I, 0);
                        FloatVector lo = (FloatVector) b.and(0x0f).sub(shift).convertShape(VectorOperators.I2F, F, 0);
                        FloatVector hi = (FloatVector) b.lanewise(VectorOperators.LSHR, 4).and(0x0f).sub(shift).convertShape(VectorOperators.I2F, F, 0);
                        acc0 = lo.fma(FloatVector.fromArray(F, x, xo + i + j), acc0);
                        acc1 = hi.fma(FloatVector.fromArray(F, x, xo + i + 16 + j), acc1);
                    }
                }
            }
            total = acc0.add(acc1).fma(FloatVector.broadcast(F, scale), total);
            if (i < n) {
                float tail = 0;
                for (; i < n; i++) tail += (code(w, go, n, i) - z) * x[xo + i];
                tailSum += scale * tail;
            }
        }
        return org.quant4j.kernel.FloatKernels.sum(total) + tailSum;
    }
}
