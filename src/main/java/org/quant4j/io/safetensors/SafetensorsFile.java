package org.quant4j.io.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import org.quant4j.format.GgmlType;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.*;

/**
 * A safetensors file, memory-mapped; tensor data is never copied: each {@link #tensor(String)} is a slice of the
 * mapping, so files of any size open in constant heap (beyond the header).
 *
 * <p>The layout (huggingface/safetensors):
 * <pre>
 *   u64 little-endian  N               header length in bytes
 *   N bytes            header          UTF-8 JSON object: {"__metadata__": {str: str}, name: {"dtype": "F32",
 *                                      "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}; writers pad it
 *                                      with spaces so the data starts 8-byte aligned
 *   rest               data area       tensors' little-endian, row-major bytes; offsets are relative to its start
 * </pre>
 *
 * <p>Validation is as strict as the reference library's: the header length must fit the file and the 100 MB limit,
 * every dtype must be known, every {@code end - begin} must equal dtype × shape, and the tensors must tile the data area
 * exactly: no overlap, no gap, nothing after the last tensor. Each failure is a one-line {@link Q4jException} naming
 * the file, the tensor and the byte offset.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The reference library refuses headers longer than this. */
    public static final long MAX_HEADER_BYTES = 100_000_000;
    public static final String METADATA_KEY = "__metadata__";

    /**
     * One tensor of the header. {@code begin} and {@code end} are the data_offsets, relative to the data area;
     * {@code headerOffset} is the file offset of the tensor's entry in the JSON header, for messages.
     */
    public record TensorInfo(String name, SafetensorsDtype dtype, long[] shape, long begin, long end, long headerOffset) {
        public TensorInfo { shape = shape.clone(); }

        @Override public long[] shape() { return shape.clone(); }

        public long byteSize() { return end - begin; }

        public long elementCount() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }
    }

    private static final JsonFactory JSON = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;           // the whole file
    private final long headerLength;            // N
    private final Map<String, String> metadata; // __metadata__, in header order
    private final LinkedHashMap<String, TensorInfo> tensors; // in data order

    private SafetensorsFile(Path path, Arena arena, MemorySegment file, long headerLength, Map<String, String> metadata,
                            LinkedHashMap<String, TensorInfo> tensors) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.headerLength = headerLength;
        this.metadata = metadata;
        this.tensors = tensors;
    }

    public static SafetensorsFile open(Path path) {
        return org.quant4j.util.MappedFile.map(path, (arena, seg) -> {
            if (seg.byteSize() < 8) {
                throw new Q4jException(path + ": not a safetensors file: " + seg.byteSize() + " bytes, too short for the 8-byte header length at offset 0");
            }
            return parse(path, arena, seg);
        });
    }

    private static SafetensorsFile parse(Path path, Arena arena, MemorySegment seg) {
        long fileSize = seg.byteSize();
        long n = seg.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0);
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new Q4jException(path + ": header length " + Long.toUnsignedString(n) + " at offset 0 exceeds the "
                    + MAX_HEADER_BYTES + "-byte limit (file is " + fileSize + " bytes)");
        }
        if (n > fileSize - 8) {
            throw new Q4jException(path + ": header length " + n + " at offset 0 runs past end of file (" + fileSize + " bytes)");
        }
        byte[] header = new byte[(int) n]; // n <= 100 MB and <= the file's size
        MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, 8, header, 0, (int) n);
        checkUtf8(path, header);

        Header h = new HeaderParser(path, header).parse();
        long dataStart = 8 + n;
        long dataSize = fileSize - dataStart;
        List<TensorInfo> byOffset = validate(path, h.tensors, dataStart, dataSize, fileSize);

        LinkedHashMap<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (TensorInfo t : byOffset) tensors.put(t.name, t);
        return new SafetensorsFile(path, arena, seg, n, Collections.unmodifiableMap(h.metadata), tensors);
    }

    /** Checks sizes and offsets, and that the tensors tile the data area; returns them in data order. */
    private static List<TensorInfo> validate(Path path, List<TensorInfo> infos, long dataStart, long dataSize, long fileSize) {
        for (TensorInfo t : infos) {
            String where = path + ": tensor " + t.name + " (header offset " + t.headerOffset + "): ";
            long count = 1;
            for (long d : t.shape) {
                try {
                    count = Math.multiplyExact(count, d);
                } catch (ArithmeticException e) {
                    throw new Q4jException(where + "shape " + Arrays.toString(t.shape) + " overflows");
                }
            }
            long need;
            try {
                need = t.dtype.byteSize(count);
            } catch (ArithmeticException e) {
                throw new Q4jException(where + t.dtype + " " + Arrays.toString(t.shape) + " overflows a 64-bit byte count");
            }
            if (need < 0) {
                throw new Q4jException(where + count + " " + t.dtype + " elements of " + t.dtype.bits() + " bits do not fill a whole number of bytes");
            }
            if (t.end < t.begin) {
                throw new Q4jException(where + "data_offsets [" + t.begin + ", " + t.end + "] end before they begin");
            }
            if (t.end > dataSize) {
                throw new Q4jException(where + "data_offsets [" + t.begin + ", " + t.end + "] (file offset " + (dataStart + t.begin)
                        + ") run past end of file (" + fileSize + " bytes)");
            }
            if (t.end - t.begin != need) {
                throw new Q4jException(where + "data_offsets [" + t.begin + ", " + t.end + "] hold " + (t.end - t.begin)
                        + " bytes, but " + t.dtype + " " + Arrays.toString(t.shape) + " needs " + need);
            }
        }
        List<TensorInfo> sorted = new ArrayList<>(infos);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long covered = 0;
        TensorInfo previous = null;
        for (TensorInfo t : sorted) {
            if (t.begin < covered) {
                throw new Q4jException(path + ": tensor " + t.name + " (header offset " + t.headerOffset + "): data_offsets ["
                        + t.begin + ", " + t.end + "] overlap tensor " + previous.name + " [" + previous.begin + ", " + previous.end + "]");
            }
            if (t.begin > covered) {
                throw new Q4jException(path + ": tensor " + t.name + " (header offset " + t.headerOffset + "): data_offsets ["
                        + t.begin + ", " + t.end + "] leave bytes [" + covered + ", " + t.begin + ") of the data area (file offset "
                        + (dataStart + covered) + ") unused");
            }
            covered = t.end;
            previous = t;
        }
        if (covered != dataSize) {
            throw new Q4jException(path + ": " + (dataSize - covered) + " bytes at file offset " + (dataStart + covered)
                    + " follow the last tensor and belong to none (file is " + fileSize + " bytes)");
        }
        return sorted;
    }

    private static void checkUtf8(Path path, byte[] header) {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(header);
        CharBuffer out = CharBuffer.allocate(4096);
        while (true) {
            CoderResult r = dec.decode(in, out, true);
            if (r.isError()) {
                throw new Q4jException(path + ": header is not valid UTF-8 at offset " + (8 + in.position()));
            }
            if (r.isUnderflow()) break;
            out.clear();
        }
    }

    // ---- accessors ----------------------------------------------------------------------------------------------

    public Path path() { return path; }

    public long fileSize() { return file.byteSize(); }

    /** N, the header's length in bytes. */
    public long headerLength() { return headerLength; }

    /** File offset of the data area. */
    public long dataStart() { return 8 + headerLength; }

    /** The {@code __metadata__} string map (empty if the header has none). */
    public Map<String, String> metadata() { return metadata; }

    /** Tensor infos in data order. */
    public Collection<TensorInfo> tensorInfos() { return Collections.unmodifiableCollection(tensors.values()); }

    public Set<String> names() { return Collections.unmodifiableSet(tensors.keySet()); }

    public boolean has(String name) { return tensors.containsKey(name); }

    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw new Q4jException(path + ": tensor " + name + " is missing");
        return t;
    }

    /** The tensor's bytes as a slice of the mapping (no copy), whatever its dtype. */
    public MemorySegment bytes(String name) {
        TensorInfo t = info(name);
        return file.asSlice(dataStart() + t.begin, t.byteSize());
    }

    /** The tensor as a slice of the mapping (no copy). Only dtypes with a ggml type (F32, F16, BF16, F64, I8-I64). */
    public Tensor tensor(String name) {
        TensorInfo t = info(name);
        GgmlType type = t.dtype.ggmlType();
        if (type == null) {
            throw new Q4jException(path + ": tensor " + name + " (header offset " + t.headerOffset + ") has dtype " + t.dtype
                    + ", which no ggml type stores");
        }
        return new Tensor(name, type, t.shape, bytes(name));
    }

    /** Unmaps the file. Tensors obtained from it become invalid. */
    @Override public void close() { arena.close(); }

    // ---- header JSON --------------------------------------------------------------------------------------------

    private record Header(Map<String, String> metadata, List<TensorInfo> tensors) {}

    /**
     * A streaming parse of the header, so that each error can name the byte offset where it is. Shape and offsets must
     * be non-negative integers that fit a long; fields other than dtype, shape and data_offsets are ignored, as the
     * reference reader does.
     */
    private static final class HeaderParser {
        final Path path;
        final byte[] header;
        JsonParser p;

        HeaderParser(Path path, byte[] header) { this.path = path; this.header = header; }

        Header parse() {
            try (JsonParser parser = JSON.createParser(header)) {
                p = parser;
                if (p.nextToken() != JsonToken.START_OBJECT) throw fail("header is not a JSON object");
                Map<String, String> metadata = new LinkedHashMap<>();
                List<TensorInfo> tensors = new ArrayList<>();
                boolean sawMetadata = false;
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    long at = offset();
                    p.nextToken();
                    if (name.equals(METADATA_KEY)) {
                        sawMetadata = true;
                        metadata(metadata);
                    } else {
                        tensors.add(tensor(name, at));
                    }
                }
                if (p.currentToken() != JsonToken.END_OBJECT) throw fail("header JSON is malformed");
                if (p.nextToken() != null) throw fail("header has content after its JSON object");
                if (!sawMetadata) metadata = Map.of();
                return new Header(metadata, tensors);
            } catch (JsonProcessingException e) {
                JsonLocation loc = e.getLocation();
                long off = loc == null ? -1 : loc.getByteOffset() >= 0 ? loc.getByteOffset() : loc.getCharOffset();
                String msg = e.getOriginalMessage() == null ? e.getClass().getSimpleName() : e.getOriginalMessage();
                throw new Q4jException(path + ": header is not valid JSON at offset " + (8 + Math.max(0, off)) + ": " + oneLine(msg), e);
            } catch (IOException e) {
                throw new Q4jException(path + ": cannot parse header: " + oneLine(String.valueOf(e.getMessage())), e);
            }
        }

        void metadata(Map<String, String> into) throws IOException {
            if (p.currentToken() == JsonToken.VALUE_NULL) return;
            if (p.currentToken() != JsonToken.START_OBJECT) throw fail(METADATA_KEY + " is not an object of strings");
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String key = p.currentName();
                if (p.nextToken() != JsonToken.VALUE_STRING) throw fail(METADATA_KEY + " '" + key + "' is not a string");
                into.put(key, p.getText());
            }
        }

        TensorInfo tensor(String name, long at) throws IOException {
            String where = "tensor " + name + ": ";
            if (p.currentToken() != JsonToken.START_OBJECT) throw fail(where + "entry is not a JSON object");
            String dtypeName = null;
            long[] shape = null;
            long[] offsets = null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken v = p.nextToken();
                switch (field) {
                    case "dtype" -> {
                        if (v != JsonToken.VALUE_STRING) throw fail(where + "dtype is not a string");
                        dtypeName = p.getText();
                    }
                    case "shape" -> shape = longs(where + "shape");
                    case "data_offsets" -> {
                        offsets = longs(where + "data_offsets");
                        if (offsets.length != 2) throw fail(where + "data_offsets has " + offsets.length + " entries, not 2");
                    }
                    default -> p.skipChildren();
                }
            }
            String entry = path + ": tensor " + name + " (header offset " + at + "): ";
            if (dtypeName == null) throw new Q4jException(entry + "no dtype");
            if (shape == null) throw new Q4jException(entry + "no shape");
            if (offsets == null) throw new Q4jException(entry + "no data_offsets");
            SafetensorsDtype dtype = SafetensorsDtype.byName(dtypeName);
            if (dtype == null) {
                throw new Q4jException(entry + "unknown dtype \"" + dtypeName + "\" (known: " + Arrays.toString(SafetensorsDtype.values()) + ")");
            }
            return new TensorInfo(name, dtype, shape, offsets[0], offsets[1], at);
        }

        /** A JSON array of non-negative integers that fit a long. */
        long[] longs(String what) throws IOException {
            if (p.currentToken() != JsonToken.START_ARRAY) throw fail(what + " is not an array");
            long[] out = new long[4];
            int n = 0;
            while (p.nextToken() != JsonToken.END_ARRAY) {
                if (p.currentToken() != JsonToken.VALUE_NUMBER_INT) {
                    String shown = p.currentToken() == JsonToken.VALUE_STRING ? "\"" + p.getText() + "\"" : p.getText();
                    throw fail(what + " holds " + shown + ", not an integer");
                }
                if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER || p.getLongValue() < 0) {
                    throw fail(what + " holds " + p.getText() + ", not a non-negative 64-bit integer");
                }
                if (n == out.length) out = Arrays.copyOf(out, n * 2);
                out[n++] = p.getLongValue();
            }
            return Arrays.copyOf(out, n);
        }

        long offset() {
            JsonLocation loc = p.currentTokenLocation();
            long off = loc.getByteOffset() >= 0 ? loc.getByteOffset() : loc.getCharOffset();
            return 8 + Math.max(0, off);
        }

        Q4jException fail(String what) {
            return new Q4jException(path + ": " + what + " at offset " + offset());
        }

        /** Jackson's message on one line, without its "(... [Source: REDACTED ...])" tail. */
        static String oneLine(String s) {
            return s.replaceAll("\\s*[\\r\\n]+\\s*", " ").replaceAll("\\s*\\([^()]*\\[Source:.*$", "").trim();
        }
    }
}
