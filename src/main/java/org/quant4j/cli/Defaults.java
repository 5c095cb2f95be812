package org.quant4j.cli;

import java.nio.file.Path;

/** Where the bundled model and texts live: under the installation ({@code -Dquant4j.home}, set by the launcher). */
final class Defaults {
    private Defaults() {}

    static Path home() {
        String h = System.getProperty("quant4j.home");
        return h != null ? Path.of(h) : Path.of(".");
    }

    /** The bundled default model: stories260K (llama2.c checkpoint, with tok512.bin beside it). */
    static Path model() { return home().resolve("models/stories260K/stories260K.bin"); }

    /** Held-out text for the default model. */
    static Path evalText() { return home().resolve("data/text/tinystories_valid_excerpt.txt"); }

    /** Calibration text for the default model (not the held-out text). */
    static Path calibrationText() { return home().resolve("data/text/tinystories_sample.txt"); }
}
