package org.quant4j.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.hf.HfCheckpoint;
import org.quant4j.io.safetensors.SafetensorsFile;
import org.quant4j.io.hf.HfNames;
import org.quant4j.tensor.Tensor;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The two RoPE layouts are the same function on differently ordered q/k rows: Hugging Face keeps Llama's q/k rows in
 * "rotate half" (NeoX) order, llama.cpp permutes them into adjacent pairs. So stories260K's weights as saved in a
 * Hugging Face checkpoint, run with NeoX rotation and no permutation, must give the logits the GGUF layout gives with
 * adjacent-pair rotation. This checks the permutation, the NeoX path and the safetensors round trip at once.
 */
class RopeLayoutTest {

    @Test
    void neoxOnHuggingFaceRowsEqualsNormalOnGgufRows(@TempDir Path dir) {
        try (Model base = ModelLoader.load(Path.of("models/stories260K/stories260K.bin"))) {
            HfCheckpoint.save(base, dir, 0);
            float[] ref = LlamaRuntimeTest.logits(base, LlamaRuntimeTest.SEQUENCE, 8);
            try (Model back = ModelLoader.load(dir)) {
                assertEquals(LlamaConfig.RopeType.NORMAL, back.config().ropeType());
                assertTrue(LlamaRuntimeTest.maxAbsDiff(ref, LlamaRuntimeTest.logits(back, LlamaRuntimeTest.SEQUENCE, 8)) < 1e-5, "HF round trip");
            }
            try (SafetensorsFile st = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
                Map<String, Tensor> raw = new LinkedHashMap<>();
                for (String hf : st.names()) raw.put(HfNames.toGguf(hf), st.tensor(hf).withName(HfNames.toGguf(hf)));
                LlamaConfig c = base.config();
                LlamaConfig neox = new LlamaConfig("llama", c.dim(), c.hiddenDim(), c.nLayers(), c.nHeads(), c.nKvHeads(), c.headDim(), c.vocabSize(),
                        c.contextLength(), c.normEps(), c.ropeTheta(), LlamaConfig.RopeType.NEOX, null, true, false);
                Model unpermuted = new Model(neox, raw, Map.of(), "hf rows", List.of());
                double d = LlamaRuntimeTest.maxAbsDiff(ref, LlamaRuntimeTest.logits(unpermuted, LlamaRuntimeTest.SEQUENCE, 8));
                assertTrue(d < 1e-4, "NeoX on HF rows vs adjacent pairs on GGUF rows: " + d);
                // and the wrong pairing really is different (the test can fail)
                Model wrong = new Model(c, raw, Map.of(), "hf rows, normal rope", List.of());
                assertTrue(LlamaRuntimeTest.maxAbsDiff(ref, LlamaRuntimeTest.logits(wrong, LlamaRuntimeTest.SEQUENCE, 8)) > 0.01);
            }
        }
    }
}
