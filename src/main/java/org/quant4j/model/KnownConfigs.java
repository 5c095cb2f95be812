package org.quant4j.model;

import org.quant4j.util.Q4jException;

import java.util.LinkedHashMap;
import java.util.Map;

/** Shapes of well-known models, for random-weight models used in architecture tests and speed benchmarks. */
public final class KnownConfigs {
    private KnownConfigs() {}

    private static final Map<String, LlamaConfig> CONFIGS = new LinkedHashMap<>();

    static {
        // name, arch, dim, hidden, layers, heads, kvHeads, headDim, vocab, ctx, eps, theta, rope, scaling, tied, qkvBias
        put("stories260k", new LlamaConfig("llama", 64, 172, 5, 8, 4, 8, 512, 512, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, true, false));
        put("stories15m", new LlamaConfig("llama", 288, 768, 6, 6, 6, 48, 32000, 256, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, true, false));
        put("tinyllama-1.1b", new LlamaConfig("llama", 2048, 5632, 22, 32, 4, 64, 32000, 2048, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, false, false));
        put("llama-3.2-1b", new LlamaConfig("llama", 2048, 8192, 16, 32, 8, 64, 128256, 131072, 1e-5f, 500000f, LlamaConfig.RopeType.NORMAL,
                new LlamaConfig.RopeScaling(32f, 1f, 4f, 8192), true, false));
        put("qwen2.5-0.5b", new LlamaConfig("qwen2", 896, 4864, 24, 14, 2, 64, 151936, 32768, 1e-6f, 1000000f, LlamaConfig.RopeType.NEOX, null, true, true));
        put("smollm-135m", new LlamaConfig("llama", 576, 1536, 30, 9, 3, 64, 49152, 2048, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, true, false));
        put("llama-2-7b", new LlamaConfig("llama", 4096, 11008, 32, 32, 32, 128, 32000, 4096, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, false, false));
    }

    private static void put(String name, LlamaConfig c) { CONFIGS.put(name, c); }

    public static Map<String, LlamaConfig> all() { return java.util.Collections.unmodifiableMap(CONFIGS); }

    public static LlamaConfig get(String name) {
        LlamaConfig c = CONFIGS.get(name.toLowerCase(java.util.Locale.ROOT));
        if (c == null) throw new Q4jException("unknown model shape '" + name + "'; known: " + String.join(", ", CONFIGS.keySet()));
        return c;
    }
}
