package org.quant4j.method.calib;

import org.quant4j.model.Bert;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The calibration pipeline of GPTQ's sequential mode (IST-DASLab/gptq {@code llama_sequential}), one transformer block
 * at a time, in bounded memory:
 * <pre>
 *   hidden[n] = embed(sample n)                               (N, L, dim)
 *   for each block l:
 *       for each set of layers reading one input (q,k,v → o → gate,up → down):
 *           run block l over every sample, the layers quantized so far already quantized; a {@link Job} sees the
 *           set's input of each sample (L, cols); then it returns the set's quantized tensors
 *       hidden[n] = block l (quantized) over hidden[n]        the next block's inputs
 * </pre>
 * Only the hidden states (N, L, dim), one sample's layer input (L, cols) and the job's statistics are in memory;
 * weights stay where the model keeps them (mmapped; a finished block's mapped pages are released). With a
 * {@link CalibrationMemory} bound, the hidden states go to a mapped file beyond its budget and each set's quantized
 * tensors leave the heap as soon as the set is done; unbound, both stay on the heap.
 */
public final class SequentialCalibration {
    private SequentialCalibration() {}

    /** Inside a Llama block, the sets of linear layers in true-sequential order; each set reads one input. */
    public static final List<List<String>> LLAMA_TRUE_SEQUENTIAL = List.of(
            List.of("attn_q", "attn_k", "attn_v"), List.of("attn_output"), List.of("ffn_gate", "ffn_up"), List.of("ffn_down"));

    /** A method's work on one set of layers. */
    public interface Job {
        /** One calibration sample's input to the set: x (tokens, cols). The buffer is reused afterwards. */
        void observe(float[] x, int tokens);

        /** The set's quantized tensors, by name; {@code current} holds the set's weights as they are now. */
        Map<String, Tensor> finish(Model current);
    }

    @FunctionalInterface
    public interface Method {
        /** @param names the set's weight names ("blk.3.attn_q.weight", ...), all reading the same input of cols values */
        Job start(int layer, List<String> names, int cols);
    }

    /** Progress: {@code done} of {@code total} units (one unit = one sample through one block, or one layer quantized). */
    @FunctionalInterface
    public interface Progress {
        void update(long done, long total, String stage);

        Progress NONE = (done, total, stage) -> { };
    }

    /** Thrown (preallocated, without a stack trace) to stop a block once the observed input is complete. */
    private static final class Seen extends RuntimeException {
        Seen() { super(null, null, false, false); }
    }

    private static final Seen SEEN = new Seen();

    /** Tokens per forward batch: the whole sample when its attention scores (len² · heads floats) fit in 64 MiB. */
    public static int batchFor(LlamaConfig c, int len) {
        return (long) len * len * c.nHeads() <= (16L << 20) ? len : Math.min(len, 64);
    }

    /** Inside a BERT block (post-LayerNorm encoder), the sets of linear layers in order; each set reads one input. */
    public static final List<List<String>> BERT_TRUE_SEQUENTIAL = List.of(
            List.of("attn_q", "attn_k", "attn_v"), List.of("attn_output"), List.of("ffn_up"), List.of("ffn_down"));

    /**
     * What the pipeline needs of an architecture: the embedding, one block in place, an observer of linear-layer
     * inputs, and the sets of layers of a block. Decoders (Llama family) and encoders (BERT family) provide it.
     */
    public interface Stack {
        float[] embed(int[] ids);                 // (len, dim)

        void block(int layer, float[] x, int len); // x (len, dim) in place

        void observe(Llama.LinearObserver observer);

        List<List<String>> sets();
    }

    /** The stack of a model as it is now (its weights read when built). */
    public static Stack stack(Model model, int longest) {
        if (Bert.ARCHITECTURE.equals(model.config().architecture())) {
            Bert bert = new Bert(model);
            return new Stack() {
                public float[] embed(int[] ids) { return bert.embeddings(ids, null); }
                public void block(int layer, float[] x, int len) { bert.block(layer, x, len); }
                public void observe(Llama.LinearObserver o) { bert.setObserver(o); }
                public List<List<String>> sets() { return BERT_TRUE_SEQUENTIAL; }
            };
        }
        Llama llama = new Llama(model);
        Llama.State state = llama.newState(longest, batchFor(model.config(), longest));
        return new Stack() {
            public float[] embed(int[] ids) { return llama.embed(ids); }
            public void block(int layer, float[] x, int len) { state.reset(); llama.block(state, layer, x, len); }
            public void observe(Llama.LinearObserver o) { llama.setObserver(o); }
            public List<List<String>> sets() { return LLAMA_TRUE_SEQUENTIAL; }
        };
    }

    /**
     * @param samples calibration token sequences; a decoder's must all have one length, an encoder's (sentences, each
     *                with [CLS] … [SEP]) may differ
     */
    public static Model run(Model model, int[][] samples, Method method, Progress progress) {
        if (samples.length == 0) throw new Q4jException("calibration needs at least one sample");
        if (progress == null) progress = Progress.NONE;
        LlamaConfig c = model.config();
        boolean encoder = Bert.ARCHITECTURE.equals(c.architecture());
        int n = samples.length, longest = 0, dim = c.dim();
        for (int[] s : samples) {
            if (!encoder && s.length != samples[0].length) throw new Q4jException("calibration samples must have the same length (" + samples[0].length + " and " + s.length + ")");
            longest = Math.max(longest, s.length);
        }
        Stack stack = stack(model, longest);
        List<List<String>> sets = stack.sets();
        long perBlock = (long) (sets.size() + 1) * n + sets.stream().mapToInt(List::size).sum() * (long) n;
        long total = perBlock * c.nLayers(), done = 0;

        CalibrationMemory memory = CalibrationMemory.current();
        Model current = model;
        Map<String, Tensor> quantized = new LinkedHashMap<>();
        long[] start = new long[n + 1];                                 // sample i is rows [start[i], start[i + 1]) of hidden
        for (int i = 0; i < n; i++) start[i + 1] = start[i] + samples[i].length;
        try (CalibrationMemory.Activations hidden = memory.allocate("hidden", start[n], dim)) { // (Σ len, dim)
            for (int i = 0; i < n; i++) hidden.write(start[i], samples[i].length, stack.embed(samples[i]), 0);
            float[] scratch = new float[longest * dim];                 // (len, dim)
            for (int l = 0; l < c.nLayers(); l++) {
                for (List<String> set : sets) {
                    final int layer = l;
                    List<String> names = set.stream().map(s -> Model.blk(layer, s + ".weight")).toList();
                    String first = names.getFirst();
                    int cols = (int) current.tensor(first).cols();
                    Job job = method.start(l, names, cols);
                    float[] input = new float[longest * cols];          // (len, cols) one sample's input to the set
                    int[] filled = {0}, wanted = {0};
                    stack = stack(current, longest);
                    stack.observe((weight, x, batch, xCols) -> {
                        if (!weight.equals(first)) return;
                        System.arraycopy(x, 0, input, filled[0] * cols, batch * cols);
                        filled[0] += batch;
                        if (filled[0] == wanted[0]) throw SEEN;        // the rest of the block is not needed
                    });
                    for (int i = 0; i < n; i++) {
                        int len = samples[i].length;
                        hidden.read(start[i], len, scratch, 0);
                        filled[0] = 0;
                        wanted[0] = len;
                        try {
                            stack.block(l, scratch, len);
                        } catch (Seen stop) {
                            // like the reference's Catcher: stop the block once the set's input is known
                        }
                        if (filled[0] != len) throw new Q4jException("calibration: " + first + " saw " + filled[0] + " of " + len + " tokens");
                        job.observe(input, len);
                        progress.update(++done, total, "blk." + l + " " + String.join(",", set) + " inputs");
                    }
                    stack.observe(null);
                    Map<String, Tensor> out = job.finish(current);
                    for (var e : out.entrySet()) quantized.put(e.getKey(), memory.keep(e.getValue())); // off the heap as it finishes
                    current = model.withTensors(quantized);
                    done += (long) set.size() * n;
                    progress.update(done, total, "blk." + l + " " + String.join(",", set) + " quantized");
                }
                stack = stack(current, longest);
                for (int i = 0; i < n; i++) {
                    int len = samples[i].length;
                    hidden.read(start[i], len, scratch, 0);
                    stack.block(l, scratch, len);
                    hidden.write(start[i], len, scratch, 0);
                    progress.update(++done, total, "blk." + l + " outputs");
                }
                releaseMapped(model, l);
                releaseMapped(current, l);                              // the spilled quantized tensors of block l, once read
            }
        }
        return current;
    }

    /**
     * Block l's input weights are not read again: their pages of a mapped file leave this process's resident set
     * (madvise DONTNEED through {@link java.lang.foreign.MemorySegment#unload}; they stay in the page cache, and a later
     * read maps them in again). Without this, every block of a model streamed from disk stays resident to the end.
     */
    public static void releaseMapped(Model model, int layer) {
        String prefix = Model.blk(layer, "");
        for (Tensor t : model.tensors().values()) {
            if (t.name().startsWith(prefix) && t.data().isMapped()) t.data().unload();
        }
    }
}
