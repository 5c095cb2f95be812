package org.quant4j.io;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** A little-endian byte builder for crafting (and forging) test files; {@link #pos()} records field offsets. */
final class IoBytes {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    int pos() { return out.size(); }

    IoBytes u8(int v) { out.write(v); return this; }

    IoBytes u16(int v) { u8(v); u8(v >>> 8); return this; }

    IoBytes u32(int v) { for (int i = 0; i < 4; i++) out.write(v >>> (8 * i)); return this; }

    IoBytes u64(long v) { for (int i = 0; i < 8; i++) out.write((int) (v >>> (8 * i))); return this; }

    IoBytes f32(float v) { return u32(Float.floatToRawIntBits(v)); }

    IoBytes f64(double v) { return u64(Double.doubleToRawLongBits(v)); }

    IoBytes raw(byte[] b) { out.write(b, 0, b.length); return this; }

    /** A GGUF string: u64 length, then UTF-8 bytes. */
    IoBytes str(String s) { return gstr(s.getBytes(StandardCharsets.UTF_8)); }

    IoBytes gstr(byte[] b) { u64(b.length); return raw(b); }

    IoBytes zeros(int n) { for (int i = 0; i < n; i++) out.write(0); return this; }

    IoBytes padTo(int alignment) { return zeros((alignment - pos() % alignment) % alignment); }

    byte[] bytes() { return out.toByteArray(); }

    static void putU32(byte[] b, int off, int v) { for (int i = 0; i < 4; i++) b[off + i] = (byte) (v >>> (8 * i)); }

    static void putU64(byte[] b, int off, long v) { for (int i = 0; i < 8; i++) b[off + i] = (byte) (v >>> (8 * i)); }
}
