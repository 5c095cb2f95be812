package org.quant4j.io.onnx;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.hf.BertNames;
import org.quant4j.io.onnx.proto.Onnx.AttributeProto;
import org.quant4j.io.onnx.proto.Onnx.GraphProto;
import org.quant4j.io.onnx.proto.Onnx.ModelProto;
import org.quant4j.io.onnx.proto.Onnx.NodeProto;
import org.quant4j.io.onnx.proto.Onnx.StringStringEntryProto;
import org.quant4j.io.onnx.proto.Onnx.TensorProto;
import org.quant4j.model.Bert;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.TokenizerJson;
import org.quant4j.util.MappedFile;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

/**
 * Reads the weights of a BERT-family encoder exported to ONNX (PyTorch's exporter, Hugging Face Optimum, the graphs
 * langchain4j ships) into a quant4j {@link Model} with llama.cpp's {@code bert} tensor names, run by {@link Bert}.
 *
 * <p>The file is parsed with protobuf-java and ONNX's published {@code onnx.proto} (mapped, with the initializers'
 * bytes aliased, not copied); initializers stored as external data are mapped from their files beside the model.
 * The graph is read, not executed: named initializers keep their Hugging Face names ({@code embeddings.*},
 * {@code encoder.layer.N.*.bias}), while the exporter's anonymous {@code MatMul} weights ({@code onnx::MatMul_787},
 * stored [in, out] because the graph computes x · B) are named by the bias added to their output and transposed to
 * quant4j's [out, in]. The number of heads comes from the attention's Reshape to (batch, seq, heads, headDim), the
 * LayerNorm epsilon from the graph's constant, the GELU form from its Erf or Tanh node. The pooling is not part of
 * the graph: it comes from a sentence-transformers {@code 1_Pooling/config.json} beside the model, or is given, or is
 * mean pooling. The tokenizer is the {@code tokenizer.json} (or {@code <name>-tokenizer.json}) beside the model.
 */
public final class OnnxModelReader {
    private OnnxModelReader() {}

    /**
     * @param pooling   the pooling, or null to read it from 1_Pooling/config.json beside the model (else MEAN)
     * @param normalize L2-normalise the pooled embedding (sentence-transformers' Normalize module)
     * @param tokenizer tokenizer.json to use, or null to look beside the model
     */
    public record Options(Bert.Pooling pooling, boolean normalize, Path tokenizer) {
        public static Options defaults() { return new Options(null, true, null); }
    }

    public static Model load(Path path) { return load(path, Options.defaults()); }

    public static Model load(Path path, Options options) {
        return MappedFile.map(path, (arena, file) -> {
            List<AutoCloseable> resources = new ArrayList<>();
            resources.add(arena);
            try {
                ModelProto proto = parse(path, file);
                for (NodeProto n : proto.getGraph().getNodeList()) {
                    if (Set.of("MatMulInteger", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearMatMul").contains(n.getOpType())) {
                        throw new Q4jException(path + ": a quantized ONNX graph (" + n.getOpType() + " node " + n.getName()
                                + "); quant4j imports float graphs and quantizes them itself");
                    }
                }
                Map<String, Tensor> tensors = new Mapper(path, proto.getGraph(), arena).tensors();
                LlamaConfig config = config(path, proto.getGraph(), tensors);
                Bert.checkTensors(config, tensors, path.toString());
                Map<String, GgufValue> meta = new LinkedHashMap<>();
                meta.put("general.architecture", GgufValue.string(Bert.ARCHITECTURE));
                meta.put("general.name", GgufValue.string(stem(path)));
                meta.putAll(Bert.metadata(options.pooling() != null ? options.pooling() : poolingBeside(path),
                        options.normalize(), gelu(proto.getGraph())));
                // what llama.cpp's bert architecture reads beside the sizes, for GGUF export
                meta.put("bert.attention.layer_norm_epsilon", GgufValue.f32(config.normEps()));
                meta.put("bert.attention.causal", GgufValue.bool(false));
                if (tensors.containsKey(Bert.TOKEN_TYPES)) meta.put("tokenizer.ggml.token_type_count", GgufValue.u32((int) tensors.get(Bert.TOKEN_TYPES).rows()));
                Path tok = options.tokenizer() != null ? options.tokenizer() : tokenizerBeside(path);
                if (tok != null) meta.putAll(TokenizerJson.toMetadata(tok));
                return new Model(config, tensors, meta, path.toString(), resources);
            } catch (RuntimeException | Error e) {
                for (int i = 1; i < resources.size(); i++) try { resources.get(i).close(); } catch (Exception ignored) { }
                throw e;
            }
        });
    }

    private static ModelProto parse(Path path, MemorySegment file) {
        try {
            if (file.byteSize() > Integer.MAX_VALUE) {
                throw new Q4jException(path + ": " + file.byteSize() + " bytes; an ONNX protobuf is at most 2 GB (larger models keep their weights in external data files)");
            }
            CodedInputStream in = CodedInputStream.newInstance(file.asByteBuffer());
            in.enableAliasing(true); // initializer bytes stay slices of the mapped file
            in.setSizeLimit(Integer.MAX_VALUE);
            in.setRecursionLimit(1000);
            ModelProto proto = ModelProto.parseFrom(in);
            if (!proto.hasGraph()) throw new Q4jException(path + ": not an ONNX model (no graph)");
            return proto;
        } catch (IOException e) {
            throw new Q4jException(path + ": not a valid ONNX protobuf: " + e.getMessage(), e);
        }
    }

    private static String stem(Path p) {
        String n = p.getFileName().toString();
        return n.endsWith(".onnx") ? n.substring(0, n.length() - 5) : n;
    }

    // ---- initializers → quant4j tensors ------------------------------------------------------------------------

    /** Maps the graph's weight initializers onto llama.cpp's bert names. */
    private static final class Mapper {
        final Path path;
        final GraphProto graph;
        final Arena arena;
        final Map<String, TensorProto> initializers = new LinkedHashMap<>();
        final Map<String, List<NodeProto>> consumers = new HashMap<>();
        final Map<String, MemorySegment> externalFiles = new HashMap<>();

        Mapper(Path path, GraphProto graph, Arena arena) {
            this.path = path;
            this.graph = graph;
            this.arena = arena;
            for (TensorProto t : graph.getInitializerList()) initializers.put(t.getName(), t);
            for (NodeProto n : graph.getNodeList()) {
                for (String in : n.getInputList()) consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
            }
        }

        Map<String, Tensor> tensors() {
            Map<String, Tensor> out = new TreeMap<>(Comparator.comparing(OnnxModelReader::tensorOrder));
            for (TensorProto t : initializers.values()) {
                String gguf = BertNames.toGguf(t.getName());
                if (gguf != null) put(out, gguf, tensor(gguf, t, false));
            }
            for (NodeProto n : graph.getNodeList()) {
                boolean gemm = n.getOpType().equals("Gemm");
                if (!(n.getOpType().equals("MatMul") || gemm) || n.getInputCount() < 2) continue;
                TensorProto b = initializers.get(n.getInput(1));
                if (b == null || b.getDimsCount() != 2) continue; // activation × activation (attention scores)
                String gguf = weightName(n);
                if (gguf == null) continue;
                boolean transposed = gemm && attribute(n, "transB") != null && attribute(n, "transB").getI() == 1;
                put(out, gguf, tensor(gguf, b, !transposed)); // MatMul's B is [in, out]; quant4j stores [out, in]
            }
            return out;
        }

        private void put(Map<String, Tensor> out, String name, Tensor t) {
            if (out.putIfAbsent(name, t) != null) throw new Q4jException(path + ": two initializers map to tensor " + name);
        }

        /** The bert name of a MatMul's weight: from the bias added to its output, else from the node's name. */
        private String weightName(NodeProto matmul) {
            if (matmul.getOpType().equals("Gemm") && matmul.getInputCount() > 2) {
                String g = BertNames.toGguf(matmul.getInput(2));
                if (g != null && g.endsWith(".bias")) return g.substring(0, g.length() - 5) + ".weight";
            }
            for (NodeProto add : consumers.getOrDefault(matmul.getOutput(0), List.of())) {
                if (!add.getOpType().equals("Add")) continue;
                for (String in : add.getInputList()) {
                    String g = initializers.containsKey(in) ? BertNames.toGguf(in) : null;
                    if (g != null && g.endsWith(".bias")) return g.substring(0, g.length() - 5) + ".weight";
                }
            }
            // PyTorch's exporter names nodes after the module path: /encoder/layer.0/attention/self/query/MatMul
            String node = matmul.getName();
            if (node.startsWith("/") && node.endsWith("/MatMul")) {
                String hf = node.substring(1, node.length() - "/MatMul".length()).replace('/', '.') + ".weight";
                return BertNames.toGguf(hf);
            }
            return null;
        }

        /** A quant4j tensor over the initializer's bytes (transposed from [in, out] to [out, in] when asked). */
        private Tensor tensor(String name, TensorProto t, boolean transpose) {
            GgmlType type = switch (t.getDataType()) {
                case 1 -> GgmlType.F32;
                case 10 -> GgmlType.F16;
                case 16 -> GgmlType.BF16;
                default -> throw new Q4jException(path + ": initializer " + t.getName() + " (for " + name + ") has ONNX data type "
                        + t.getDataType() + "; weights must be float, float16 or bfloat16 (quantized ONNX graphs are not imported)");
            };
            long[] shape = new long[t.getDimsCount()];
            for (int i = 0; i < shape.length; i++) shape[i] = t.getDims(i);
            MemorySegment data = data(t, type, Tensor.byteSize(name, type, shape));
            if (!transpose) return new Tensor(name, type, shape, data);
            int rows = (int) shape[0], cols = (int) shape[1], size = type == GgmlType.F32 ? 4 : 2;
            byte[] dst = new byte[rows * cols * size];
            MemorySegment out = MemorySegment.ofArray(dst);
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    MemorySegment.copy(data, (long) (r * cols + c) * size, out, (long) (c * rows + r) * size, size);
                }
            }
            return new Tensor(name, type, new long[]{cols, rows}, out);
        }

        /** The bytes of an initializer: external data, raw_data, or the typed repeated fields. */
        private MemorySegment data(TensorProto t, GgmlType type, long bytes) {
            MemorySegment seg;
            if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
                seg = external(t);
            } else if (!t.getRawData().isEmpty()) {
                ByteString raw = t.getRawData();
                seg = MemorySegment.ofBuffer(raw.asReadOnlyByteBuffer());
            } else if (type == GgmlType.F32 && t.getFloatDataCount() > 0) {
                float[] f = new float[t.getFloatDataCount()];
                for (int i = 0; i < f.length; i++) f[i] = t.getFloatData(i);
                seg = MemorySegment.ofArray(new byte[f.length * 4]);
                MemorySegment.copy(f, 0, seg, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, f.length);
            } else if (type != GgmlType.F32 && t.getInt32DataCount() > 0) { // float16 / bfloat16 bits, one per int32
                seg = MemorySegment.ofArray(new byte[t.getInt32DataCount() * 2]);
                for (int i = 0; i < t.getInt32DataCount(); i++) seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, (short) t.getInt32Data(i));
            } else {
                seg = MemorySegment.ofArray(new byte[0]);
            }
            if (seg.byteSize() != bytes) {
                throw new Q4jException(path + ": initializer " + t.getName() + " holds " + seg.byteSize() + " bytes, its shape "
                        + t.getDimsList() + " needs " + bytes);
            }
            return seg;
        }

        /** external_data {location, offset, length}: a slice of the mapped file beside the model. */
        private MemorySegment external(TensorProto t) {
            String location = null;
            long offset = 0, length = -1;
            for (StringStringEntryProto e : t.getExternalDataList()) {
                switch (e.getKey()) {
                    case "location" -> location = e.getValue();
                    case "offset" -> offset = Long.parseLong(e.getValue());
                    case "length" -> length = Long.parseLong(e.getValue());
                    default -> { }
                }
            }
            if (location == null) throw new Q4jException(path + ": initializer " + t.getName() + " is external but names no location");
            Path dir = path.toAbsolutePath().getParent();
            Path file = dir.resolve(location).normalize();
            if (!file.startsWith(dir)) throw new Q4jException(path + ": initializer " + t.getName() + ": external data " + location + " lies outside the model's folder");
            MemorySegment whole = externalFiles.computeIfAbsent(location, k -> mapExternal(file, t.getName()));
            if (length < 0) length = whole.byteSize() - offset;
            if (offset < 0 || offset + length > whole.byteSize()) {
                throw new Q4jException(file + ": initializer " + t.getName() + ": offset " + offset + " + " + length + " bytes runs past end of file (" + whole.byteSize() + " bytes)");
            }
            return whole.asSlice(offset, length);
        }

        private MemorySegment mapExternal(Path file, String tensor) {
            try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ)) {
                return ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            } catch (IOException e) {
                throw new Q4jException(file + ": cannot read external data of initializer " + tensor + ": " + e.getMessage(), e);
            }
        }
    }

    /** Canonical order: embeddings first, then blocks by number, each block's tensors in forward order. */
    private static String tensorOrder(String name) {
        if (!name.startsWith("blk.")) return "0" + name;
        int dot = name.indexOf('.', 4);
        int layer = Integer.parseInt(name.substring(4, dot));
        String rest = name.substring(dot + 1);
        int rank = Arrays.asList("attn_q", "attn_k", "attn_v", "attn_output", "attn_output_norm", "ffn_up", "ffn_down", "layer_output_norm")
                .indexOf(rest.substring(0, rest.lastIndexOf('.')));
        return String.format("1%06d.%02d.%s", layer, rank, rest);
    }

    // ---- hyper-parameters from the graph -----------------------------------------------------------------------

    private static LlamaConfig config(Path path, GraphProto g, Map<String, Tensor> t) {
        String src = path.toString();
        Tensor embd = need(t, Bert.TOKEN_EMBD, src), pos = need(t, Bert.POSITION_EMBD, src), up = need(t, "blk.0.ffn_up.weight", src);
        int dim = (int) embd.cols();
        int layers = 0;
        while (t.containsKey(Model.blk(layers, "attn_q.weight"))) layers++;
        int heads = heads(g, dim);
        if (heads <= 0) throw new Q4jException(path + ": cannot find the number of attention heads in the graph (no Reshape to (batch, seq, heads, head size))");
        return new LlamaConfig(Bert.ARCHITECTURE, dim, (int) up.rows(), layers, heads, heads, dim / heads, (int) embd.rows(),
                (int) pos.rows(), epsilon(g), 10000f, LlamaConfig.RopeType.NORMAL, null, false, true);
    }

    private static Tensor need(Map<String, Tensor> t, String name, String src) {
        Tensor x = t.get(name);
        if (x == null) throw new Q4jException(src + ": no initializer maps to " + name + " (is this a BERT-family encoder?)");
        return x;
    }

    /** Heads from a Reshape to (batch, seq, heads, headDim) with heads · headDim = dim, or an Attention node's attribute. */
    static int heads(GraphProto g, int dim) {
        Map<String, NodeProto> producer = new HashMap<>();
        for (NodeProto n : g.getNodeList()) for (String o : n.getOutputList()) producer.put(o, n);
        Map<String, TensorProto> init = new HashMap<>();
        for (TensorProto t : g.getInitializerList()) init.put(t.getName(), t);
        for (NodeProto n : g.getNodeList()) {
            if ((n.getOpType().equals("Attention") || n.getOpType().equals("MultiHeadAttention")) && attribute(n, "num_heads") != null) {
                return (int) attribute(n, "num_heads").getI();
            }
            if (!n.getOpType().equals("Reshape") || n.getInputCount() < 2) continue;
            long[] shape = constantShape(n.getInput(1), producer, init);
            if (shape != null && shape.length == 4 && shape[2] > 0 && shape[3] > 0 && shape[2] * shape[3] == dim) return (int) shape[2];
        }
        return -1;
    }

    /** The values of a shape input when they are constants (-1 marks the entries computed at run time). */
    private static long[] constantShape(String name, Map<String, NodeProto> producer, Map<String, TensorProto> init) {
        if (init.containsKey(name)) return longs(init.get(name));
        NodeProto p = producer.get(name);
        if (p == null) return null;
        if (p.getOpType().equals("Constant")) {
            AttributeProto v = attribute(p, "value");
            return v == null ? null : longs(v.getT());
        }
        if (p.getOpType().equals("Concat")) {
            List<Long> out = new ArrayList<>();
            for (String in : p.getInputList()) {
                long[] part = constantShape(in, producer, init);
                if (part == null) out.add(-1L);
                else for (long x : part) out.add(x);
            }
            return out.stream().mapToLong(Long::longValue).toArray();
        }
        if (p.getOpType().equals("Unsqueeze")) return new long[]{-1};
        return null;
    }

    private static long[] longs(TensorProto t) {
        if (t.getDataType() != 7 && t.getDataType() != 6) return null; // int64, int32
        if (t.getInt64DataCount() > 0) return t.getInt64DataList().stream().mapToLong(Long::longValue).toArray();
        if (t.getInt32DataCount() > 0) return t.getInt32DataList().stream().mapToLong(Integer::longValue).toArray();
        var buf = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        int size = t.getDataType() == 7 ? 8 : 4;
        long[] out = new long[buf.remaining() / size];
        for (int i = 0; i < out.length; i++) out[i] = size == 8 ? buf.getLong() : buf.getInt();
        return out;
    }

    private static float scalarFloat(TensorProto t) {
        if (t.getDataType() != 1) return Float.NaN;
        if (t.getFloatDataCount() == 1) return t.getFloatData(0);
        if (t.getRawData().size() == 4) return t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).getFloat();
        return Float.NaN;
    }

    /** LayerNorm epsilon: a LayerNormalization node's attribute, or the constant added to the variance (x − mean)². */
    static float epsilon(GraphProto g) {
        Map<String, NodeProto> producer = new HashMap<>();
        for (NodeProto n : g.getNodeList()) for (String o : n.getOutputList()) producer.put(o, n);
        for (NodeProto n : g.getNodeList()) {
            if (n.getOpType().equals("LayerNormalization") || n.getOpType().equals("SkipLayerNormalization")) {
                AttributeProto e = attribute(n, "epsilon");
                return e == null ? 1e-5f : e.getF();
            }
            if (!n.getOpType().equals("Add") || n.getInputCount() != 2) continue;
            NodeProto a = producer.get(n.getInput(0)), b = producer.get(n.getInput(1));
            if (a != null && a.getOpType().equals("ReduceMean") && b != null && b.getOpType().equals("Constant")) {
                AttributeProto v = attribute(b, "value");
                float eps = v == null ? Float.NaN : scalarFloat(v.getT());
                if (eps > 0 && eps < 1e-2f) return eps;
            }
        }
        return 1e-12f; // BERT's layer_norm_eps
    }

    /** The GELU form the graph computes: Erf (exact) or Tanh (approximation). */
    static Bert.Gelu gelu(GraphProto g) {
        boolean tanh = false;
        for (NodeProto n : g.getNodeList()) {
            switch (n.getOpType()) {
                case "Erf", "Gelu", "BiasGelu" -> { return Bert.Gelu.ERF; }
                case "Tanh", "FastGelu" -> tanh = true;
                default -> { }
            }
        }
        return tanh ? Bert.Gelu.TANH : Bert.Gelu.ERF;
    }

    static AttributeProto attribute(NodeProto n, String name) {
        for (AttributeProto a : n.getAttributeList()) if (a.getName().equals(name)) return a;
        return null;
    }

    // ---- files beside the model --------------------------------------------------------------------------------

    /** tokenizer.json beside the model (or in its parent, Optimum's onnx/ layout); langchain4j names it {@code <stem>-tokenizer.json}. */
    public static Path tokenizerBeside(Path model) {
        Path dir = model.toAbsolutePath().getParent();
        for (Path d : new Path[]{dir, dir.getParent()}) {
            if (d == null) continue;
            for (String n : new String[]{stem(model) + "-tokenizer.json", "tokenizer.json"}) {
                if (Files.isRegularFile(d.resolve(n))) return d.resolve(n);
            }
        }
        return null;
    }

    /** The pooling a sentence-transformers folder's 1_Pooling/config.json names; MEAN without one. */
    public static Bert.Pooling poolingBeside(Path model) {
        Path dir = model.toAbsolutePath().getParent();
        for (Path d : new Path[]{dir, dir.getParent()}) {
            if (d == null) continue;
            Path cfg = d.resolve("1_Pooling").resolve("config.json");
            if (!Files.isRegularFile(cfg)) continue;
            try {
                JsonNode j = new ObjectMapper().readTree(cfg.toFile());
                if (j.path("pooling_mode_cls_token").asBoolean(false)) return Bert.Pooling.CLS;
                if (j.path("pooling_mode_mean_tokens").asBoolean(false)) return Bert.Pooling.MEAN;
                throw new Q4jException(cfg + ": only mean and cls pooling are supported");
            } catch (IOException e) {
                throw new Q4jException(cfg + ": cannot read: " + e.getMessage(), e);
            }
        }
        return Bert.Pooling.MEAN;
    }
}
