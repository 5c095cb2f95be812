package org.quant4j.io.imatrix;

import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.gguf.GgufValueType;
import org.quant4j.io.gguf.GgufWriter;
import org.quant4j.method.kquant.ImportanceMatrix;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.*;

/**
 * llama.cpp's importance-matrix files. The GGUF form (llama-imatrix's default since 2025): metadata
 * {@code general.type = "imatrix"}, {@code imatrix.datasets}, {@code imatrix.chunk_count}, {@code imatrix.chunk_size},
 * and per weight two F32 tensors, {@code NAME.in_sum2} (in) and {@code NAME.counts} (1). The legacy binary form
 * ({@code imatrix.dat}), read only: int32 entry count; per entry int32 name length, the name, int32 ncall, int32 nval,
 * nval floats holding the per-column means multiplied by ncall; then optionally int32 chunk count, int32 length and the
 * dataset name.
 */
public final class ImatrixFile {
    private ImatrixFile() {}

    private static final String SUMS = ".in_sum2", COUNTS = ".counts";

    /** Writes {@code m} as an imatrix GGUF (atomically), tensors sorted by name as llama-imatrix stores them. */
    public static void write(ImportanceMatrix m, Path out) {
        Map<String, GgufValue> meta = new LinkedHashMap<>();
        meta.put("general.type", GgufValue.string("imatrix"));
        meta.put("imatrix.datasets", GgufValue.strings(m.datasets().toArray(String[]::new)));
        meta.put("imatrix.chunk_count", GgufValue.u32(m.chunkCount()));
        meta.put("imatrix.chunk_size", GgufValue.u32(m.chunkSize()));
        List<Tensor> tensors = new ArrayList<>();
        for (String name : new TreeSet<>(m.sums().keySet())) {
            float[] s = m.sums().get(name);
            tensors.add(Tensor.ofFloats(name + SUMS, s, s.length));
            tensors.add(Tensor.ofFloats(name + COUNTS, new float[]{m.counts().get(name)}, 1));
        }
        GgufWriter.write(out, meta, tensors);
    }

    /** Reads either form (GGUF when the file starts with "GGUF"). */
    public static ImportanceMatrix read(Path path) {
        byte[] magic = new byte[4];
        try (var in = Files.newInputStream(path)) {
            if (in.readNBytes(magic, 0, 4) < 4) throw new Q4jException(path + ": too short for an importance matrix");
        } catch (IOException e) {
            throw new Q4jException(path + ": " + e.getMessage());
        }
        return new String(magic, StandardCharsets.ISO_8859_1).equals("GGUF") ? readGguf(path) : readLegacy(path);
    }

    private static ImportanceMatrix readGguf(Path path) {
        try (GgufFile f = GgufFile.open(path)) {
            for (String key : List.of("imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size")) {
                if (!f.has(key)) throw new Q4jException(path + ": not an importance matrix (no " + key + ")");
            }
            Map<String, float[]> sums = new TreeMap<>();
            Map<String, Float> counts = new TreeMap<>();
            for (GgufFile.TensorInfo ti : f.tensorInfos()) {
                boolean isSum = ti.name().endsWith(SUMS), isCount = ti.name().endsWith(COUNTS);
                if (!isSum && !isCount) continue;
                if (ti.type() != GgmlType.F32) throw new Q4jException(path + ": tensor " + ti.name() + " is " + ti.type() + ", not F32");
                Tensor t = f.tensor(ti.name());
                float[] v = t.data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
                if (isSum) {
                    if (t.rank() != 1) throw new Q4jException(path + ": tensor " + ti.name() + " has " + t.rank()
                            + " dimensions; quant4j reads one sum per column (mixture-of-experts matrices are not supported)");
                    sums.put(ti.name().substring(0, ti.name().length() - SUMS.length()), v);
                } else {
                    if (v.length != 1) throw new Q4jException(path + ": tensor " + ti.name() + " holds " + v.length + " counts, expected 1");
                    counts.put(ti.name().substring(0, ti.name().length() - COUNTS.length()), v[0]);
                }
            }
            for (String n : sums.keySet()) if (!counts.containsKey(n)) throw new Q4jException(path + ": " + n + SUMS + " has no " + n + COUNTS);
            for (String n : counts.keySet()) if (!sums.containsKey(n)) throw new Q4jException(path + ": " + n + COUNTS + " has no " + n + SUMS);
            if (sums.isEmpty()) throw new Q4jException(path + ": the importance matrix has no entries");
            GgufValue ds = f.get("imatrix.datasets");
            List<String> datasets = new ArrayList<>();
            if (ds.type() == GgufValueType.ARRAY && ds.asArray().elements() instanceof String[] arr) datasets.addAll(List.of(arr));
            return new ImportanceMatrix(sums, counts, datasets, (int) f.getLong("imatrix.chunk_count", 0), (int) f.getLong("imatrix.chunk_size", 0));
        }
    }

    private static ImportanceMatrix readLegacy(Path path) {
        ByteBuffer b;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size > Integer.MAX_VALUE - 16) throw new Q4jException(path + ": " + size + " bytes is too large for a legacy importance matrix");
            b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
            while (b.hasRemaining() && ch.read(b) >= 0) { /* read all */ }
            b.flip();
        } catch (IOException e) {
            throw new Q4jException(path + ": " + e.getMessage());
        }
        int entries = int32(b, path, "entry count");
        if (entries <= 0) throw new Q4jException(path + ": no entries (count " + entries + " at offset 0)");
        Map<String, float[]> sums = new LinkedHashMap<>();
        Map<String, Float> counts = new LinkedHashMap<>();
        for (int i = 0; i < entries; i++) {
            int at = b.position();
            int len = int32(b, path, "name length of entry " + (i + 1));
            if (len <= 0 || len > b.remaining()) throw new Q4jException(path + ": entry " + (i + 1) + " at offset " + at + " has a name length of " + len);
            byte[] name = new byte[len];
            b.get(name);
            String n = new String(name, StandardCharsets.UTF_8);
            int ncall = int32(b, path, "ncall of " + n);
            int nval = int32(b, path, "value count of " + n);
            if (nval <= 0 || (long) nval * 4 > b.remaining()) {
                throw new Q4jException(path + ": entry " + n + " at offset " + at + " claims " + nval + " values, " + b.remaining() + " bytes are left");
            }
            float[] v = new float[nval];
            b.asFloatBuffer().get(v);
            b.position(b.position() + 4 * nval);
            // the legacy values are means × ncall: keep them as sums with ncall as the count (llama-quantize divides by ncall)
            sums.put(n, v);
            counts.put(n, (float) Math.max(ncall, 0));
        }
        int chunks = 0;
        List<String> datasets = new ArrayList<>();
        if (b.remaining() >= 8) {
            chunks = b.getInt();
            int dl = b.getInt();
            if (dl > 0 && dl <= b.remaining()) {
                byte[] d = new byte[dl];
                b.get(d);
                datasets.add(new String(d, StandardCharsets.UTF_8));
            }
        }
        // llama-quantize uses the stored values as they are when ncall is 0: a count of 0 would turn them into 1s
        for (Map.Entry<String, Float> e : counts.entrySet()) if (e.getValue() == 0f) e.setValue(1f);
        return new ImportanceMatrix(sums, counts, datasets, chunks, 0);
    }

    private static int int32(ByteBuffer b, Path path, String what) {
        if (b.remaining() < 4) throw new Q4jException(path + ": file ends at offset " + b.position() + " before the " + what);
        return b.getInt();
    }
}
