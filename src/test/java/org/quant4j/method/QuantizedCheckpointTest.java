package org.quant4j.method;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.hf.HfCheckpoint;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** Quantized models saved as safetensors with quant4j's quantization_config reload bit-identically. */
class QuantizedCheckpointTest {

    @Test
    void rtnAndW8A8CheckpointsReloadBitIdentical(@TempDir Path dir) throws Exception {
        try (Model base = ModelLoader.load(Path.of("models/stories260K/stories260K.bin"))) {
            Model w4 = Rtn.apply(base, Rtn.Options.of(QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32))); // ragged ffn_down rows
            Model w8a8 = ActivationQuant.staticInt8(Rtn.apply(base, Rtn.Options.of(QuantScheme.symmetric(8, Granularity.CHANNEL))),
                    new int[][]{RtnTest.TOKENS});
            int k = 0;
            for (Model q : new Model[]{w4, w8a8}) {
                Path out = dir.resolve("q" + k++);
                HfCheckpoint.save(q, out, 0);
                String config = Files.readString(out.resolve("config.json"));
                assertTrue(config.contains("\"quant_method\": \"quant4j\""), config);
                try (Model back = ModelLoader.load(out)) {
                    for (Tensor t : q.tensors().values()) {
                        Tensor b = back.tensor(t.name());
                        assertEquals(t.type(), b.type(), t.name());
                        assertArrayEquals(t.shape(), b.shape(), t.name());
                        assertEquals(-1, t.data().mismatch(b.data()), t.name() + " bytes");
                    }
                    assertEquals(q.metadata().get(Llama.ACTIVATIONS_KEY), back.metadata().get(Llama.ACTIVATIONS_KEY));
                    assertArrayEquals(RtnTest.logits(q), RtnTest.logits(back), 0f, "identical logits");
                }
            }
        }
    }
}
