package org.quant4j.shared;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.quant4j.eval.Perplexity;
import org.quant4j.io.ModelLoader;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Checks on the larger files in ../shared (not shipped with the project): the 6.8M-parameter ref6M model in both its
 * llama.cpp-written GGUF and its llama2.c checkpoint with a separate output head. Run by .ci/run with -Dgroups=shared.
 */
@Tag("shared")
class SharedModelsTest {
    static final Path SHARED = Path.of("../shared");
    static final Path REF = SHARED.resolve("models/ref6M");

    @Test
    void ref6mGgufAndCheckpointAgree() {
        try (Model gguf = ModelLoader.load(REF.resolve("ref6M.gguf"));
             Model bin = ModelLoader.load(REF.resolve("ref6M.bin"), REF.resolve("tok4096.bin"))) {
            assertEquals(6_819_072, gguf.config().parameterCount());
            assertFalse(bin.config().tiedEmbeddings(), "negative vocab size: a separate output head");
            Tokenizer tg = Tokenizers.fromModel(gguf), tb = Tokenizers.fromModel(bin);
            String text = "And the LORD said unto Moses, def main(argv): return 0";
            assertArrayEquals(tg.encode(text), tb.encode(text), "tok4096.bin and the GGUF vocabulary tokenize alike");
            int[] ids = tg.encode(text);
            Llama a = new Llama(gguf), b = new Llama(bin);
            float[] la = a.forward(a.newState(64, 16), ids, true), lb = b.forward(b.newState(64, 16), ids, true);
            double d = 0;
            for (int i = 0; i < la.length; i++) d = Math.max(d, Math.abs(la[i] - lb[i]));
            assertTrue(d < 1e-3, "max abs logit difference " + d);
        }
    }

    /**
     * Tiny Shakespeare is part of ref6M's training text, WikiText-2 is not: the model must know the first far better
     * than the second. 4-bit RTN raises the perplexity a little.
     */
    @Test
    void ref6mKnowsItsTrainingTextBetterThanUnseenText() throws Exception {
        try (Model m = ModelLoader.load(REF.resolve("ref6M.gguf"))) {
            Tokenizer tok = Tokenizers.fromModel(m);
            int[] ids = tok.encode(Files.readString(SHARED.resolve("text/tinyshakespeare.txt")).substring(0, 40_000), true, false);
            int[] unseen = tok.encode(Files.readString(SHARED.resolve("text/wikitext-2-raw/wiki.test.raw")).substring(0, 40_000), true, false);
            double ppl = Perplexity.perplexity(new Llama(m), ids, 256, tok.bosId(), true, 8, null, null).ppl();
            double pplUnseen = Perplexity.perplexity(new Llama(m), unseen, 256, tok.bosId(), true, 8, null, null).ppl();
            assertTrue(ppl < pplUnseen / 2, "Tiny Shakespeare " + ppl + " vs WikiText-2 " + pplUnseen);
            Model w4 = Rtn.apply(m, Rtn.Options.of(QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32)));
            double ppl4 = Perplexity.perplexity(new Llama(w4), ids, 256, tok.bosId(), true, 8, null, null).ppl();
            assertTrue(ppl4 > ppl && ppl4 < ppl * 1.2, "W4 g32: " + ppl4 + " vs " + ppl);
        }
    }
}
