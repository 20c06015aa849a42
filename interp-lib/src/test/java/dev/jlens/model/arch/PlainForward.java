package dev.jlens.model.arch;

import dev.jlens.io.DType;
import dev.jlens.io.Safetensors;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A reference forward pass for the rotary families written with plain Java loops in double precision, straight from
 * the Hugging Face checkpoint's tensors (one token at a time, one head at a time), sharing nothing with the
 * implementations it checks. It also writes the random checkpoints it reads.
 */
final class PlainForward {

    /** What differs between the families this reference covers. */
    record Shape(int d, int layers, int heads, int kvHeads, int dHead, int dMlp, int vocab, double eps, double theta,
                 boolean gemma, double queryScalar, double attnCap, double finalCap, int window, boolean qkNorm,
                 boolean tied) {}

    final Shape s;
    final Map<String, float[]> w = new LinkedHashMap<>();
    final Map<String, long[]> shapes = new LinkedHashMap<>();

    /** Random weights under the Hugging Face names; norm weights random too, so (1 + w) versus w matters. */
    PlainForward(Shape s, long seed, double unembedStd) {
        this.s = s;
        SplittableRandom r = new SplittableRandom(seed);
        int qd = s.heads * s.dHead, kvd = s.kvHeads * s.dHead;
        put("model.embed_tokens.weight", r, 1.0, s.vocab, s.d);
        for (int l = 0; l < s.layers; l++) {
            String p = "model.layers." + l + ".";
            put(p + "input_layernorm.weight", r, 0.3, s.d);
            put(p + "self_attn.q_proj.weight", r, 0.4, qd, s.d);
            put(p + "self_attn.k_proj.weight", r, 0.4, kvd, s.d);
            put(p + "self_attn.v_proj.weight", r, 0.4, kvd, s.d);
            if (s.qkNorm) {
                put(p + "self_attn.q_norm.weight", r, 0.3, s.dHead);
                put(p + "self_attn.k_norm.weight", r, 0.3, s.dHead);
            }
            put(p + "self_attn.o_proj.weight", r, 0.3, s.d, qd);
            put(p + "post_attention_layernorm.weight", r, 0.3, s.d);
            if (s.gemma) {
                put(p + "pre_feedforward_layernorm.weight", r, 0.3, s.d);
                put(p + "post_feedforward_layernorm.weight", r, 0.3, s.d);
            }
            put(p + "mlp.gate_proj.weight", r, 0.4, s.dMlp, s.d);
            put(p + "mlp.up_proj.weight", r, 0.4, s.dMlp, s.d);
            put(p + "mlp.down_proj.weight", r, 0.3, s.d, s.dMlp);
        }
        put("model.norm.weight", r, 0.3, s.d);
        if (!s.tied) put("lm_head.weight", r, unembedStd, s.vocab, s.d);
        if (s.tied && unembedStd != 1.0) {
            float[] e = w.get("model.embed_tokens.weight");
            for (int i = 0; i < e.length; i++) e[i] *= (float) unembedStd;
        }
    }

    private void put(String name, SplittableRandom r, double std, long... dims) {
        long n = 1;
        for (long x : dims) n *= x;
        float[] a = new float[(int) n];
        for (int i = 0; i < a.length; i++) {
            // a sum of uniforms: roughly normal, deterministic
            double u = r.nextDouble() + r.nextDouble() + r.nextDouble() - 1.5;
            a[i] = (float) (u * 2 * std);
        }
        w.put(name, a);
        shapes.put(name, dims);
    }

    /** Writes config.json (given) and model.safetensors into {@code dir}. */
    void write(Path dir, String configJson) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), configJson);
        Safetensors.writeFloats(dir.resolve("model.safetensors"), w, shapes, Map.of("format", "pt"), DType.F32);
    }

    private double[] row(String name, int r, int cols) {
        float[] a = w.get(name);
        double[] out = new double[cols];
        for (int j = 0; j < cols; j++) out[j] = a[r * cols + j];
        return out;
    }

    /** {@code W x} for a {@code [rows, cols]} matrix stored row-major. */
    private double[] matVec(String name, double[] x) {
        float[] a = w.get(name);
        int cols = x.length, rows = a.length / cols;
        double[] out = new double[rows];
        for (int i = 0; i < rows; i++) {
            double acc = 0;
            for (int j = 0; j < cols; j++) acc += a[i * cols + j] * x[j];
            out[i] = acc;
        }
        return out;
    }

    private double[] norm(double[] x, String weight) {
        float[] g = w.get(weight);
        double ms = 0;
        for (double v : x) ms += v * v;
        ms /= x.length;
        double inv = 1 / Math.sqrt(ms + s.eps);
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) out[i] = x[i] * inv * (s.gemma ? 1 + g[i] : g[i]);
        return out;
    }

    /** RMSNorm of one head's slice {@code [from, from + dHead)} of {@code v}, in place. */
    private void headNorm(double[] v, int from, String weight) {
        float[] g = w.get(weight);
        double ms = 0;
        for (int i = 0; i < s.dHead; i++) ms += v[from + i] * v[from + i];
        double inv = 1 / Math.sqrt(ms / s.dHead + s.eps);
        for (int i = 0; i < s.dHead; i++) v[from + i] = v[from + i] * inv * g[i];
    }

    /** Rotate-half rotary embedding of one head's slice at position {@code p}, in place. */
    private void rope(double[] v, int from, int p) {
        int half = s.dHead / 2;
        for (int i = 0; i < half; i++) {
            double angle = p * Math.pow(s.theta, -2.0 * i / s.dHead);
            double a = v[from + i], b = v[from + i + half];
            v[from + i] = a * Math.cos(angle) - b * Math.sin(angle);
            v[from + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
        }
    }

    private static double cap(double x, double c) {
        return c > 0 ? c * Math.tanh(x / c) : x;
    }

    private static double act(double x, boolean gemma) {
        if (gemma) return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
        return x / (1 + Math.exp(-x));
    }

    /** Whether layer {@code l} slides (Gemma 2's default: even layers). */
    boolean slides(int l) {
        return s.gemma && s.window > 0 && l % 2 == 0;
    }

    /** Logits {@code [pos][vocab]} of one unpadded sequence. */
    double[][] logits(long[] tokens) {
        int n = tokens.length, d = s.d, dh = s.dHead, group = s.heads / s.kvHeads;
        double[][] x = new double[n][];
        for (int t = 0; t < n; t++) {
            x[t] = row("model.embed_tokens.weight", (int) tokens[t], d);
            if (s.gemma) for (int i = 0; i < d; i++) x[t][i] *= Math.sqrt(d);
        }
        double scale = s.gemma ? Math.pow(s.queryScalar, -0.5) : 1 / Math.sqrt(dh);
        for (int l = 0; l < s.layers; l++) {
            String p = "model.layers." + l + ".";
            double[][] q = new double[n][], k = new double[n][], v = new double[n][];
            for (int t = 0; t < n; t++) {
                double[] h = norm(x[t], p + "input_layernorm.weight");
                q[t] = matVec(p + "self_attn.q_proj.weight", h);
                k[t] = matVec(p + "self_attn.k_proj.weight", h);
                v[t] = matVec(p + "self_attn.v_proj.weight", h);
                for (int hd = 0; hd < s.heads; hd++) {
                    if (s.qkNorm) headNorm(q[t], hd * dh, p + "self_attn.q_norm.weight");
                    rope(q[t], hd * dh, t);
                }
                for (int hd = 0; hd < s.kvHeads; hd++) {
                    if (s.qkNorm) headNorm(k[t], hd * dh, p + "self_attn.k_norm.weight");
                    rope(k[t], hd * dh, t);
                }
            }
            for (int t = 0; t < n; t++) {
                double[] z = new double[s.heads * dh];
                for (int hd = 0; hd < s.heads; hd++) {
                    int kvh = hd / group;
                    double[] sc = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u <= t; u++) {
                        if (slides(l) && t - u >= s.window) {
                            sc[u] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        double dot = 0;
                        for (int i = 0; i < dh; i++) dot += q[t][hd * dh + i] * k[u][kvh * dh + i];
                        sc[u] = cap(dot * scale, s.attnCap);
                        max = Math.max(max, sc[u]);
                    }
                    double sum = 0;
                    for (int u = 0; u <= t; u++) sum += sc[u] = Math.exp(sc[u] - max);
                    for (int u = 0; u <= t; u++) {
                        for (int i = 0; i < dh; i++) z[hd * dh + i] += sc[u] / sum * v[u][kvh * dh + i];
                    }
                }
                double[] o = matVec(p + "self_attn.o_proj.weight", z);
                if (s.gemma) o = norm(o, p + "post_attention_layernorm.weight");
                for (int i = 0; i < d; i++) x[t][i] += o[i];
            }
            for (int t = 0; t < n; t++) {
                double[] h = norm(x[t], p + (s.gemma ? "pre_feedforward_layernorm.weight"
                        : "post_attention_layernorm.weight"));
                double[] gate = matVec(p + "mlp.gate_proj.weight", h), up = matVec(p + "mlp.up_proj.weight", h);
                for (int i = 0; i < gate.length; i++) gate[i] = act(gate[i], s.gemma) * up[i];
                double[] m = matVec(p + "mlp.down_proj.weight", gate);
                if (s.gemma) m = norm(m, p + "post_feedforward_layernorm.weight");
                for (int i = 0; i < d; i++) x[t][i] += m[i];
            }
        }
        double[][] out = new double[n][];
        for (int t = 0; t < n; t++) {
            double[] h = norm(x[t], "model.norm.weight");
            out[t] = matVec(s.tied ? "model.embed_tokens.weight" : "lm_head.weight", h);
            for (int i = 0; i < out[t].length; i++) out[t][i] = cap(out[t][i], s.finalCap);
        }
        return out;
    }
}
