package dev.jlens.io;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * NumPy's {@code .npz} archives (a zip of {@code .npy} files, stored or deflated) and {@code .npy} arrays, read as
 * float32: little-endian {@code <f4}, {@code <f8} and {@code <f2} (widened or narrowed to float), C or Fortran order
 * (Fortran-order arrays are reordered to C order). The {@code .npy} header is a Python dict literal:
 * {@code {'descr': '<f4', 'fortran_order': False, 'shape': (2304, 16384), }}; format versions 1.0, 2.0 and 3.0.
 */
public final class Npz {
    private Npz() {}

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    /** One array: its shape (empty for a scalar) and its values in C order. */
    public record Array(long[] shape, float[] data) {
        public long size() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        @Override
        public String toString() {
            return "float32" + Arrays.toString(shape);
        }
    }

    /** Every array of an {@code .npz} file, by name without the {@code .npy} suffix, in archive order. */
    public static Map<String, Array> read(Path file) {
        if (!Files.isRegularFile(file)) throw new CheckpointException(file, "no such .npz file");
        Map<String, Array> out = new LinkedHashMap<>();
        try (ZipFile zip = new ZipFile(file.toFile())) {
            Enumeration<? extends ZipEntry> entries = zip.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                if (e.isDirectory()) continue;
                String name = e.getName().endsWith(".npy") ? e.getName().substring(0, e.getName().length() - 4)
                        : e.getName();
                try (InputStream in = new BufferedInputStream(zip.getInputStream(e), 1 << 16)) {
                    out.put(name, readNpy(in, file + "!" + e.getName()));
                }
            }
        } catch (IOException e) {
            throw new CheckpointException(file, "is not a readable .npz (zip) archive: " + e.getMessage(), e);
        }
        return out;
    }

    /** One {@code .npy} file. */
    public static Array readNpy(Path file) {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
            return readNpy(in, file.toString());
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot be read: " + e.getMessage(), e);
        }
    }

    private static Array readNpy(InputStream in, String where) throws IOException {
        byte[] magic = in.readNBytes(8);
        if (magic.length < 8 || !Arrays.equals(Arrays.copyOf(magic, 6), MAGIC)) {
            throw new IOException(where + " is not a .npy array (no \\x93NUMPY magic)");
        }
        int major = magic[6];
        int headerLen;
        if (major == 1) {
            byte[] b = in.readNBytes(2);
            headerLen = (b[0] & 0xff) | (b[1] & 0xff) << 8;
        } else if (major == 2 || major == 3) {
            byte[] b = in.readNBytes(4);
            headerLen = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt();
        } else {
            throw new IOException(where + ": .npy format version " + major + " is not supported; supported: 1, 2, 3");
        }
        String header = new String(in.readNBytes(headerLen), major == 3 ? StandardCharsets.UTF_8
                : StandardCharsets.ISO_8859_1);
        String descr = group(DESCR, header, "descr", where);
        boolean fortran = group(FORTRAN, header, "fortran_order", where).equals("True");
        String dims = group(SHAPE, header, "shape", where).trim();
        List<Long> shapeList = new ArrayList<>();
        for (String s : dims.split(",")) if (!s.isBlank()) shapeList.add(Long.parseLong(s.trim().replace("L", "")));
        long[] shape = shapeList.stream().mapToLong(Long::longValue).toArray();
        int width = switch (descr) {
            case "<f4" -> 4;
            case "<f8" -> 8;
            case "<f2" -> 2;
            default -> throw new IOException(where + ": dtype '" + descr + "' is not supported; supported: <f4, <f8, "
                    + "<f2 (little-endian floats)");
        };
        long n = 1;
        for (long d : shape) n *= d;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IOException(where + ": " + n + " elements " + Arrays.toString(shape) + " exceed what one Java "
                    + "float array holds (2^31 - 9)");
        }
        float[] data = new float[(int) n];
        byte[] chunk = new byte[width * 65536];
        int at = 0;
        while (at < n) {
            int want = (int) Math.min(65536, n - at) * width;
            int got = in.readNBytes(chunk, 0, want);
            if (got < want) throw new IOException(where + ": truncated data (" + at + " of " + n + " elements)");
            ByteBuffer bb = ByteBuffer.wrap(chunk, 0, want).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < want / width; i++) {
                data[at++] = switch (width) {
                    case 4 -> bb.getFloat();
                    case 8 -> (float) bb.getDouble();
                    default -> HalfFloats.f16ToF32(bb.getShort());
                };
            }
        }
        return new Array(shape, fortran && shape.length > 1 ? toCOrder(data, shape) : data);
    }

    private static String group(Pattern p, String header, String key, String where) throws IOException {
        Matcher m = p.matcher(header);
        if (!m.find()) throw new IOException(where + ": .npy header lacks '" + key + "': " + header.trim());
        return m.group(1);
    }

    /** Fortran order (first index fastest) to C order (last index fastest). */
    private static float[] toCOrder(float[] f, long[] shape) {
        int r = shape.length;
        float[] c = new float[f.length];
        int[] idx = new int[r];
        for (int i = 0; i < c.length; i++) {
            // i walks C order; its Fortran offset
            long off = 0, stride = 1;
            for (int a = 0; a < r; a++) {
                off += idx[a] * stride;
                stride *= shape[a];
            }
            c[i] = f[(int) off];
            for (int a = r - 1; a >= 0; a--) {
                if (++idx[a] < shape[a]) break;
                idx[a] = 0;
            }
        }
        return c;
    }

    // ------------------------------------------------------------------------------------------------ writing

    /** Writes float32 arrays as an uncompressed {@code .npz} (C order, format 1.0), as {@code numpy.savez} does. */
    public static void write(Path file, Map<String, Array> arrays) {
        try (OutputStream os = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(os)) {
            for (var e : arrays.entrySet()) {
                zip.putNextEntry(new ZipEntry(e.getKey() + ".npy"));
                writeNpy(zip, e.getValue());
                zip.closeEntry();
            }
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot be written: " + e.getMessage(), e);
        }
    }

    private static void writeNpy(OutputStream out, Array a) throws IOException {
        StringBuilder dims = new StringBuilder();
        for (long d : a.shape()) dims.append(d).append(", ");
        String shape = a.shape().length == 1 ? dims.toString().trim() : dims.toString().replaceAll(", $", "");
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
        int total = 10 + dict.length() + 1;
        int pad = (64 - total % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        DataOutputStream d = new DataOutputStream(buf);
        d.write(MAGIC);
        d.write(1);
        d.write(0);
        d.write(header.length() & 0xff);
        d.write(header.length() >> 8 & 0xff);
        d.write(header.getBytes(StandardCharsets.ISO_8859_1));
        out.write(buf.toByteArray());
        ByteBuffer bb = ByteBuffer.allocate(a.data().length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : a.data()) bb.putFloat(x);
        out.write(bb.array());
    }
}
