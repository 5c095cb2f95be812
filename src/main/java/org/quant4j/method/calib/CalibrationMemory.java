package org.quant4j.method.calib;

import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Where a calibrated method (GPTQ, AWQ) keeps its large buffers, so that a model larger than memory can be calibrated:
 * <pre>
 *   activation buffers (hidden states (N·L, dim), AWQ's cached layer inputs (N·L, cols))
 *       in memory while their total is within the budget; beyond it, in a memory-mapped temporary file
 *   finished quantized tensors ({@link #keep})
 *       appended to a temporary file and mapped back read-only, so they leave the heap as each layer finishes
 * </pre>
 * The numbers are the same either way (the file holds the same floats). The methods take their memory from
 * {@link #current()}: the caller binds one with {@code ScopedValue.where(CalibrationMemory.CURRENT, memory)}; unbound,
 * everything stays in memory (no budget, tensors on the heap). {@link #close()} unmaps and deletes the files.
 */
public final class CalibrationMemory implements AutoCloseable {
    /** The memory of the calibration running on this thread. */
    public static final ScopedValue<CalibrationMemory> CURRENT = ScopedValue.newInstance();

    private static final CalibrationMemory UNBOUNDED = new CalibrationMemory(Long.MAX_VALUE, null, false);

    public static CalibrationMemory current() { return CURRENT.orElse(UNBOUNDED); }

    /** The heap-only memory (no budget, no files). */
    public static CalibrationMemory unbounded() { return UNBOUNDED; }

    private final long budget;              // bytes of activation buffers allowed in memory
    private final Path spillDir;            // null: nothing goes to disk
    private final boolean spillTensors;
    private final Arena arena = Arena.ofShared();
    private final List<Path> files = new ArrayList<>();
    private final List<Activations> openMapped = new ArrayList<>();
    private long inMemory, onDisk, peakOnDisk, tensorBytes;
    private FileChannel tensorFile;
    private long tensorEnd;
    private boolean closed;

    /**
     * @param budget       bytes of activation buffers kept in memory (Long.MAX_VALUE: no limit)
     * @param spillDir     where temporary files go (created if missing); null: in memory only, whatever the budget
     * @param spillTensors whether {@link #keep} moves finished tensors to a file
     */
    public CalibrationMemory(long budget, Path spillDir, boolean spillTensors) {
        if (budget < 0) throw new Q4jException("memory budget must not be negative, not " + budget);
        if (spillDir == null && (spillTensors || budget != Long.MAX_VALUE)) throw new Q4jException("a memory budget or tensor spill needs a directory for its files");
        this.budget = budget;
        this.spillDir = spillDir;
        this.spillTensors = spillTensors;
    }

    /** A (rows, cols) float buffer: in memory within the budget, else in a mapped temporary file. */
    public synchronized Activations allocate(String what, long rows, int cols) {
        long bytes = Math.multiplyExact(Math.multiplyExact(rows, (long) cols), 4L);
        if (spillDir == null || inMemory + bytes <= budget) {
            inMemory += bytes;
            return new Activations(what, rows, cols, bytes <= Integer.MAX_VALUE - 16 && rows * cols <= Integer.MAX_VALUE - 16
                    ? MemorySegment.ofArray(new float[Math.toIntExact(rows * cols)]) : Arena.ofAuto().allocate(bytes, 4), null, null, this);
        }
        onDisk += bytes;
        peakOnDisk = Math.max(peakOnDisk, onDisk);
        Path file = newFile(what);
        Arena own = Arena.ofShared();                                   // unmapped when the buffer is closed
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.truncate(0);
            if (bytes > 0) ch.write(java.nio.ByteBuffer.wrap(new byte[1]), bytes - 1); // sparse: blocks appear as rows are written
            MemorySegment data = bytes == 0 ? MemorySegment.ofArray(new float[0]) : ch.map(FileChannel.MapMode.READ_WRITE, 0, bytes, own);
            Activations a = new Activations(what, rows, cols, data, own, file, this);
            openMapped.add(a);
            return a;
        } catch (IOException e) {
            own.close();
            throw new Q4jException(file + ": cannot map " + bytes + " bytes for " + what + ": " + e.getMessage(), e);
        }
    }

    synchronized void release(Activations a) {
        if (a.mapped()) {
            onDisk -= a.byteSize();
            a.arena.close();
            openMapped.remove(a);
            files.remove(a.file);
            try { Files.deleteIfExists(a.file); } catch (IOException ignored) { }
        } else {
            inMemory -= a.byteSize();
        }
    }

    /**
     * A finished tensor moved out of the heap: its bytes are appended to the tensor file and the returned tensor reads
     * them from a read-only mapping (its pages are not resident until read). Without a spill directory, {@code t}.
     */
    public Tensor keep(Tensor t) {
        if (!spillTensors || t.data().isMapped()) return t;
        synchronized (this) {
            try {
                if (tensorFile == null) {
                    Path file = newFile("tensors");
                    tensorFile = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
                }
                long at = tensorEnd, n = t.data().byteSize();
                MemorySegment src = t.data();
                for (long pos = 0; pos < n; ) {
                    int chunk = (int) Math.min(n - pos, 1 << 26);
                    var buf = src.asSlice(pos, chunk).asByteBuffer();
                    while (buf.hasRemaining()) pos += tensorFile.write(buf, at + pos);
                }
                tensorEnd = at + n;
                tensorBytes += n;
                MemorySegment mapped = n == 0 ? t.data() : tensorFile.map(FileChannel.MapMode.READ_ONLY, at, n, arena);
                return new Tensor(t.name(), t.type(), t.shape(), mapped);
            } catch (IOException e) {
                throw new Q4jException(spillDir + ": cannot spill tensor " + t.name() + " (" + t.data().byteSize() + " bytes): " + e.getMessage(), e);
            }
        }
    }

    private Path newFile(String what) {
        try {
            Files.createDirectories(spillDir);
            Path f = Files.createTempFile(spillDir, ".quant4j-" + what.replaceAll("[^A-Za-z0-9_.-]", "_") + "-", ".spill");
            files.add(f);
            f.toFile().deleteOnExit();
            return f;
        } catch (IOException e) {
            throw new Q4jException(spillDir + ": cannot create a temporary file for " + what + ": " + e.getMessage(), e);
        }
    }

    /** Bytes of activation buffers in memory, and in files, now; bytes of tensors spilled so far. */
    public synchronized long inMemory() { return inMemory; }

    public synchronized long onDisk() { return onDisk; }

    public synchronized long spilledTensorBytes() { return tensorBytes; }

    /** The most bytes of activation buffers in files at once. */
    public synchronized long peakOnDisk() { return peakOnDisk; }

    /** Unmaps and deletes every file (tensors kept from here are no longer readable). */
    @Override public synchronized void close() {
        if (closed || this == UNBOUNDED) return;
        closed = true;
        for (Activations a : List.copyOf(openMapped)) a.close();
        try {
            if (tensorFile != null) tensorFile.close();
        } catch (IOException ignored) {
            // deleted below anyway
        }
        arena.close();
        for (Path f : files) {
            try { Files.deleteIfExists(f); } catch (IOException ignored) { }
        }
    }

    /** Parses a size: 20G, 512M, 64k, or bytes. */
    public static long parseSize(String s) {
        String t = s.trim().toUpperCase(java.util.Locale.ROOT);
        if (t.endsWith("B")) t = t.substring(0, t.length() - 1);
        if (t.endsWith("I")) t = t.substring(0, t.length() - 1);         // GiB, MiB: binary units, as G, M
        long unit = 1;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> unit = 1L << 10;
                case 'M' -> unit = 1L << 20;
                case 'G' -> unit = 1L << 30;
                case 'T' -> unit = 1L << 40;
                default -> { }
            }
        }
        if (unit != 1) t = t.substring(0, t.length() - 1);
        try {
            double v = Double.parseDouble(t);
            if (!(v >= 0)) throw new NumberFormatException();
            return (long) (v * unit);
        } catch (NumberFormatException e) {
            throw new Q4jException("not a size: '" + s + "' (e.g. 20G, 512M)");
        }
    }

    /**
     * A (rows, cols) float matrix that calibration reads and writes by runs of rows; in memory or in a mapped file
     * (whose pages are released after each access, so a buffer larger than memory streams through the page cache).
     */
    public static final class Activations implements AutoCloseable {
        private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
        private final String what;
        private final long rows;
        private final int cols;
        private final MemorySegment data;   // (rows, cols)
        private final boolean mapped;
        private final Arena arena;          // the mapping's, null in memory
        private final Path file;
        private final CalibrationMemory owner;
        private boolean released;

        Activations(String what, long rows, int cols, MemorySegment data, Arena arena, Path file, CalibrationMemory owner) {
            this.what = what;
            this.rows = rows;
            this.cols = cols;
            this.data = data;
            this.mapped = arena != null;
            this.arena = arena;
            this.file = file;
            this.owner = owner;
        }

        public long rows() { return rows; }

        public int cols() { return cols; }

        /** Whether the buffer lives in a mapped file. */
        public boolean mapped() { return mapped; }

        long byteSize() { return rows * cols * 4L; }

        /** dst[dstOff ..] = rows [row, row + n). */
        public void read(long row, int n, float[] dst, int dstOff) {
            check(row, n);
            long off = row * cols * 4L;
            MemorySegment.copy(data, F, off, dst, dstOff, n * cols);
            if (mapped) data.asSlice(off, (long) n * cols * 4).unload();
        }

        /** A copy of rows [row, row + n): (n, cols). */
        public float[] read(long row, int n) {
            float[] out = new float[n * cols];
            read(row, n, out, 0);
            return out;
        }

        /** rows [row, row + n) = src[srcOff ..]. */
        public void write(long row, int n, float[] src, int srcOff) {
            check(row, n);
            long off = row * cols * 4L;
            MemorySegment.copy(src, srcOff, data, F, off, n * cols);
            if (mapped) data.asSlice(off, (long) n * cols * 4).unload();
        }

        private void check(long row, int n) {
            if (released) throw new IllegalStateException(what + ": buffer already released");
            if (row < 0 || n < 0 || row + n > rows) throw new IndexOutOfBoundsException(what + ": rows [" + row + ", " + (row + n) + ") of " + rows);
        }

        /** Returns the buffer's bytes to the budget; a mapped buffer's file is unmapped and deleted. */
        @Override public void close() {
            if (!released) {
                released = true;
                owner.release(this);
            }
        }
    }
}
