package org.quant4j.cli;

import org.quant4j.model.KnownConfigs;
import org.quant4j.model.LlamaConfig;

/** Resolves a --config argument: a known model name, or a Hugging Face config.json. */
final class Configs {
    private Configs() {}

    static LlamaConfig resolve(String nameOrPath) {
        if (nameOrPath.endsWith(".json")) return org.quant4j.io.hf.HfConfig.read(java.nio.file.Path.of(nameOrPath)).config();
        return KnownConfigs.get(nameOrPath);
    }
}
