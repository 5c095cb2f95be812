package org.quant4j.io.safetensors;

import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

/**
 * The tensors of a Hugging Face checkpoint: one safetensors file, or the shards that
 * {@code model.safetensors.index.json} lists. Shards are opened (header parsed, file mapped) on first use, so looking
 * at one tensor of a 100 GB checkpoint touches one shard. Every shard the index names must exist when this opens.
 */
public final class SafetensorsCheckpoint implements AutoCloseable {
    private final Path source;                          // the file or the index
    private final Path dir;                             // where the shards are
    private final LinkedHashMap<String, String> weightMap; // tensor -> shard file name
    private final Map<String, SafetensorsFile> opened = new HashMap<>();
    private final long totalSize;

    private SafetensorsCheckpoint(Path source, Path dir, LinkedHashMap<String, String> weightMap, long totalSize) {
        this.source = source;
        this.dir = dir;
        this.weightMap = weightMap;
        this.totalSize = totalSize;
    }

    /**
     * Opens a directory (its {@code model.safetensors.index.json}, else {@code model.safetensors}, else its only
     * {@code *.safetensors}), an index file, or a single safetensors file.
     */
    public static SafetensorsCheckpoint open(Path path) {
        if (Files.isDirectory(path)) {
            Path index = path.resolve(SafetensorsWriter.INDEX_FILE);
            if (Files.isRegularFile(index)) return openIndex(index);
            Path single = path.resolve(SafetensorsWriter.SINGLE_FILE);
            if (Files.isRegularFile(single)) return openSingle(single);
            List<Path> found;
            try (var files = Files.list(path)) {
                found = files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
            } catch (IOException e) {
                throw new Q4jException(path + ": cannot list: " + e.getMessage(), e);
            }
            if (found.size() == 1) return openSingle(found.get(0));
            if (found.isEmpty()) throw new Q4jException(path + ": no " + SafetensorsWriter.SINGLE_FILE + " or " + SafetensorsWriter.INDEX_FILE + " here");
            throw new Q4jException(path + ": " + found.size() + " .safetensors files and no " + SafetensorsWriter.INDEX_FILE + " to say which to use");
        }
        if (!Files.exists(path)) throw new Q4jException(path + ": no such file");
        if (path.getFileName().toString().endsWith(".json")) return openIndex(path);
        return openSingle(path);
    }

    private static SafetensorsCheckpoint openSingle(Path file) {
        SafetensorsFile f = SafetensorsFile.open(file);
        LinkedHashMap<String, String> map = new LinkedHashMap<>();
        String name = file.getFileName().toString();
        long total = 0;
        for (SafetensorsFile.TensorInfo t : f.tensorInfos()) {
            map.put(t.name(), name);
            total += t.byteSize();
        }
        Path dir = file.toAbsolutePath().getParent();
        SafetensorsCheckpoint c = new SafetensorsCheckpoint(file, dir, map, total);
        c.opened.put(name, f);
        return c;
    }

    private static SafetensorsCheckpoint openIndex(Path index) {
        SafetensorsIndex idx = SafetensorsIndex.read(index);
        Path dir = index.toAbsolutePath().getParent();
        for (String shard : new LinkedHashSet<>(idx.weightMap().values())) {
            if (!Files.isRegularFile(dir.resolve(shard))) {
                String tensor = idx.weightMap().entrySet().stream().filter(e -> e.getValue().equals(shard)).findFirst().orElseThrow().getKey();
                throw new Q4jException(index + ": shard " + shard + " (holding tensor " + tensor + ") is missing from " + dir);
            }
        }
        return new SafetensorsCheckpoint(index, dir, new LinkedHashMap<>(idx.weightMap()), idx.totalSize());
    }

    /** The file or index this was opened from. */
    public Path source() { return source; }

    /** Tensor names, in the index's (or the file's data) order. */
    public Set<String> names() { return Collections.unmodifiableSet(weightMap.keySet()); }

    public boolean has(String name) { return weightMap.containsKey(name); }

    /** Shard file names, in order of first appearance. */
    public List<String> shardNames() { return List.copyOf(new LinkedHashSet<>(weightMap.values())); }

    /** {@code metadata.total_size} of the index (or the single file's tensor bytes), -1 if the index has none. */
    public long totalSize() { return totalSize; }

    /** The path of the shard holding {@code name}. */
    public Path shardOf(String name) { return dir.resolve(shardName(name)); }

    public SafetensorsFile.TensorInfo info(String name) {
        return checkedShard(name).info(name);
    }

    /** The tensor as a slice of its shard's mapping. */
    public Tensor tensor(String name) { return checkedShard(name).tensor(name); }

    /** The tensor's bytes whatever its dtype. */
    public MemorySegment bytes(String name) { return checkedShard(name).bytes(name); }

    /** The shard file holding {@code name}, opened. */
    public synchronized SafetensorsFile shard(String fileName) {
        SafetensorsFile f = opened.get(fileName);
        if (f == null) {
            f = SafetensorsFile.open(dir.resolve(fileName));
            opened.put(fileName, f);
        }
        return f;
    }

    private String shardName(String name) {
        String shard = weightMap.get(name);
        if (shard == null) throw new Q4jException(source + ": tensor " + name + " is missing");
        return shard;
    }

    private SafetensorsFile checkedShard(String name) {
        SafetensorsFile f = shard(shardName(name));
        if (!f.has(name)) {
            throw new Q4jException(source + ": the index puts tensor " + name + " in " + f.path().getFileName() + ", which has no such tensor");
        }
        return f;
    }

    /** Unmaps every opened shard. Tensors obtained from this become invalid. */
    @Override public synchronized void close() {
        for (SafetensorsFile f : opened.values()) f.close();
        opened.clear();
    }
}
