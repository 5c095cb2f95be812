package org.quant4j.format.ggml;

import org.junit.jupiter.api.Test;
import org.quant4j.format.GgmlType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The rounding helpers where the reference vectors do not tell the variants apart, and Q8_1 (no vectors). */
class CodecMathTest {

    @Test
    void roundfRoundsHalvesAwayFromZero() {
        assertEquals(3f, CodecMath.roundf(2.5f));
        assertEquals(-3f, CodecMath.roundf(-2.5f));
        assertEquals(1f, CodecMath.roundf(0.5f));
        assertEquals(-1f, CodecMath.roundf(-0.5f));
        assertEquals(2f, CodecMath.roundf(2.4999998f));
        assertEquals(-0f, CodecMath.roundf(-0.2f));
        assertEquals(127f, CodecMath.roundf(126.5f));
        assertEquals(8388609f, CodecMath.roundf(8388609f));
    }

    @Test
    void nearestIntRoundsHalvesToEven() {
        assertEquals(2, CodecMath.nearestInt(2.5f));
        assertEquals(4, CodecMath.nearestInt(3.5f));
        assertEquals(-2, CodecMath.nearestInt(-2.5f));
        assertEquals(0, CodecMath.nearestInt(-0.5f));
        assertEquals(-7, CodecMath.nearestInt(-6.7f));
        assertEquals(4194303, CodecMath.nearestInt(4194303f));
    }

    @Test
    void q8_0RoundsTiesAwayFromZero() {
        // amax 127 gives d = 1 exactly; 2.5 and -2.5 are ties that roundf sends to 3 and -3 (rint would give 2 and -2)
        float[] x = new float[32];
        x[0] = 127f; x[1] = 2.5f; x[2] = -2.5f; x[3] = 0.5f;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment q = arena.allocate(34);
            Q8_0Codec.INSTANCE.quantize(x, 0, 32, null, q, 0);
            assertEquals(127, q.get(CodecMath.I8, 2));
            assertEquals(3, q.get(CodecMath.I8, 3));
            assertEquals(-3, q.get(CodecMath.I8, 4));
            assertEquals(1, q.get(CodecMath.I8, 5));
        }
    }

    @Test
    void fp16ConversionIsRoundToNearestEvenWithGgmlNaN() {
        assertEquals((short) 0x3c00, CodecMath.fp32ToFp16(1f));
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1)
        assertEquals((short) 0x3c00, CodecMath.fp32ToFp16(1f + 0x1p-11f));
        assertEquals((short) 0x3c02, CodecMath.fp32ToFp16(1f + 3 * 0x1p-11f));
        assertEquals((short) 0x7c00, CodecMath.fp32ToFp16(65520f));   // rounds up to infinity
        assertEquals((short) 0x7bff, CodecMath.fp32ToFp16(65519f));
        assertEquals((short) 0x0001, CodecMath.fp32ToFp16(0x1p-24f));  // smallest subnormal
        assertEquals((short) 0x8000, CodecMath.fp32ToFp16(-0f));
        assertEquals((short) 0x7e00, CodecMath.fp32ToFp16(Float.intBitsToFloat(0x7f800001)));
        assertEquals((short) 0xfe00, CodecMath.fp32ToFp16(Float.intBitsToFloat(0xffc12345)));
    }

    @Test
    void bf16ConversionRoundsToNearestEvenAndKeepsNaNQuiet() {
        assertEquals((short) 0x3f80, CodecMath.fp32ToBf16(1f));
        assertEquals((short) 0x3f80, CodecMath.fp32ToBf16(Float.intBitsToFloat(0x3f808000))); // tie, even stays
        assertEquals((short) 0x3f82, CodecMath.fp32ToBf16(Float.intBitsToFloat(0x3f818000))); // tie, odd rounds up
        assertEquals((short) 0x3f81, CodecMath.fp32ToBf16(Float.intBitsToFloat(0x3f808001)));
        assertEquals((short) 0x7f80, CodecMath.fp32ToBf16(Float.intBitsToFloat(0x7f7fffff))); // max float → inf
        // a signalling NaN whose payload sits in the low bits would round to infinity; ggml forces the quiet bit
        assertEquals((short) 0x7fc0, CodecMath.fp32ToBf16(Float.intBitsToFloat(0x7f800001)));
        assertEquals((short) 0xffc1, CodecMath.fp32ToBf16(Float.intBitsToFloat(0xffc1ffff)));
        assertEquals((short) 0x0001, CodecMath.fp32ToBf16(Float.intBitsToFloat(0x00010000))); // subnormal kept
    }

    @Test
    void bestIndexInt8PicksTheNearestLevel() {
        byte[] v = CodecMath.KVALUES_IQ4NL;
        assertEquals(0, CodecMath.bestIndexInt8(v, -1000f));
        assertEquals(15, CodecMath.bestIndexInt8(v, 1000f));
        assertEquals(8, CodecMath.bestIndexInt8(v, 0f));      // |0 - 1| < |0 + 10|
        assertEquals(7, CodecMath.bestIndexInt8(v, -5f));     // -10 vs 1: 5 < 6
        assertEquals(8, CodecMath.bestIndexInt8(v, -4.5f));   // tie goes up
    }

    /** best_index_int8 as ggml writes it (bisection), to check the branch-free count gives the same index. */
    private static int bisect(byte[] val, float x) {
        int n = val.length;
        if (x <= val[0]) return 0;
        if (x >= val[n - 1]) return n - 1;
        int ml = 0, mu = n - 1;
        while (mu - ml > 1) {
            int mav = (ml + mu) / 2;
            if (x < val[mav]) mu = mav; else ml = mav;
        }
        return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
    }

    @Test
    void bestIndexInt8EqualsGgmlsBisection() {
        byte[] v = CodecMath.KVALUES_IQ4NL;
        Random rnd = new Random(3);
        for (int i = 0; i < 200_000; i++) {
            float x = switch (i % 4) {
                case 0 -> (float) (rnd.nextGaussian() * 80);
                case 1 -> v[rnd.nextInt(16)] + (rnd.nextInt(3) - 1) * Math.ulp((float) v[rnd.nextInt(16)]);
                case 2 -> { int k = rnd.nextInt(15); yield (v[k] + v[k + 1]) / 2f + (rnd.nextInt(3) - 1) * 1e-5f; }
                default -> Math.nextAfter((v[i % 15] + v[i % 15 + 1]) * 0.5f, rnd.nextBoolean() ? 1000 : -1000);
            };
            assertEquals(bisect(v, x), CodecMath.bestIndexInt8(v, x), "x = " + x);
        }
    }

    @Test
    void rowsThatDoNotDivideIntoBlocksAreRefused() {
        float[] x = new float[300];
        MemorySegment dst = MemorySegment.ofArray(new byte[1024]);
        var e = assertThrows(org.quant4j.util.Q4jException.class, () -> GgmlCodecs.of(GgmlType.IQ4_XS).quantize(x, 0, 300, null, dst, 0));
        assertTrue(e.getMessage().contains("300") && e.getMessage().contains("IQ4_XS"), e.getMessage());
        assertThrows(org.quant4j.util.Q4jException.class, () -> GgmlCodecs.of(GgmlType.Q4_0).dequantize(dst, 0, x, 0, 40));
    }

    @Test
    void q8_1StoresScaledSumAndRoundTrips() {
        Random rnd = new Random(7);
        int n = 96;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) rnd.nextGaussian();
        BlockCodec c = GgmlCodecs.of(GgmlType.Q8_1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment q = arena.allocate(GgmlType.Q8_1.rowBytes(n));
            c.quantize(x, 0, n, null, q, 0);
            float[] back = new float[n];
            c.dequantize(q, 0, back, 0, n);
            for (int b = 0; b < n / 32; b++) {
                float d = Float.float16ToFloat(q.get(CodecMath.I16, 36L * b));
                int sum = 0;
                for (int j = 0; j < 32; j++) {
                    sum += q.get(CodecMath.I8, 36L * b + 4 + j);
                    assertEquals(x[32 * b + j], back[32 * b + j], d * 0.5f + 1e-3f);
                }
                assertEquals(CodecMath.fp32ToFp16(sum * (float) (amax(x, 32 * b) / 127f)), q.get(CodecMath.I16, 36L * b + 2));
            }
        }
    }

    private static float amax(float[] x, int off) {
        float m = 0;
        for (int j = 0; j < 32; j++) m = Math.max(m, Math.abs(x[off + j]));
        return m;
    }
}
