package org.quant4j.cli;

import org.quant4j.model.KnownConfigs;
import org.quant4j.model.LlamaConfig;

/** Resolves a --config argument: a known model name, or a Hugging Face config.json. */
final class Configs {
    private Configs() {}

    static LlamaConfig resolve(String nameOrPath) {
        if (nameOrPath.endsWith(".json")) {
            throw new org.quant4j.util.Q4jException(nameOrPath + ": config.json support is not wired in yet");
        }
        return KnownConfigs.get(nameOrPath);
    }
}
