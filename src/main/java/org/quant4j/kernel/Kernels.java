package org.quant4j.kernel;

/**
 * Which kernel path runs: the Vector API fast path (default) or the scalar reference. Select the reference with
 * {@code -Dquant4j.kernels=scalar} or {@code QUANT4J_KERNELS=scalar}; tests compare the two directly.
 */
public final class Kernels {
    private Kernels() {}

    private static volatile boolean vector = !"scalar".equalsIgnoreCase(
            System.getProperty("quant4j.kernels", System.getenv().getOrDefault("QUANT4J_KERNELS", "vector")));

    public static boolean vector() { return vector; }

    public static void setVector(boolean on) { vector = on; }
}
