package dev.jlens.geometry;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jlens.hook.HookFn;

/**
 * Rotating activations in a plane, about a centre: {@code x -> x + U (R(angle) - I) U^T (x - c)}, with {@code U}
 * the plane's orthonormal basis {@code (u, v)} (e.g. the top two {@link Pca} components) and {@code c} the centre of
 * the circle (e.g. the mean of the class means). Only the component in the plane turns; everything orthogonal to it
 * is left as it was. As a forward hook on a residual-stream point ({@code blocks.L.hook_resid_pre}) at one position
 * per row, it is the causal test of Engels et al. 2024: if a feature is a circle the model reads by angle, turning
 * it by one class's step moves the answer by one class.
 *
 * <pre>{@code
 * PlaneRotation r = PlaneRotation.of(pca.mean(), pca.components()[0], pca.components()[1]);
 * try (HookScope s = model.hook("blocks.0.hook_resid_pre", r.hook(startPositions, 3 * order.step()))) {
 *     logits = model.forward(batch);   // the weekday turned three days on
 * }
 * }</pre>
 *
 * @param center the rotation's centre {@code [d]}
 * @param u the plane's first unit direction {@code [d]}
 * @param v the plane's second unit direction {@code [d]}, orthogonal to {@code u}
 */
public record PlaneRotation(double[] center, double[] u, double[] v) {

    /** Checks the sizes and that {@code (u, v)} is orthonormal. */
    public PlaneRotation {
        int d = center.length;
        if (u.length != d || v.length != d) {
            throw new IllegalArgumentException("center, u and v must have one size, got " + d + ", " + u.length + ", "
                    + v.length);
        }
        double uu = 0, vv = 0, uv = 0;
        for (int k = 0; k < d; k++) {
            uu += u[k] * u[k];
            vv += v[k] * v[k];
            uv += u[k] * v[k];
        }
        if (Math.abs(uu - 1) > 1e-6 || Math.abs(vv - 1) > 1e-6 || Math.abs(uv) > 1e-6) {
            throw new IllegalArgumentException(String.format(java.util.Locale.ROOT,
                    "u and v must be orthonormal: |u|^2 = %.6f, |v|^2 = %.6f, u.v = %.6f", uu, vv, uv));
        }
        center = center.clone();
        u = u.clone();
        v = v.clone();
    }

    /** The rotation about {@code center} in the plane of {@code u} and {@code v}. */
    public static PlaneRotation of(double[] center, double[] u, double[] v) {
        return new PlaneRotation(center, u, v);
    }

    /** The dimension of the space. */
    public int dim() {
        return center.length;
    }

    /** {@code x} rotated by {@code angle} (radians, from {@code u} towards {@code v}). */
    public double[] apply(double[] x, double angle) {
        int d = dim();
        if (x.length != d) throw new IllegalArgumentException("x has " + x.length + " coordinates, the plane lives in " + d);
        double a = 0, b = 0;
        for (int k = 0; k < d; k++) {
            a += (x[k] - center[k]) * u[k];
            b += (x[k] - center[k]) * v[k];
        }
        double c = Math.cos(angle), s = Math.sin(angle);
        double da = c * a - s * b - a, db = s * a + c * b - b;
        double[] out = x.clone();
        for (int k = 0; k < d; k++) out[k] += da * u[k] + db * v[k];
        return out;
    }

    /**
     * A forward hook on an activation {@code [batch, pos, d]} that rotates row {@code r}'s vector at position
     * {@code positions[r]} by {@code angle} and leaves every other position alone.
     */
    public HookFn hook(int[] positions, double angle) {
        int[] pos = positions.clone();
        return (act, hook) -> {
            Shape s = act.getShape();
            if (s.dimension() != 3 || s.get(2) != dim() || s.get(0) != pos.length) {
                throw new IllegalArgumentException("hook " + hook.name() + ": expected [" + pos.length + ", pos, " + dim()
                        + "], got " + s);
            }
            int b = (int) s.get(0), p = (int) s.get(1), d = dim();
            // M = U (R - I) U^T, so that x' = x + (x - c) M (row vectors; M is applied on the right)
            double c = Math.cos(angle), sn = Math.sin(angle);
            double[][] rm = {{c - 1, sn}, {-sn, c - 1}};   // (R - I)^T for row vectors: [a b] -> [a b] (R - I)^T
            float[] m = new float[d * d];
            for (int i = 0; i < d; i++) {
                for (int j = 0; j < d; j++) {
                    m[i * d + j] = (float) (u[i] * (rm[0][0] * u[j] + rm[0][1] * v[j])
                            + v[i] * (rm[1][0] * u[j] + rm[1][1] * v[j]));
                }
            }
            float[] mask = new float[b * p];
            for (int r = 0; r < b; r++) {
                if (pos[r] < 0 || pos[r] >= p) {
                    throw new IllegalArgumentException("position " + pos[r] + " of row " + r + " is outside 0.." + (p - 1));
                }
                mask[r * p + pos[r]] = 1;
            }
            float[] cf = new float[d];
            for (int k = 0; k < d; k++) cf[k] = (float) center[k];
            NDManager nd = act.getManager();
            NDArray x = act.getDataType() == DataType.FLOAT32 ? act : act.toType(DataType.FLOAT32, false);
            NDArray delta = x.sub(nd.create(cf)).matMul(nd.create(m, new Shape(d, d)))
                    .mul(nd.create(mask, new Shape(b, p, 1)));
            NDArray out = x.add(delta);
            return act.getDataType() == DataType.FLOAT32 ? out : out.toType(act.getDataType(), false);
        };
    }
}
