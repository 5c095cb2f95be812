package org.quant4j.method.calib;

import org.quant4j.util.Q4jException;

import java.util.SplittableRandom;

/** Calibration samples: seeded random windows of a token stream, each of {@code length} tokens starting with BOS. */
public final class CalibrationWindows {
    private CalibrationWindows() {}

    /**
     * @param tokens the whole text's tokens (no BOS)
     * @param bos    the BOS id, or −1 for none (the window's first token then stays)
     * @return (count, length) token windows; shorter when the text is shorter than a window
     */
    public static int[][] sample(int[] tokens, int count, int length, long seed, int bos) {
        if (count < 1 || length < 2) throw new Q4jException("calibration needs at least 1 sample of at least 2 tokens");
        int len = Math.min(length - 1, tokens.length);
        if (len < 1) throw new Q4jException("no text to calibrate on");
        SplittableRandom rng = new SplittableRandom(seed);
        int[][] out = new int[count][];
        for (int i = 0; i < count; i++) {
            int start = tokens.length - len <= 0 ? 0 : rng.nextInt(tokens.length - len + 1);
            out[i] = new int[len + 1];
            out[i][0] = bos >= 0 ? bos : tokens[start];
            System.arraycopy(tokens, start, out[i], 1, len);
        }
        return out;
    }
}
