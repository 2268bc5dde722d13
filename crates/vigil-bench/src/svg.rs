//! A small SVG line chart for the report: no plotting dependency, just
//! axes, ticks, polylines and a legend.

use std::fmt::Write;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour (CSS).
    pub colour: &'static str,
    /// (x, y) points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// One panel: a title, axis labels and its series.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Labelled x ticks at these positions (for a scale that is not
    /// linear, e.g. log10 of an interval); empty: round numeric ticks.
    pub x_ticks: Vec<(f64, String)>,
}

const W: f64 = 460.0;
const H: f64 = 320.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// A "nice" tick step for a range (1, 2 or 5 times a power of ten).
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 5.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

fn label(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders panels side by side as one SVG document.
pub fn render(panels: &[Panel]) -> String {
    let mut out = String::new();
    let total_w = W * panels.len() as f64;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{H}" viewBox="0 0 {total_w} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, p) in panels.iter().enumerate() {
        let f = Frame::fit(p, W * i as f64);
        f.title(&mut out, &p.title);
        f.grid(&mut out, &p.x_ticks);
        f.axes(&mut out, p);
        for (k, s) in p.series.iter().enumerate() {
            f.series(&mut out, s);
            f.legend(&mut out, k, s);
        }
    }
    out.push_str("</svg>\n");
    out
}

/// One panel's plot area and scales: data (x, y) to SVG coordinates.
struct Frame {
    /// The panel's left edge in the document.
    ox: f64,
    /// Tick steps.
    xs: f64,
    ys: f64,
    /// Axis ends: the data's maxima rounded up to a tick.
    xtop: f64,
    ytop: f64,
    /// Plot area width and height.
    pw: f64,
    ph: f64,
}

impl Frame {
    /// Axes that fit every series of `p`, for the panel at `ox`.
    fn fit(p: &Panel, ox: f64) -> Frame {
        let pts = p.series.iter().flat_map(|s| s.points.iter());
        let (xmax, ymax) = pts.fold((0f64, 0f64), |(a, b), (x, y)| (a.max(*x), b.max(*y)));
        let (xs, ys) = (tick_step(xmax), tick_step(ymax));
        let (xtop, ytop) = ((xmax / xs).ceil() * xs, (ymax / ys).ceil() * ys);
        // Labelled ticks: the axis ends at the last one.
        let labelled_top = p.x_ticks.iter().map(|t| t.0).fold(xmax, f64::max);
        Frame {
            ox,
            xs,
            ys,
            xtop: if p.x_ticks.is_empty() {
                xtop.max(xs)
            } else {
                labelled_top.max(f64::MIN_POSITIVE)
            },
            ytop: ytop.max(ys),
            pw: W - LEFT - RIGHT,
            ph: H - TOP - BOTTOM,
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.ox + LEFT + x / self.xtop * self.pw
    }

    fn py(&self, y: f64) -> f64 {
        TOP + self.ph - y / self.ytop * self.ph
    }

    fn title(&self, out: &mut String, title: &str) {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
            self.ox + W / 2.0,
            escape(title)
        );
    }

    /// Horizontal grid lines with the y labels, then the x ticks and labels
    /// (`labelled`, or round numbers if it is empty).
    fn grid(&self, out: &mut String, labelled: &[(f64, String)]) {
        let mut t = 0.0;
        while t <= self.ytop + self.ys / 2.0 {
            let y = self.py(t);
            let _ = writeln!(
                out,
                r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                self.px(0.0),
                self.px(self.xtop),
                self.px(0.0) - 6.0,
                y + 4.0,
                label(t)
            );
            t += self.ys;
        }
        let mut ticks: Vec<(f64, String)> = labelled.to_vec();
        if ticks.is_empty() {
            let mut t = 0.0;
            while t <= self.xtop + self.xs / 2.0 {
                ticks.push((t, label(t)));
                t += self.xs;
            }
        }
        let round = !labelled.is_empty();
        for (t, text) in ticks {
            // Labelled ticks sit anywhere: one decimal is enough.
            let x = if round {
                (self.px(t) * 10.0).round() / 10.0
            } else {
                self.px(t)
            };
            let _ = writeln!(
                out,
                r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#999"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
                self.py(0.0),
                self.py(0.0) + 5.0,
                self.py(0.0) + 18.0,
                escape(&text)
            );
        }
    }

    /// The two axis lines and their labels.
    fn axes(&self, out: &mut String, p: &Panel) {
        let _ = writeln!(
            out,
            r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="black"/><line x1="{0}" y1="{1}" x2="{0}" y2="{3}" stroke="black"/>"#,
            self.px(0.0),
            self.py(0.0),
            self.px(self.xtop),
            self.py(self.ytop)
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            self.ox + LEFT + self.pw / 2.0,
            H - 12.0,
            escape(&p.x_label)
        );
        let _ = writeln!(
            out,
            r#"<text transform="translate({},{}) rotate(-90)" text-anchor="middle">{}</text>"#,
            self.ox + 16.0,
            TOP + self.ph / 2.0,
            escape(&p.y_label)
        );
    }

    /// A series' line and a dot at each point.
    fn series(&self, out: &mut String, s: &Series) {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", self.px(*x), self.py(*y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.colour,
            path.join(" ")
        );
        for (x, y) in &s.points {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                self.px(*x),
                self.py(*y),
                s.colour
            );
        }
    }

    /// The `k`th legend entry, top left of the plot.
    fn legend(&self, out: &mut String, k: usize, s: &Series) {
        let ly = TOP + 12.0 + 16.0 * k as f64;
        let lx = self.ox + LEFT + 10.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 18.0,
            s.colour,
            lx + 24.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(24_864.0), 5_000.0);
        assert_eq!(tick_step(0.0), 1.0);
        assert_eq!(tick_step(f64::NAN), 1.0);
    }

    #[test]
    fn renders_every_series_and_escapes_text() {
        let svg = render(&[Panel {
            title: "time <ms>".into(),
            x_label: "readings".into(),
            y_label: "ms".into(),
            series: vec![
                Series {
                    name: "E2EE".into(),
                    colour: "#c0392b",
                    points: vec![(1.0, 2.0), (2.0, 3.0)],
                },
                Series {
                    name: "plaintext".into(),
                    colour: "#2471a3",
                    points: vec![(1.0, 1.0)],
                },
            ],
            x_ticks: vec![],
        }]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("time &lt;ms&gt;"));
    }
}
