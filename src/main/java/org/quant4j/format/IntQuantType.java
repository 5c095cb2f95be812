package org.quant4j.format;

import jdk.incubator.vector.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * quant4j's storage for linear integer quantization (RTN, GPTQ, AWQ weights): each row is cut into groups of
 * {@code groupSize} values (a per-channel scheme is one group per row; a ragged last group is not allowed: rows
 * divide into whole groups, as in every block format), and each group is stored as
 * <pre>
 *   f16 scale | [int8 zeroPoint, asymmetric only] | codes, bits·groupSize/8 bytes, packed low bits first
 * </pre>
 * and value = scale · (q − zeroPoint); symmetric schemes have zeroPoint = 0 and store none. How codes are laid out:
 * <ul>
 *   <li>8 bits: q as a signed byte, in order;</li>
 *   <li>4 bits: q + 8 as nibbles in ggml's order: in each run of 32 values, byte j holds value j in its low nibble and
 *       value j + 16 in its high nibble (groups of 4-bit codes are therefore multiples of 32);</li>
 *   <li>2, 3, 5, 6, 7 bits: q − qmin (qmin = −2^(bits−1)), packed low bits first (as {@code BitPacking}).</li>
 * </ul>
 * So a symmetric INT4 group of 32 is byte-for-byte a ggml Q4_0 block, and a symmetric INT8 group of 32 a Q8_0 block.
 * W8 per-channel, W4 g32/g64/g128 and W3/W2 g32 are all instances.
 */
public record IntQuantType(int bits, int groupSize, boolean symmetric) implements StorageType {

    public IntQuantType {
        if (bits < 2 || bits > 8) throw new IllegalArgumentException("2..8 bits, not " + bits);
        if (groupSize < 1 || (long) groupSize * bits % 8 != 0) {
            throw new IllegalArgumentException("a group of " + groupSize + " " + bits + "-bit codes must fill whole bytes");
        }
        if (bits == 4 && groupSize % 32 != 0) throw new IllegalArgumentException("4-bit groups are multiples of 32 values, not " + groupSize);
    }

    public int headerBytes() { return 2 + (symmetric ? 0 : 1); }

    public int codeBytes() { return groupSize * bits / 8; }

    /** Bytes of one group. */
    public int typeSize() { return headerBytes() + codeBytes(); }

    public int blockSize() { return groupSize; }


    public int qmin() { return -(1 << (bits - 1)); }

    public long byteSize(long count) {
        if (count % groupSize != 0) throw new IllegalArgumentException(count + " values do not divide into groups of " + groupSize);
        return Math.multiplyExact(count / groupSize, (long) typeSize());
    }

    public String name() { return "INT" + bits + (symmetric ? "S" : "A") + "_G" + groupSize; }

    // ---- encode / decode --------------------------------------------------------------------------------------

    /** Writes one group: the scale (rounded to f16), the zero point and the codes q (each in [qmin, qmax]). */
    public void writeGroup(MemorySegment dst, long off, float scale, int zeroPoint, int[] q, int qOff) {
        dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, off, Float.floatToFloat16(scale));
        if (!symmetric) dst.set(ValueLayout.JAVA_BYTE, off + 2, (byte) zeroPoint);
        long codes = off + headerBytes();
        for (int i = 0; i < codeBytes(); i++) dst.set(ValueLayout.JAVA_BYTE, codes + i, (byte) 0);
        for (int i = 0; i < groupSize; i++) {
            int q_i = q[qOff + i];
            if (bits == 8) {
                dst.set(ValueLayout.JAVA_BYTE, codes + i, (byte) q_i);
            } else if (bits == 4) {
                long at = codes + (i / 32) * 16 + (i % 16);
                int nibble = (q_i + 8) << ((i % 32) < 16 ? 0 : 4);
                dst.set(ValueLayout.JAVA_BYTE, at, (byte) (dst.get(ValueLayout.JAVA_BYTE, at) | nibble));
            } else {
                int u = q_i - qmin();
                long bit = (long) i * bits;
                long at = codes + (bit >>> 3);
                int shift = (int) (bit & 7);
                int v = u << shift;
                dst.set(ValueLayout.JAVA_BYTE, at, (byte) (dst.get(ValueLayout.JAVA_BYTE, at) | v));
                if (shift + bits > 8) dst.set(ValueLayout.JAVA_BYTE, at + 1, (byte) (dst.get(ValueLayout.JAVA_BYTE, at + 1) | (v >>> 8)));
            }
        }
    }

    public float scale(MemorySegment src, long groupOff) { return Float.float16ToFloat(src.get(ValueLayout.JAVA_SHORT_UNALIGNED, groupOff)); }

    public int zeroPoint(MemorySegment src, long groupOff) { return symmetric ? 0 : src.get(ValueLayout.JAVA_BYTE, groupOff + 2); }

    /** The integer code q of value i of the group at {@code groupOff}. */
    public int code(MemorySegment src, long groupOff, int i) {
        long codes = groupOff + headerBytes();
        if (bits == 8) return src.get(ValueLayout.JAVA_BYTE, codes + i);
        if (bits == 4) {
            int b = src.get(ValueLayout.JAVA_BYTE, codes + (i / 32) * 16 + (i % 16)) & 0xff;
            return ((i % 32) < 16 ? b & 0x0f : b >>> 4) - 8;
        }
        long bit = (long) i * bits;
        long at = groupOff + headerBytes() + (bit >>> 3);
        int shift = (int) (bit & 7);
        int v = src.get(ValueLayout.JAVA_BYTE, at) & 0xff;
        if (shift + bits > 8) v |= (src.get(ValueLayout.JAVA_BYTE, at + 1) & 0xff) << 8;
        return ((v >>> shift) & ((1 << bits) - 1)) + qmin();
    }

    /** Dequantizes n values (whole groups) starting at byte {@code off}. */
    public void decode(MemorySegment src, long off, float[] dst, int dstOff, int n) {
        for (int g = 0; g < n / groupSize; g++) {
            long go = off + (long) g * typeSize();
            float s = scale(src, go);
            int z = zeroPoint(src, go);
            for (int i = 0; i < groupSize; i++) dst[dstOff + g * groupSize + i] = s * (code(src, go, i) - z);
        }
    }

    // ---- dot products ------------------------------------------------------------------------------------------

    /** Scalar reference: Σ_i w_i · x_i over n values (whole groups). */
    public float dotScalar(MemorySegment w, long off, float[] x, int xOff, int n) {
        float sum = 0;
        for (int g = 0; g < n / groupSize; g++) {
            long go = off + (long) g * typeSize();
            int z = zeroPoint(w, go);
            float acc = 0;
            for (int i = 0; i < groupSize; i++) acc += (code(w, go, i) - z) * x[xOff + g * groupSize + i];
            sum += scale(w, go) * acc;
        }
        return sum;
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    /**
     * Vector path for 8- and 4-bit codes: 8 codes at a time are widened to ints, offset by the zero point and converted
     * to floats in registers, multiplied with x and accumulated; the scale is applied once per group. Other widths use
     * the scalar reference.
     */
    public float dot(MemorySegment w, long off, float[] x, int xOff, int n) {
        if (bits != 8 && bits != 4) return dotScalar(w, off, x, xOff, n);
        if (bits == 8 && groupSize % 8 != 0) return dotScalar(w, off, x, xOff, n);
        float sum = 0;
        int header = headerBytes();
        for (int g = 0; g < n / groupSize; g++) {
            long go = off + (long) g * typeSize();
            int z = zeroPoint(w, go);
            FloatVector acc = FloatVector.zero(F);
            int xo = xOff + g * groupSize;
            if (bits == 8) {
                for (int i = 0; i < groupSize; i += 8) {
                    IntVector q = (IntVector) ByteVector.fromMemorySegment(B64, w, go + header + i, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2I, I, 0);       // sign-extended: q
                    FloatVector v = (FloatVector) q.sub(z).convertShape(VectorOperators.I2F, F, 0);
                    acc = v.fma(FloatVector.fromArray(F, x, xo + i), acc);
                }
            } else {
                int shift = 8 + z;                                          // value/scale = nibble − 8 − z
                for (int c = 0; c < groupSize; c += 32) {
                    for (int j = 0; j < 16; j += 8) {
                        IntVector b = (IntVector) ByteVector.fromMemorySegment(B64, w, go + header + c / 2 + j, ByteOrder.LITTLE_ENDIAN)
                                .convertShape(VectorOperators.B2I, I, 0);
                        FloatVector lo = (FloatVector) b.and(0x0f).sub(shift).convertShape(VectorOperators.I2F, F, 0);
                        FloatVector hi = (FloatVector) b.lanewise(VectorOperators.LSHR, 4).and(0x0f).sub(shift).convertShape(VectorOperators.I2F, F, 0);
                        acc = lo.fma(FloatVector.fromArray(F, x, xo + c + j), acc);
                        acc = hi.fma(FloatVector.fromArray(F, x, xo + c + 16 + j), acc);
                    }
                }
            }
            sum += scale(w, go) * acc.reduceLanes(VectorOperators.ADD);
        }
        return sum;
    }

}
