package org.quant4j.util;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.*;

/**
 * Writes a file through a temporary sibling that is renamed over the target only when writing succeeded, so a failed
 * run leaves nothing half-written behind. Refuses to overwrite any of the given inputs.
 */
public final class AtomicOutput {
    private AtomicOutput() {}

    @FunctionalInterface
    public interface Writer { void write(FileChannel channel) throws IOException; }

    public static void write(Path target, Writer writer, Path... inputs) {
        Path abs = target.toAbsolutePath().normalize();
        for (Path in : inputs) {
            if (in == null) continue;
            try {
                if (Files.exists(abs) && Files.exists(in) && Files.isSameFile(abs, in)) {
                    throw new Q4jException(target + ": refusing to overwrite the input file");
                }
            } catch (IOException e) {
                throw new Q4jException(target + ": " + e.getMessage(), e);
            }
        }
        Path dir = abs.getParent();
        Path tmp = null;
        try {
            if (dir != null) Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + abs.getFileName() + ".", ".tmp");
            try {
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            } catch (UnsupportedOperationException ignored) {
                // not a POSIX file system
            }
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writer.write(ch);
                ch.force(true);
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            tmp = null;
        } catch (IOException e) {
            throw new Q4jException(target + ": write failed: " + e.getMessage(), e);
        } finally {
            if (tmp != null) {
                try { Files.deleteIfExists(tmp); } catch (IOException ignored) { }
            }
        }
    }
}
