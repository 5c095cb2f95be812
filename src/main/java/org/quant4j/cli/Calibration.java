package org.quant4j.cli;

import org.quant4j.method.calib.CalibrationWindows;
import org.quant4j.model.Model;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import org.quant4j.util.Q4jException;

import java.nio.file.Path;

/** Calibration data: seeded random windows of a text file's tokens, each starting with BOS. */
final class Calibration {
    private Calibration() {}

    static int[][] samples(Model model, Path text, int count, int length) {
        return samples(model, text, count, length, 1234);
    }

    static int[][] samples(Model model, Path text, int count, int length, long seed) {
        Tokenizer tok = Tokenizers.fromModel(model);
        int[] all = tok.encode(EvalCommand.read(text), false, false);
        try {
            return CalibrationWindows.sample(all, count, length, seed, tok.bosId());
        } catch (Q4jException e) {
            throw new Q4jException(text + ": " + e.getMessage());
        }
    }
}
