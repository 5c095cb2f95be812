package org.quant4j.quant;

/**
 * Packs b-bit unsigned codes (b = 1..8) into bytes and back, for any number of codes. Code i occupies bits
 * [i·b, (i+1)·b) of the little-endian bit stream: the first code in the low bits of the first byte. For b = 2, 4 and 8
 * this is the usual "low nibble first" packing; for 3, 5 and 6 codes straddle byte boundaries.
 */
public final class BitPacking {
    private BitPacking() {}

    /** Bytes needed for {@code n} codes of {@code bits} bits. */
    public static int packedSize(int n, int bits) {
        return (int) (((long) n * bits + 7) / 8);
    }

    /** Packs {@code codes} (each in [0, 2^bits)) into a new byte array. */
    public static byte[] pack(int[] codes, int bits) {
        checkBits(bits);
        byte[] out = new byte[packedSize(codes.length, bits)];
        int mask = (1 << bits) - 1;
        long bitPos = 0;
        for (int i = 0; i < codes.length; i++) {
            int c = codes[i];
            if ((c & ~mask) != 0) throw new IllegalArgumentException("code " + c + " at " + i + " does not fit in " + bits + " bits");
            int byteIndex = (int) (bitPos >>> 3), shift = (int) (bitPos & 7);
            int v = c << shift; // at most 8 + 7 = 15 bits: spans two bytes at most
            out[byteIndex] |= (byte) v;
            if (shift + bits > 8) out[byteIndex + 1] |= (byte) (v >>> 8);
            bitPos += bits;
        }
        return out;
    }

    /** Unpacks {@code n} codes of {@code bits} bits. */
    public static int[] unpack(byte[] packed, int n, int bits) {
        checkBits(bits);
        if (packed.length < packedSize(n, bits)) {
            throw new IllegalArgumentException(n + " codes of " + bits + " bits need " + packedSize(n, bits) + " bytes, got " + packed.length);
        }
        int[] out = new int[n];
        int mask = (1 << bits) - 1;
        long bitPos = 0;
        for (int i = 0; i < n; i++) {
            int byteIndex = (int) (bitPos >>> 3), shift = (int) (bitPos & 7);
            int v = packed[byteIndex] & 0xff;
            if (shift + bits > 8) v |= (packed[byteIndex + 1] & 0xff) << 8;
            out[i] = (v >>> shift) & mask;
            bitPos += bits;
        }
        return out;
    }

    private static void checkBits(int bits) {
        if (bits < 1 || bits > 8) throw new IllegalArgumentException("codes of 1..8 bits, not " + bits);
    }
}
