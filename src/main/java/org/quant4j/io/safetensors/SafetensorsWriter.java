package org.quant4j.io.safetensors;

import org.quant4j.tensor.Tensor;
import org.quant4j.util.AtomicOutput;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;
import java.util.regex.Pattern;

/**
 * Writes safetensors files as the reference library ({@code safetensors.torch.save_file}) does, and sharded
 * checkpoints as {@code transformers}' {@code save_pretrained} does.
 *
 * <p>One file: tensors are laid out by decreasing dtype alignment, then by name (so every tensor starts aligned to
 * its element size); the header is compact JSON with {@code __metadata__} first and then the tensors in data order,
 * each as {@code {"dtype":..,"shape":[..],"data_offsets":[begin,end]}}, padded with spaces to a multiple of 8 bytes.
 * Tensor data streams from each tensor's MemorySegment; nothing is copied to the heap.
 *
 * <p>Sharded: tensors are grouped in the order given into shards of at most {@code maxShardBytes} of tensor data (a
 * tensor larger than that gets a shard of its own), named {@code model-00001-of-00003.safetensors}, with
 * {@code model.safetensors.index.json} holding {@code metadata.total_size} and the {@code weight_map}. A checkpoint
 * that fits one shard is written as {@code model.safetensors} with no index.
 */
public final class SafetensorsWriter {
    private SafetensorsWriter() {}

    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";
    private static final Pattern SHARD_NAME = Pattern.compile("model-\\d{5}-of-\\d{5}\\.safetensors");

    /** One tensor to write: any safetensors dtype, row-major shape, and its bytes. */
    public record Entry(String name, SafetensorsDtype dtype, long[] shape, MemorySegment data) {
        public Entry {
            shape = shape.clone();
            if (name.equals(SafetensorsFile.METADATA_KEY)) throw new Q4jException("a tensor cannot be named " + name);
            long count = 1;
            for (long d : shape) {
                if (d < 0) throw new Q4jException("tensor " + name + ": negative dimension in " + Arrays.toString(shape));
                count = Math.multiplyExact(count, d);
            }
            long need = dtype.byteSize(count);
            if (need < 0) throw new Q4jException("tensor " + name + ": " + count + " " + dtype + " elements do not fill whole bytes");
            if (data.byteSize() != need) {
                throw new Q4jException("tensor " + name + ": " + dtype + " " + Arrays.toString(shape) + " needs " + need
                        + " bytes, data has " + data.byteSize());
            }
        }

        @Override public long[] shape() { return shape.clone(); }

        /** A tensor whose ggml type safetensors can store as is (F32, F16, BF16, F64, I8-I64). */
        public static Entry of(Tensor t) {
            SafetensorsDtype dtype = t.type() instanceof org.quant4j.format.GgmlType g ? SafetensorsDtype.of(g) : null;
            if (dtype == null) {
                throw new Q4jException("tensor " + t.name() + " is " + t.type() + ", a block format safetensors cannot store as a plain dtype; dequantize it first");
            }
            return new Entry(t.name(), dtype, t.shape(), t.data());
        }

        public long byteSize() { return data.byteSize(); }
    }

    // ---- one file -----------------------------------------------------------------------------------------------

    /**
     * Writes one safetensors file through a temporary file renamed into place.
     *
     * @param metadata the {@code __metadata__} map (keys are written sorted), or null for none
     * @param inputs   files the output must not overwrite (the tensors' sources)
     */
    public static void write(Path out, Map<String, String> metadata, Collection<Entry> tensors, Path... inputs) {
        List<Entry> laidOut = layout(tensors);
        byte[] header = header(metadata, laidOut);
        AtomicOutput.write(out, ch -> {
            ByteBuffer n = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            writeFully(ch, n);
            writeFully(ch, ByteBuffer.wrap(header));
            for (Entry e : laidOut) {
                MemorySegment d = e.data();
                for (long pos = 0; pos < d.byteSize(); ) {
                    long chunk = Math.min(d.byteSize() - pos, 1L << 28);
                    MemorySegment slice = d.asSlice(pos, chunk);
                    writeFully(ch, slice.asByteBuffer());
                    if (slice.isMapped()) slice.unload(); // a mapped source (the input, spilled tensors) leaves the resident set once copied
                    pos += chunk;
                }
            }
        }, inputs);
    }

    public static void writeTensors(Path out, Map<String, String> metadata, Collection<Tensor> tensors, Path... inputs) {
        List<Entry> entries = new ArrayList<>();
        for (Tensor t : tensors) entries.add(Entry.of(t));
        write(out, metadata, entries, inputs);
    }

    /** The reference library's data order: decreasing dtype (alignment), then name by UTF-8 bytes. */
    static List<Entry> layout(Collection<Entry> tensors) {
        Set<String> seen = new HashSet<>();
        for (Entry e : tensors) if (!seen.add(e.name())) throw new Q4jException("tensor " + e.name() + " is given twice");
        List<Entry> sorted = new ArrayList<>(tensors);
        sorted.sort((a, b) -> {
            int c = b.dtype().compareTo(a.dtype());
            return c != 0 ? c : Arrays.compareUnsigned(a.name().getBytes(StandardCharsets.UTF_8), b.name().getBytes(StandardCharsets.UTF_8));
        });
        return sorted;
    }

    /** The header bytes for tensors already in data order: compact JSON, space-padded to a multiple of 8. */
    static byte[] header(Map<String, String> metadata, List<Entry> laidOut) {
        StringBuilder sb = new StringBuilder("{");
        if (metadata != null) {
            sb.append(jsonString(SafetensorsFile.METADATA_KEY)).append(":{");
            boolean first = true;
            for (Map.Entry<String, String> m : new TreeMap<>(metadata).entrySet()) {
                if (!first) sb.append(',');
                first = false;
                sb.append(jsonString(m.getKey())).append(':').append(jsonString(m.getValue()));
            }
            sb.append('}');
        }
        long offset = 0;
        for (Entry e : laidOut) {
            if (sb.length() > 1) sb.append(',');
            sb.append(jsonString(e.name())).append(":{\"dtype\":\"").append(e.dtype().name()).append("\",\"shape\":[");
            long[] shape = e.shape();
            for (int i = 0; i < shape.length; i++) sb.append(i > 0 ? "," : "").append(shape[i]);
            long end = offset + e.byteSize();
            sb.append("],\"data_offsets\":[").append(offset).append(',').append(end).append("]}");
            offset = end;
        }
        sb.append('}');
        byte[] json = sb.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    /** A JSON string literal escaped as serde_json escapes it (quote, backslash, control characters). */
    static String jsonString(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
    }

    // ---- sharded checkpoint -------------------------------------------------------------------------------------

    /**
     * Writes {@code tensors} into {@code dir} as a Hugging Face checkpoint: {@code model.safetensors}, or shards of at
     * most {@code maxShardBytes} of tensor data plus {@code model.safetensors.index.json}. Shard and index files of an
     * earlier checkpoint in {@code dir} that this one does not reuse are deleted afterwards (never an input).
     *
     * @param maxShardBytes the shard size limit; 0 or less means one file
     * @return the files written, index last
     */
    public static List<Path> writeSharded(Path dir, Map<String, String> metadata, List<Entry> tensors, long maxShardBytes, Path... inputs) {
        List<List<Entry>> shards = split(tensors, maxShardBytes <= 0 ? Long.MAX_VALUE : maxShardBytes);
        List<Path> written = new ArrayList<>();
        if (shards.size() <= 1) {
            Path out = dir.resolve(SINGLE_FILE);
            write(out, metadata, shards.isEmpty() ? List.of() : shards.get(0), inputs);
            written.add(out);
        } else {
            TreeMap<String, String> weightMap = new TreeMap<>();
            long totalSize = 0;
            for (int i = 0; i < shards.size(); i++) {
                String fileName = shardName(i + 1, shards.size());
                write(dir.resolve(fileName), metadata, shards.get(i), inputs);
                written.add(dir.resolve(fileName));
                for (Entry e : shards.get(i)) {
                    weightMap.put(e.name(), fileName);
                    totalSize += e.byteSize();
                }
            }
            Path index = dir.resolve(INDEX_FILE);
            byte[] json = SafetensorsIndex.toJson(totalSize, weightMap).getBytes(StandardCharsets.UTF_8);
            AtomicOutput.write(index, ch -> writeFully(ch, ByteBuffer.wrap(json)), inputs);
            written.add(index);
        }
        removeStale(dir, written, inputs);
        return written;
    }

    /** {@code model-00001-of-00003.safetensors} */
    public static String shardName(int index, int count) {
        return String.format("model-%05d-of-%05d.safetensors", index, count);
    }

    /**
     * huggingface_hub's split: in order, a tensor larger than the limit gets a shard of its own; otherwise a tensor
     * that would tip the current shard over the limit starts a new one.
     */
    static List<List<Entry>> split(List<Entry> tensors, long maxShardBytes) {
        List<List<Entry>> shards = new ArrayList<>();
        List<Entry> current = new ArrayList<>();
        long currentSize = 0;
        for (Entry e : tensors) {
            long size = e.byteSize();
            if (size > maxShardBytes) {
                shards.add(List.of(e));
                continue;
            }
            if (currentSize + size > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                currentSize = 0;
            }
            current.add(e);
            currentSize += size;
        }
        if (!current.isEmpty()) shards.add(current);
        return shards;
    }

    private static void removeStale(Path dir, List<Path> written, Path... inputs) {
        Set<Path> keep = new HashSet<>();
        for (Path p : written) keep.add(p.toAbsolutePath().normalize());
        for (Path p : inputs) if (p != null) keep.add(p.toAbsolutePath().normalize());
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                String name = p.getFileName().toString();
                boolean ours = name.equals(SINGLE_FILE) || name.equals(INDEX_FILE) || SHARD_NAME.matcher(name).matches();
                if (ours && !keep.contains(p.toAbsolutePath().normalize())) Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new Q4jException(dir + ": cannot remove the previous checkpoint's files: " + e.getMessage(), e);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }
}
