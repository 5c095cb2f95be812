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
        if (org.quant4j.model.Bert.ARCHITECTURE.equals(model.config().architecture())) return sentences(model, text, count, length);
        Tokenizer tok = Tokenizers.fromModel(model);
        int[] all = tok.encode(EvalCommand.read(text), false, false);
        try {
            return CalibrationWindows.sample(all, count, length, seed, tok.bosId());
        } catch (Q4jException e) {
            throw new Q4jException(text + ": " + e.getMessage());
        }
    }

    /**
     * An encoder's calibration samples: what it embeds, sentences (the first {@code count} of 6 to 64 words in the file),
     * each as [CLS] … [SEP], cut to {@code length} tokens.
     */
    static int[][] sentences(Model model, Path text, int count, int length) {
        Tokenizer tok = Tokenizers.fromModel(model);
        java.util.List<String> s = org.quant4j.eval.EmbeddingAgreement.sentences(text, count);
        if (s.isEmpty()) throw new Q4jException(text + ": no sentences of 6 to 64 words to calibrate on");
        int[][] out = new int[s.size()][];
        for (int i = 0; i < out.length; i++) {
            int[] ids = tok.encode(s.get(i), true, false);
            if (ids.length > length) { int sep = ids[ids.length - 1]; ids = java.util.Arrays.copyOf(ids, length); ids[length - 1] = sep; }
            out[i] = ids;
        }
        return out;
    }
}
