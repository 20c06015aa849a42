package dev.jlens.sae;

import dev.jlens.notebook.Display;
import dev.jlens.notebook.HtmlRenderable;
import org.knowm.xchart.BitmapEncoder;

import java.util.List;
import java.util.Locale;

/**
 * One latent at a glance (renders as HTML in a notebook): density and activation statistics, an activation
 * histogram, the tokens its decoder direction boosts and suppresses, and its top activating contexts with each
 * token shaded by the latent's activation (hover a token for its value).
 */
public final class FeatureCard implements HtmlRenderable {
    private static final String FONT = "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,"
            + "sans-serif;";
    private static final String MONO = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;";

    private final FeatureViews views;
    private final int latent;

    FeatureCard(FeatureViews views, int latent) {
        this.views = views;
        this.latent = latent;
    }

    /** The latent this card shows. */
    public int latent() {
        return latent;
    }

    @Override
    public String toHtml() {
        StringBuilder h = new StringBuilder(16_384);
        SaeConfig cfg = views.sae().cfg();
        h.append("<div style=\"").append(FONT).append("font-size:13px;color:#222;max-width:980px;border:1px solid #ddd;"
                + "border-radius:8px;padding:12px 16px;background:#fff\">");
        // header
        h.append("<div style=\"display:flex;align-items:baseline;gap:12px;flex-wrap:wrap\">")
                .append("<span style=\"font-size:18px;font-weight:600\">Latent ").append(latent).append("</span>")
                .append("<span style=\"color:#777\">").append(esc(cfg.hookPoint().orElse("no hook point"))).append(" &middot; ")
                .append(esc(cfg.kind().architecture())).append(" &middot; ").append(cfg.dSae()).append(" latents</span></div>");
        long fires = views.fires(latent);
        double density = views.density(latent);
        h.append("<div style=\"margin:8px 0 10px 0;display:flex;gap:8px;flex-wrap:wrap\">");
        pill(h, "density", fires == 0 ? "0" : String.format(Locale.ROOT, "%.3g%% (log10 %.2f)", 100 * density,
                Math.log10(density)));
        pill(h, "fires on", String.format(Locale.ROOT, "%,d of %,d tokens", fires, views.tokens()));
        pill(h, "mean act when active", String.format(Locale.ROOT, "%.3g", views.meanActivation(latent)));
        pill(h, "max act", String.format(Locale.ROOT, "%.3g", views.maxActivation(latent)));
        h.append("</div>");
        if (fires == 0) {
            h.append("<div style=\"color:#a61e4d;margin-bottom:8px\">This latent never fired on the ")
                    .append(String.format(Locale.ROOT, "%,d", views.tokens()))
                    .append(" tokens seen: it is dead on this data.</div>");
        }
        h.append("<div style=\"display:flex;gap:20px;flex-wrap:wrap;align-items:flex-start\">");
        // left column: histogram and logit effect
        h.append("<div style=\"flex:0 0 360px\">");
        if (fires > 0) {
            String png = Display.png(BitmapEncoder.getBufferedImage(views.histogramChart(latent, 30, 360, 200)));
            h.append("<img alt=\"activation histogram of latent ").append(latent)
                    .append("\" style=\"display:block;width:360px;height:200px\" src=\"data:image/png;base64,")
                    .append(png).append("\"/>");
        }
        logits(h);
        h.append("</div>");
        // right column: contexts
        h.append("<div style=\"flex:1 1 420px;min-width:320px\">");
        contexts(h);
        h.append("</div></div></div>");
        return h.toString();
    }

    private static void pill(StringBuilder h, String label, String value) {
        h.append("<span style=\"background:#f1f3f5;border-radius:12px;padding:2px 10px\"><span style=\"color:#777\">")
                .append(esc(label)).append("</span> <strong>").append(esc(value)).append("</strong></span>");
    }

    private void logits(StringBuilder h) {
        h.append("<div style=\"font-weight:600;margin:10px 0 4px 0\">Direct logit effect</div>");
        if (!views.residualHook()) {
            h.append("<div style=\"color:#777\">not shown: ").append(esc(views.sae().cfg().hookName()))
                    .append(" is not a residual-stream hook of width d_model</div>");
            return;
        }
        FeatureViews.LogitEffect e = views.logitEffect(latent);
        double scale = 1e-12;
        for (FeatureViews.TokenValue t : e.boosted()) scale = Math.max(scale, Math.abs(t.value()));
        for (FeatureViews.TokenValue t : e.suppressed()) scale = Math.max(scale, Math.abs(t.value()));
        h.append("<div style=\"display:flex;gap:12px\">");
        logitTable(h, "boosted", e.boosted(), scale, "47,158,68");
        logitTable(h, "suppressed", e.suppressed(), scale, "224,49,49");
        h.append("</div>");
    }

    private void logitTable(StringBuilder h, String title, List<FeatureViews.TokenValue> tokens, double scale, String rgb) {
        h.append("<table style=\"border-collapse:collapse;font-size:12px\"><tr><th colspan=\"2\" style=\"text-align:left;"
                + "color:#777;font-weight:normal;padding:0 4px 2px 0\">").append(title).append("</th></tr>");
        for (FeatureViews.TokenValue t : tokens) {
            double a = Math.min(1, Math.abs(t.value()) / scale) * 0.55;
            h.append("<tr><td style=\"").append(MONO).append("padding:1px 6px;white-space:pre;background:rgba(").append(rgb)
                    .append(',').append(String.format(Locale.ROOT, "%.3f", a)).append(")\" title=\"id ").append(t.id())
                    .append("\">").append(esc(visible(t.text()))).append("</td><td style=\"").append(MONO)
                    .append("padding:1px 4px;text-align:right;color:#555\">")
                    .append(String.format(Locale.ROOT, "%+.3f", t.value())).append("</td></tr>");
        }
        h.append("</table>");
    }

    private void contexts(StringBuilder h) {
        List<FeatureViews.Context> ctx = views.topContexts(latent);
        h.append("<div style=\"font-weight:600;margin:0 0 4px 0\">Top activating contexts</div>");
        if (ctx.isEmpty()) {
            h.append("<div style=\"color:#777\">none</div>");
            return;
        }
        double maxAct = Math.max(1e-12, views.maxActivation(latent));
        h.append("<table style=\"border-collapse:collapse\">");
        for (FeatureViews.Context c : ctx) {
            h.append("<tr><td style=\"").append(MONO).append("font-size:11px;color:#777;padding:2px 8px 2px 0;"
                    + "text-align:right;vertical-align:top\" title=\"sequence ").append(c.sequence()).append(", position ")
                    .append(c.position()).append("\">").append(String.format(Locale.ROOT, "%.3g", c.value()))
                    .append("</td><td style=\"").append(MONO).append("font-size:12px;padding:2px 0;line-height:1.9\">");
            for (int i = 0; i < c.tokens().length; i++) {
                float a = c.acts()[i];
                double alpha = Math.min(1, a / maxAct) * 0.85;
                String text = views.tokenText(c.tokens()[i]);
                h.append("<span style=\"white-space:pre;border-radius:3px;padding:1px 1px;margin:0 1px 0 0;");
                if (alpha > 0) h.append(String.format(Locale.ROOT, "background:rgba(232,89,12,%.3f);", alpha));
                if (i == c.focus()) h.append("font-weight:700;border-bottom:2px solid #c92a2a;");
                h.append("\" title=\"").append(esc(FeatureViews.quote(text))).append(" (id ").append(c.tokens()[i])
                        .append(String.format(Locale.ROOT, "): activation %.4g", a)).append("\">")
                        .append(esc(visible(text))).append("</span>");
            }
            h.append("</td></tr>");
        }
        h.append("</table>");
    }

    /** Newlines and tabs as visible marks, so a context stays on one line. */
    static String visible(String token) {
        return token.replace("\n", "\u21b5").replace("\t", "\u2192").replace("\r", "");
    }

    private static String esc(String s) {
        return Display.escapeHtml(s);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "FeatureCard[latent %d: density %.3g, mean act %.3g, max %.3g]", latent,
                views.density(latent), views.meanActivation(latent), views.maxActivation(latent));
    }
}
