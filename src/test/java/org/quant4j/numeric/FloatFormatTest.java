package org.quant4j.numeric;

import org.junit.jupiter.api.Test;
import org.quant4j.format.FloatFormats;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Format constants from IEEE-754 and the OCP 8-bit floating point specification (v1.0), and exact conversions. */
class FloatFormatTest {

    @Test
    void constantsMatchTheSpecifications() {
        assertEquals(Float.MAX_VALUE, FloatFormat.FP32.max());
        assertEquals(Float.MIN_NORMAL, FloatFormat.FP32.minNormal());
        assertEquals(Float.MIN_VALUE, FloatFormat.FP32.minSubnormal());
        assertEquals(Math.ulp(1f), FloatFormat.FP32.epsilon());
        assertEquals(65504.0, FloatFormat.FP16.max());
        assertEquals(Math.scalb(1.0, -14), FloatFormat.FP16.minNormal());
        assertEquals(Math.scalb(1.0, -24), FloatFormat.FP16.minSubnormal());
        assertEquals(Math.scalb(1.0, -10), FloatFormat.FP16.epsilon());
        assertEquals(3.3895313892515355e38, FloatFormat.BF16.max());
        assertEquals(Float.MIN_NORMAL, FloatFormat.BF16.minNormal());
        assertEquals(Math.scalb(1.0, -7), FloatFormat.BF16.epsilon());
        assertEquals(Math.scalb(1.0, -10), FloatFormat.TF32.epsilon());
        assertEquals(19, FloatFormat.TF32.bits());
        // OCP FP8: E4M3 max 448, min normal 2^-6, min subnormal 2^-9; E5M2 max 57344, 2^-14, 2^-16
        assertEquals(448.0, FloatFormat.FP8_E4M3.max());
        assertEquals(Math.scalb(1.0, -6), FloatFormat.FP8_E4M3.minNormal());
        assertEquals(Math.scalb(1.0, -9), FloatFormat.FP8_E4M3.minSubnormal());
        assertEquals(57344.0, FloatFormat.FP8_E5M2.max());
        assertEquals(Math.scalb(1.0, -14), FloatFormat.FP8_E5M2.minNormal());
        assertEquals(Math.scalb(1.0, -16), FloatFormat.FP8_E5M2.minSubnormal());
    }

    @Test
    void fp16AndBf16AgreeWithTheJdkAndGgmlOnMillionsOfValues() {
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < 2_000_000; i++) {
            float x = Float.intBitsToFloat(r.nextInt()); // every bit pattern: subnormals, huge values, NaNs
            if (Float.isNaN(x)) continue;
            assertEquals(Float.floatToFloat16(x) & 0xffff, FloatFormat.FP16.encode(x, false), "FP16 of " + x);
            assertEquals(FloatFormats.floatToBf16(x) & 0xffff, FloatFormat.BF16.encode(x, false), "BF16 of " + x);
            assertEquals(Float.floatToRawIntBits(x) & 0xffffffffL, FloatFormat.FP32.encode(x, false), "FP32 of " + x);
        }
    }

    @Test
    void everyFp8CodeRoundTrips() {
        for (FloatFormat f : new FloatFormat[]{FloatFormat.FP8_E4M3, FloatFormat.FP8_E5M2}) {
            for (int code = 0; code < 256; code++) {
                double v = f.decode(code);
                if (Double.isNaN(v)) continue;
                if (v == 0 && code != 0) { assertEquals(0x80, code); continue; }
                assertEquals(code, f.encode(v, false), f.name() + " code " + code + " = " + v);
            }
        }
        // E4M3 NaN codes are exactly S.1111.111; E5M2 has ±inf at 0x7C / 0xFC
        assertTrue(Double.isNaN(FloatFormat.FP8_E4M3.decode(0x7F)));
        assertEquals(448.0, FloatFormat.FP8_E4M3.decode(0x7E));
        assertEquals(Double.POSITIVE_INFINITY, FloatFormat.FP8_E5M2.decode(0x7C));
    }

    @Test
    void fp8RoundingAndOverflow() {
        FloatFormat e4 = FloatFormat.FP8_E4M3;
        assertEquals(448.0, e4.round(460, false), "below the midpoint to 480: rounds to the max");
        assertTrue(Double.isNaN(e4.round(470, false)), "rounds past the max: NaN (no infinities)");
        assertEquals(448.0, e4.round(1e6, true), "saturating mode clamps");
        assertEquals(-448.0, e4.round(-1e6, true));
        assertEquals(Math.scalb(1.0, -9), e4.round(Math.scalb(1.0, -10) * 1.01, false), "rounds up to the min subnormal");
        assertEquals(0.0, e4.round(Math.scalb(1.0, -10), false), "the halfway point to zero ties to even (zero)");
        FloatFormat e5 = FloatFormat.FP8_E5M2;
        assertEquals(Double.POSITIVE_INFINITY, e5.round(61440, false), "the midpoint above the max ties to even: infinity");
        assertEquals(57344.0, e5.round(61439, false));
        assertEquals(1.25, e5.round(1.3, false));
        assertEquals(1.0, e5.round(1.125, false), "a tie goes to the even mantissa");
    }

    @Test
    void intRanges() {
        assertEquals(-128, IntRange.signed(8).min());
        assertEquals(127, IntRange.signed(8).max());
        assertEquals(-127, IntRange.restricted(8).min());
        assertEquals(-7, IntRange.restricted(4).min());
        assertEquals(15, IntRange.unsigned(4).max());
        assertEquals(-2, IntRange.signed(2).min());
        assertEquals(4, IntRange.signed(2).levels());
        assertEquals(3, IntRange.restricted(2).levels());
    }
}
