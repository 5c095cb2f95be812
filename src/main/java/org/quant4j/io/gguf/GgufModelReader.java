package org.quant4j.io.gguf;

import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Loads a Llama-family GGUF file as a {@link Model}: tensors are slices of the mapped file (no copy). */
public final class GgufModelReader {
    private GgufModelReader() {}

    public static Model load(Path path) {
        GgufFile g = GgufFile.open(path);
        try {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Tensor t : g.tensors()) tensors.put(t.name(), t);
            String arch = g.getString("general.architecture", "llama");
            int vocabFromTensors = tensors.containsKey(Model.TOKEN_EMBD) ? (int) tensors.get(Model.TOKEN_EMBD).rows() : 0;
            boolean qkvBias = tensors.containsKey(Model.blk(0, "attn_q.bias"));
            LlamaConfig config = LlamaConfig.fromGguf(g.metadata(), path.toString(), vocabFromTensors,
                    tensors.containsKey(Model.OUTPUT), qkvBias);
            // keep everything that is not derived from the config (tokenizer, general.*, quantization info)
            Map<String, GgufValue> meta = new LinkedHashMap<>();
            for (Map.Entry<String, GgufValue> e : g.metadata().entrySet()) {
                String k = e.getKey();
                if (k.equals("general.architecture") || (k.startsWith(arch + ".") && !k.equals(arch + ".pooling_type")) || k.equals("general.alignment")) continue;
                meta.put(k, e.getValue());
            }
            return new Model(config, tensors, meta, path.toString(), List.of(g));
        } catch (RuntimeException e) {
            g.close();
            throw e;
        }
    }
}
