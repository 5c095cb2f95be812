package org.quant4j.util;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Maps a whole file read-only (files over 2 GB too) for a reader to parse, and unmaps it if parsing fails. */
public final class MappedFile {
    private MappedFile() {}

    @FunctionalInterface
    public interface Parser<T> {
        /** Builds the reader; it owns {@code arena} (closing it unmaps {@code file}). */
        T parse(Arena arena, MemorySegment file);
    }

    public static <T> T map(Path path, Parser<T> parser) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment seg;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                long size = ch.size();
                seg = size == 0 ? MemorySegment.ofArray(new byte[0]) : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            }
            return parser.parse(arena, seg);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new Q4jException(path + ": no such file");
        } catch (IOException e) {
            arena.close();
            throw new Q4jException(path + ": cannot read: " + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }
}
