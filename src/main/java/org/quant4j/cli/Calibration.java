package org.quant4j.cli;

import org.quant4j.model.Model;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import org.quant4j.util.Q4jException;

import java.nio.file.Path;
import java.util.SplittableRandom;

/** Calibration data: seeded random windows of a text file's tokens, each starting with BOS. */
final class Calibration {
    private Calibration() {}

    static int[][] samples(Model model, Path text, int count, int length) {
        Tokenizer tok = Tokenizers.fromModel(model);
        int[] all = tok.encode(EvalCommand.read(text), false, false);
        int len = Math.min(length - 1, all.length);
        if (len < 1) throw new Q4jException(text + ": no text to calibrate on");
        SplittableRandom rng = new SplittableRandom(1234);
        int[][] out = new int[count][];
        for (int i = 0; i < count; i++) {
            int start = all.length - len <= 0 ? 0 : rng.nextInt(all.length - len + 1);
            out[i] = new int[len + 1];
            out[i][0] = tok.bosId() >= 0 ? tok.bosId() : all[start];
            System.arraycopy(all, start, out[i], 1, len);
        }
        return out;
    }
}
