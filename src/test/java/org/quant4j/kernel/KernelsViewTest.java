package org.quant4j.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.*;

class KernelsViewTest {
    @Test
    void aMappedSegmentIsReadThroughANativeViewOfTheSameReadOnlyMemory(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("w.bin");
        byte[] bytes = new byte[4096 + 7];
        for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (i * 31 + 5);
        Files.write(f, bytes);
        try (Arena arena = Arena.ofConfined(); FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            MemorySegment mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, bytes.length, arena);
            MemorySegment view = Kernels.view(mapped.asSlice(3));
            assertTrue(mapped.isMapped());
            assertFalse(view.isMapped(), "the kernels see one segment class");
            assertTrue(view.isReadOnly(), "read-only stays read-only");
            assertEquals(mapped.address() + 3, view.address());
            assertEquals(bytes.length - 3, view.byteSize());
            for (int i = 0; i < view.byteSize(); i++) assertEquals(bytes[i + 3], view.get(ValueLayout.JAVA_BYTE, i));
            assertEquals(mapped.scope(), view.scope(), "the view lives exactly as long as the mapping");
        }
        MemorySegment heap = MemorySegment.ofArray(new float[4]);
        assertSame(heap, Kernels.view(heap), "other segments pass through");
    }
}
