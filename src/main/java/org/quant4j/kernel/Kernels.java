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

    private static volatile boolean q8Activations = !"float".equalsIgnoreCase(
            System.getProperty("quant4j.activations", System.getenv().getOrDefault("QUANT4J_ACTIVATIONS", "q8")));

    /**
     * Whether the ggml types that llama.cpp multiplies in integers (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL on Q8_0; Q2_K,
     * Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0, TQ2_0 on Q8_K) quantize their activations to 8 bits once per matmul
     * ({@link Q8Kernels} and the files beside it, the default) or take them as floats
     * ({@code -Dquant4j.activations=float}: slower, and a little closer to the weights' own function).
     */
    public static boolean q8Activations() { return q8Activations; }

    public static void setQ8Activations(boolean on) { q8Activations = on; }

    private static final boolean nativeViews = !"off".equalsIgnoreCase(System.getProperty("quant4j.nativeViews", "on"));

    /**
     * The weights as the kernels should read them: a mapped file's segment as a plain native segment over the same
     * memory, with the same scope and read-only flag ({@code reinterpret} makes one); other segments as they are.
     *
     * <p>Why: the Vector API's loads are shared methods, and C2 compiles each kernel with the receiver classes those
     * methods have seen. Once the prompt GEMM has read mapped weights (MappedMemorySegmentImpl) and the generation
     * kernels have read repacked copies (NativeMemorySegmentImpl), every load in every kernel compiled later carries
     * both classes: measured on Q8Repacked's Q4_0 kernel, 2.5× the machine code and five times the register spills;
     * TinyLlama-shaped Q4_0 at one thread generated 8.25 tokens/s after a prompt batch without the views, 11.18 with. With one class the profiles stay
     * monomorphic. {@code -Dquant4j.nativeViews=off} turns it off, for measuring.
     */
    public static java.lang.foreign.MemorySegment view(java.lang.foreign.MemorySegment s) {
        return nativeViews && s.isMapped() ? s.reinterpret(s.byteSize()) : s;
    }
}
