package org.quant4j.train;

import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufModelReader;
import org.quant4j.io.gguf.GgufModelWriter;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.model.Model;
import org.quant4j.train.Params.Param;
import org.quant4j.util.AtomicOutput;
import org.quant4j.util.Q4jException;

import java.io.*;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The training loop: batches from a {@link TokenData}, forward, backward, gradient clipping, AdamW with warm-up and
 * cosine decay, periodic validation; and resumable checkpoints: the model as an F32 GGUF file (the project's writer,
 * loadable by every command) plus the optimizer's state in a side file {@code <model>.adamw}.
 */
public final class Trainer {

    /**
     * @param steps       total optimizer steps (the cosine schedule ends here)
     * @param lr          peak learning rate; {@code minLr} the floor the cosine decays to
     * @param warmup      warm-up steps
     * @param gradClip    largest global gradient norm (0: no clipping)
     * @param seed        data order
     * @param evalEvery   validate every this many steps (0: only at the end)
     * @param valWindows  at most this many validation windows (rounded down to whole batches)
     */
    public record Options(int steps, int batch, int seq, float lr, float minLr, int warmup, float gradClip, AdamW.Hyper adam,
                          long seed, int evalEvery, int valWindows) {
        public Options {
            if (steps < 0 || batch < 1 || seq < 2) throw new Q4jException("training needs steps ≥ 0, batch ≥ 1 and seq ≥ 2");
        }
    }

    /** One logged step: training loss, learning rate, gradient norm before clipping; validation loss or NaN. */
    public record Point(int step, float loss, float lr, float gradNorm, double valLoss) {}

    public final Params params;
    public final LlamaTrainer model;
    public final AdamW optimizer;
    public final Options options;
    private final List<Param> trainable;       // what the optimizer updates: every parameter, or a LoRA adapter's A and B
    private final TokenData train, validation;
    private final int[] inputs, targets;
    public final List<Point> history = new ArrayList<>();
    private LlamaTrainer teacher;               // knowledge distillation: a frozen full-precision model, or null
    private float[] teacherProbs;               // (B·T, vocab)

    /**
     * Trains against a frozen teacher's next-token distributions instead of the data's one-hot tokens (as LLM-QAT
     * does for quantization-aware training): the student learns the whole distribution at every position, which
     * asks far more of a small training text than one token does. Validation still scores the real next token.
     */
    public void distillFrom(Params teacherParams) {
        this.teacher = new LlamaTrainer(teacherParams, options.batch(), options.seq());
        this.teacherProbs = new float[options.batch() * options.seq() * teacherParams.config.vocabSize()];
    }

    public Trainer(Params params, TokenData train, TokenData validation, Options o, FakeQuant weightQuant, boolean activationQuant) {
        this(params, train, validation, o, new LlamaTrainer(params, o.batch(), o.seq(), weightQuant, activationQuant), params.all());
    }

    /**
     * QLoRA: only the adapter trains; the base's linear weights stay in {@code base}'s quantized tensors and the rest
     * of {@code params} (from {@code Params.fromModel(base, false)}) stays as it is.
     */
    public static Trainer qlora(Params params, Model base, Lora lora, TokenData train, TokenData validation, Options o) {
        return new Trainer(params, train, validation, o, LlamaTrainer.qlora(params, base, lora, o.batch(), o.seq()), lora.params());
    }

    private Trainer(Params params, TokenData train, TokenData validation, Options o, LlamaTrainer model, List<Param> trainable) {
        this.params = params;
        this.options = o;
        this.train = train;
        this.validation = validation;
        this.model = model;
        this.trainable = trainable;
        this.optimizer = new AdamW(trainable, o.adam());
        this.inputs = new int[o.batch() * o.seq()];
        this.targets = new int[o.batch() * o.seq()];
    }

    /** Optimizer steps done so far. */
    public int step() { return optimizer.updates(); }

    /** Loss of the batch the next step will train on, without training (what resuming must reproduce). */
    public float peekLoss() {
        train.batch(options.seed(), step(), options.batch(), options.seq(), inputs, targets);
        return model.forward(inputs, targets);
    }

    /** The (inputs, targets) the next step will train on, each (B·T), in new arrays. */
    public int[][] nextBatch() {
        int[] in = new int[inputs.length], tg = new int[targets.length];
        train.batch(options.seed(), step(), options.batch(), options.seq(), in, tg);
        return new int[][]{in, tg};
    }

    /** One optimizer step; returns its point (with validation when due). */
    public Point trainStep() {
        int s = step();
        train.batch(options.seed(), s, options.batch(), options.seq(), inputs, targets);
        params.zeroGrad();
        if (model.lora() != null) model.lora().zeroGrad();
        float[] soft = null;
        if (teacher != null) {
            teacher.forward(inputs, targets);
            System.arraycopy(teacher.probabilities(), 0, teacherProbs, 0, teacherProbs.length);
            soft = teacherProbs;
        }
        float loss = model.forward(inputs, targets, soft);
        model.backward();
        float norm = AdamW.clipGradients(trainable, options.gradClip());
        float lr = AdamW.learningRate(s, options.steps(), options.warmup(), options.lr(), options.minLr());
        optimizer.update(trainable, lr);
        boolean last = s + 1 == options.steps();
        double val = validation != null && (last || options.evalEvery() > 0 && (s + 1) % options.evalEvery() == 0) ? validationLoss() : Double.NaN;
        Point p = new Point(s + 1, loss, lr, norm, val);
        history.add(p);
        return p;
    }

    /** Mean cross-entropy over the first non-overlapping validation windows, with the training-time quantization. */
    public double validationLoss() {
        int B = options.batch(), T = options.seq();
        int windows = Math.min(validation.windows(T), options.valWindows());
        int batches = windows / B;
        if (batches == 0) throw new Q4jException(validation.source() + ": too short for one validation batch of " + B + " × " + (T + 1) + " tokens");
        int[] in = new int[B * T], tg = new int[B * T];
        double sum = 0;
        for (int i = 0; i < batches; i++) {
            validation.sequential(i * B, B, T, in, tg);
            sum += model.forward(in, tg);
        }
        return sum / batches;
    }

    // ---- checkpoints ----------------------------------------------------------------------------------------------

    private static final int MAGIC = 0x51344a41; // "Q4JA"

    /** Writes the model (F32 GGUF) and, beside it, the optimizer state ({@code out + ".adamw"}). */
    public void save(Path out, Map<String, GgufValue> metadata) {
        if (model.lora() != null) throw new Q4jException("a QLoRA run saves its adapter (PeftAdapter) or the merged model, not a checkpoint");
        Map<String, GgufValue> meta = new LinkedHashMap<>(metadata);
        meta.put("quant4j.train.step", GgufValue.u32(step()));
        Model m = params.toModel(meta, out.toString());
        GgufModelWriter.write(m, out, GgmlType.F32);
        Path side = optimizerFile(out);
        AtomicOutput.write(side, ch -> {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            DataOutputStream d = new DataOutputStream(new BufferedOutputStream(bytes));
            d.writeInt(MAGIC);
            d.writeInt(optimizer.t);
            d.writeInt(params.all().size());
            for (Param p : params.all()) {
                d.writeUTF(p.name());
                d.writeInt(p.value().length);
                for (float x : optimizer.m.get(p)) d.writeFloat(x);
                for (float x : optimizer.v.get(p)) d.writeFloat(x);
            }
            d.flush();
            ch.write(java.nio.ByteBuffer.wrap(bytes.toByteArray()));
        });
    }

    public static Path optimizerFile(Path model) { return model.resolveSibling(model.getFileName() + ".adamw"); }

    /** Loads a checkpoint's weights (as {@link Params}) from its GGUF file. */
    public static Params loadParams(Path checkpoint) {
        try (Model m = GgufModelReader.load(checkpoint)) {
            return Params.fromModel(m);
        }
    }

    /** Restores the optimizer state written by {@link #save} (the step count, both moments). */
    public void loadOptimizer(Path checkpoint) {
        if (model.lora() != null) throw new Q4jException("resuming a QLoRA run is not supported yet");
        Path side = optimizerFile(checkpoint);
        try (DataInputStream d = new DataInputStream(new BufferedInputStream(Files.newInputStream(side)))) {
            if (d.readInt() != MAGIC) throw new Q4jException(side + ": not a quant4j optimizer state file");
            int t = d.readInt(), n = d.readInt();
            if (n != params.all().size()) throw new Q4jException(side + ": holds " + n + " tensors, the model has " + params.all().size());
            for (Param p : params.all()) {
                String name = d.readUTF();
                int len = d.readInt();
                if (!name.equals(p.name()) || len != p.value().length) {
                    throw new Q4jException(side + ": tensor " + name + " (" + len + " values) does not match " + p.name() + " (" + p.value().length + ")");
                }
                float[] m = optimizer.m.get(p), v = optimizer.v.get(p);
                for (int i = 0; i < len; i++) m[i] = d.readFloat();
                for (int i = 0; i < len; i++) v[i] = d.readFloat();
            }
            optimizer.t = t;
        } catch (EOFException e) {
            throw new Q4jException(side + ": truncated optimizer state");
        } catch (IOException e) {
            throw new Q4jException(side + ": cannot read optimizer state: " + e.getMessage());
        }
    }
}
