package dev.jlens.corpus;

import com.github.luben.zstd.Zstd;
import org.apache.parquet.bytes.BytesInput;
import org.apache.parquet.compression.CompressionCodecFactory;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.xerial.snappy.Snappy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * Parquet page codecs without Hadoop: parquet-hadoop's own factory builds a Hadoop {@code Configuration}, which needs
 * Hadoop's XML parser and a good part of its runtime on the classpath. Snappy (the usual codec of Hugging Face's
 * parquet files), zstd, gzip and uncompressed pages are read and written here with the codec libraries directly.
 */
final class ParquetCodecs implements CompressionCodecFactory {

    static final ParquetCodecs INSTANCE = new ParquetCodecs();

    private ParquetCodecs() {}

    @Override
    public BytesInputCompressor getCompressor(CompressionCodecName codec) {
        check(codec);
        return new BytesInputCompressor() {
            @Override
            public BytesInput compress(BytesInput bytes) throws IOException {
                byte[] in = bytes.toByteArray();
                return BytesInput.from(switch (codec) {
                    case SNAPPY -> Snappy.compress(in);
                    case ZSTD -> Zstd.compress(in, 3);
                    case GZIP -> gzip(in);
                    default -> in;
                });
            }

            @Override
            public CompressionCodecName getCodecName() {
                return codec;
            }

            @Override
            public void release() {}
        };
    }

    @Override
    public BytesInputDecompressor getDecompressor(CompressionCodecName codec) {
        check(codec);
        return new BytesInputDecompressor() {
            @Override
            public BytesInput decompress(BytesInput bytes, int decompressedSize) throws IOException {
                return BytesInput.from(inflate(codec, bytes.toByteArray(), decompressedSize));
            }

            @Override
            public void decompress(ByteBuffer input, int compressedSize, ByteBuffer output, int decompressedSize)
                    throws IOException {
                byte[] in = new byte[compressedSize];
                input.duplicate().get(in);
                output.put(inflate(codec, in, decompressedSize));
            }

            @Override
            public void release() {}
        };
    }

    @Override
    public void release() {}

    private static void check(CompressionCodecName codec) {
        switch (codec) {
            case UNCOMPRESSED, SNAPPY, ZSTD, GZIP -> { }
            default -> throw new CorpusException("parquet codec " + codec + " is not supported (snappy, zstd, gzip and "
                    + "uncompressed are); rewrite the file with one of those");
        }
    }

    private static byte[] inflate(CompressionCodecName codec, byte[] in, int size) throws IOException {
        byte[] out = switch (codec) {
            case SNAPPY -> Snappy.uncompress(in);
            case ZSTD -> Zstd.decompress(in, size);
            case GZIP -> {
                try (GZIPInputStream gz = new GZIPInputStream(new java.io.ByteArrayInputStream(in))) {
                    yield gz.readAllBytes();
                }
            }
            default -> in;
        };
        if (out.length != size) {
            throw new IOException(codec + " page decompressed to " + out.length + " bytes, the header says " + size);
        }
        return out;
    }

    private static byte[] gzip(byte[] in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(in.length / 2 + 64);
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
            gz.write(in);
        }
        return out.toByteArray();
    }
}
