package org.quant4j.report;

import org.knowm.xchart.*;

import java.awt.*;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The pictures of the visual guide, for the user's own tensors: histograms, heatmaps of a tensor patch (original,
 * quantized, dequantized, error, side by side as seed 002 draws them), and per-channel magnitude plots that make
 * outlier channels stand out. Each returns a PNG image (XChart, rendered headless).
 */
public final class Plots {
    private Plots() {}

    /** Histogram of values over {@code bins} equal-width bins; log-scale counts show the tails. */
    public static BufferedImage histogram(String title, float[] values, int bins, boolean logCounts) {
        float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
        for (float v : values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
        if (!(hi > lo)) { hi = lo + 1; }
        double[] centers = new double[bins], counts = new double[bins];
        double width = (hi - lo) / bins;
        for (int b = 0; b < bins; b++) centers[b] = lo + (b + 0.5) * width;
        for (float v : values) counts[Math.min(bins - 1, (int) ((v - lo) / width))]++;
        XYChart chart = new XYChartBuilder().width(640).height(360).title(title).xAxisTitle("value").yAxisTitle(logCounts ? "count (log)" : "count").build();
        chart.getStyler().setYAxisLogarithmic(logCounts);
        chart.getStyler().setXAxisDecimalPattern("0.###");
        chart.getStyler().setXAxisMaxLabelCount(9);
        chart.getStyler().setMarkerSize(0);
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Area);
        List<Double> xs = new ArrayList<>(), ys = new ArrayList<>();
        for (int b = 0; b < bins; b++) {
            double c = logCounts ? Math.max(counts[b], 0.5) : counts[b];
            xs.add(centers[b] - width / 2); ys.add(c);
            xs.add(centers[b] + width / 2); ys.add(c);
        }
        chart.addSeries("values", xs, ys);
        return BitmapEncoder.getBufferedImage(chart);
    }

    /** Heatmap of a [rows, cols] patch with its values written in the cells when the patch is small (seed 002's style). */
    public static BufferedImage heatmap(String title, float[] patch, int rows, int cols, double vmin, double vmax) {
        int cell = Math.max(18, Math.min(60, 480 / Math.max(rows, cols)));
        int w = cols * cell + 20, h = rows * cell + 50;
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, w, h);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.drawString(title, 10, 22);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, Math.max(9, cell / 4)));
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                float v = patch[r * cols + c];
                g.setColor(coolwarm((v - vmin) / Math.max(1e-30, vmax - vmin)));
                int x0 = 10 + c * cell, y0 = 35 + r * cell;
                g.fillRect(x0, y0, cell, cell);
                if (cell >= 40) {
                    g.setColor(Color.BLACK);
                    String s = Math.abs(v) >= 100 || v == Math.rint(v) ? String.format("%.0f", v) : String.format("%.2f", v);
                    g.drawString(s, x0 + 3, y0 + cell / 2 + 4);
                }
            }
        }
        g.dispose();
        return img;
    }

    /**
     * Magnitude map of activations (tokens, channels), as DuQuant's figure 1: one cell per (token, channel), colour by
     * |x| on a log scale from the median |x| (grey) to the maximum (dark red), so outlier channels show as vertical
     * stripes (normal outliers) and lone tokens as bright dots (massive outliers).
     */
    public static BufferedImage magnitudeMap(String title, float[] x, int tokens, int channels) {
        int cw = Math.max(1, Math.min(8, 900 / Math.max(1, channels))), ch = Math.max(1, Math.min(8, 500 / Math.max(1, tokens)));
        int w = channels * cw + 20, h = tokens * ch + 60;
        float[] abs = new float[x.length];
        for (int i = 0; i < x.length; i++) abs[i] = Math.abs(x[i]);
        float[] sorted = abs.clone();
        java.util.Arrays.sort(sorted);
        double median = Math.max(1e-12, sorted[sorted.length / 2]), max = Math.max(median * 1.0001, sorted[sorted.length - 1]);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, w, h);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 13));
        g.drawString(title, 10, 18);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        g.drawString(String.format("channels → (%d), tokens ↓ (%d); grey ≤ median |x| %.3g, dark red = max %.3g (log scale)", channels, tokens, median, max), 10, 34);
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < channels; c++) {
                double v = abs[t * channels + c];
                double u = v <= median ? 0 : Math.log(v / median) / Math.log(max / median);
                g.setColor(coolwarm(0.5 + 0.5 * Math.min(1, u)));
                g.fillRect(10 + c * cw, 45 + t * ch, cw, ch);
            }
        }
        g.dispose();
        return img;
    }

    /** Per-channel max |x| (e.g. over the columns of a weight, or the features of activations), as a bar-like line. */
    public static BufferedImage channelMagnitudes(String title, double[] perChannel, String xLabel) {
        XYChart chart = new XYChartBuilder().width(800).height(320).title(title).xAxisTitle(xLabel).yAxisTitle("max |x|").build();
        chart.getStyler().setMarkerSize(0);
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        double[] idx = new double[perChannel.length];
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        chart.addSeries("max|x|", idx, perChannel);
        return BitmapEncoder.getBufferedImage(chart);
    }

    /** Images side by side, top-aligned. */
    public static BufferedImage row(BufferedImage... images) {
        int w = 0, h = 0;
        for (BufferedImage i : images) { w += i.getWidth(); h = Math.max(h, i.getHeight()); }
        BufferedImage out = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, w, h);
        int x = 0;
        for (BufferedImage i : images) { g.drawImage(i, x, 0, null); x += i.getWidth(); }
        g.dispose();
        return out;
    }

    public static byte[] png(BufferedImage img) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            javax.imageio.ImageIO.write(img, "png", out);
            return out.toByteArray();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Blue (0) – white (0.5) – red (1), like matplotlib's coolwarm. */
    static Color coolwarm(double t) {
        t = Math.max(0, Math.min(1, t));
        Color blue = new Color(59, 76, 192), white = new Color(221, 221, 221), red = new Color(180, 4, 38);
        Color a = t < 0.5 ? blue : white, b = t < 0.5 ? white : red;
        double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
        return new Color((int) (a.getRed() + u * (b.getRed() - a.getRed())), (int) (a.getGreen() + u * (b.getGreen() - a.getGreen())),
                (int) (a.getBlue() + u * (b.getBlue() - a.getBlue())));
    }
}
