package dev.jlens.sae;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;

/** The general route of {@link SparseCoder#trainStep}: any architecture's {@code trainForward}, backward, measures. */
final class TrainSteps {
    private TrainSteps() {}

    /** Forward through {@link SparseCoder#trainForward}, backward through {@code gc}, then the step's measurements. */
    static SparseCoder.StepResult general(SparseCoder sae, NDArray xBD, SparseCoder.Context ctx, GradientCollector gc) {
        SparseCoder.Output o = sae.trainForward(xBD, ctx);
        if (o.loss().getShape().size() != 1) {
            throw new IllegalStateException("the " + sae.cfg().kind().architecture() + " dictionary returned a loss of "
                    + "shape " + o.loss().getShape() + "; a scalar is needed");
        }
        gc.backward(o.loss());
        NDArray errBD = xBD.sub(o.recon());
        NDArray mse = o.parts().containsKey("mse") ? o.parts().get("mse") : Losses.sumSquares(errBD);
        // one transfer for the three scalars
        float[] s = NDArrays.stack(new NDList(o.loss().stopGradient(), mse.stopGradient(),
                errBD.square().sum().stopGradient())).toFloatArray();
        float[] fired = o.acts().gt(0).sum(new int[]{0}).toType(DataType.FLOAT32, false).toFloatArray();
        return new SparseCoder.StepResult(s[0], s[1], s[2], fired, o);
    }
}
