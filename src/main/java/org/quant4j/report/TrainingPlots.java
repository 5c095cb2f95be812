package org.quant4j.report;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;

/** Training curves: loss per step, and validation perplexity at the steps where it was measured (log scale). */
public final class TrainingPlots {
    private TrainingPlots() {}

    /**
     * @param steps    step numbers
     * @param loss     training loss per step
     * @param valPpl   validation perplexity per step, NaN where not measured
     */
    public static BufferedImage curves(String title, int[] steps, float[] loss, double[] valPpl) {
        XYChart left = chart(title + ": training loss", "cross-entropy (nats)", false);
        List<Double> xs = new ArrayList<>(), ys = new ArrayList<>();
        for (int i = 0; i < steps.length; i++) if (!Float.isNaN(loss[i])) { xs.add((double) steps[i]); ys.add((double) loss[i]); }
        if (!xs.isEmpty()) left.addSeries("train loss", xs, ys);
        XYChart right = chart(title + ": validation perplexity", "perplexity (log)", true);
        List<Double> vx = new ArrayList<>(), vy = new ArrayList<>();
        for (int i = 0; i < steps.length; i++) if (!Double.isNaN(valPpl[i])) { vx.add((double) steps[i]); vy.add(valPpl[i]); }
        if (!vx.isEmpty()) right.addSeries("validation perplexity", vx, vy).setMarkerColor(Color.RED);
        return Plots.row(BitmapEncoder.getBufferedImage(left), BitmapEncoder.getBufferedImage(right));
    }

    private static XYChart chart(String title, String yTitle, boolean log) {
        XYChart c = new XYChartBuilder().width(560).height(360).title(title).xAxisTitle("step").yAxisTitle(yTitle).build();
        c.getStyler().setYAxisLogarithmic(log);
        c.getStyler().setLegendVisible(false);
        c.getStyler().setChartBackgroundColor(Color.WHITE);
        c.getStyler().setMarkerSize(log ? 6 : 0);
        c.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        return c;
    }
}
