//! The plots of a run, drawn in Rust with `plotters`, each as PNG and SVG:
//! throughput over time and latency CDFs per (workload, phase) with one
//! line per target, and accelerator utilisation per workload with one bar
//! per target and the MLPerf bar drawn across.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (the `dejavu`
//! crate), so a PNG renders the same on a machine without fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::limits;
use crate::report::{Row, RunReport};
use crate::{BenchError, Result};

/// Top of the AU axis: room above 100% for the bars' labels and the
/// legend.
const AU_AXIS_PCT: f64 = 140.0;

/// Pixel size of every plot.
const PLOT_PIXELS: (u32, u32) = (960, 540);

/// One colour per target, in the run's target order (then repeating).
const TARGET_COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One plot to draw.
enum Chart<'a> {
    /// Rate per timeline bucket, one line per row.
    Throughput { title: String, rows: Vec<&'a Row> },
    /// Latency CDF, one line per row.
    Latency { title: String, rows: Vec<&'a Row> },
    /// AU per workload (groups), one bar per target.
    Au { workloads: Vec<String>, targets: Vec<String>, rows: Vec<&'a Row> },
}

/// A plot written: its file stem (`<stem>.png`, `<stem>.svg`) and title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plot {
    /// File name without extension, inside the run's directory.
    pub stem: String,
    /// What it shows.
    pub title: String,
}

fn color(targets: &[String], target: &str) -> RGBColor {
    let i = targets.iter().position(|t| t == target).unwrap_or(0);
    TARGET_COLORS[i % TARGET_COLORS.len()]
}

/// The registered font family every text uses.
const FONT: &str = "sans-serif";

/// plotters' `ab_glyph` text needs its font registered in plotters'
/// process-wide table before the first text is measured; once is enough.
fn register_font() {
    static FONT_REGISTERED: Once = Once::new();
    FONT_REGISTERED.call_once(|| {
        // DejaVu Sans parses; the crate's bytes are fixed at build time.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Draws every plot of `report` into `dir`; returns them in page order
/// (AU first, then per workload and phase: throughput, latency).
pub fn write_plots(dir: &Path, report: &RunReport) -> Result<Vec<Plot>> {
    register_font();
    let mut plots = Vec::new();
    let au_rows: Vec<&Row> = report.rows.iter().filter(|r| r.au_pct.is_some()).collect();
    if !au_rows.is_empty() {
        let mut workloads: Vec<String> = Vec::new();
        for r in &au_rows {
            if !workloads.contains(&r.workload) {
                workloads.push(r.workload.clone());
            }
        }
        let chart = Chart::Au { workloads, targets: report.targets.clone(), rows: au_rows };
        plots.push(draw_both(dir, "au", "Accelerator utilisation per workload", &chart, &report.targets)?);
    }
    let mut groups: Vec<(String, String)> = Vec::new();
    for r in &report.rows {
        let g = (r.workload.clone(), r.phase.clone());
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for (w, p) in groups {
        let rows: Vec<&Row> = report.rows.iter().filter(|r| r.workload == w && r.phase == p).collect();
        let unit = if rows.iter().any(|r| r.moves_bytes()) { "MiB/s" } else { "ops/s" };
        if rows.iter().any(|r| r.timeline.bytes.len() > 1) {
            let title = format!("{w} {p}: throughput over time ({unit})");
            let chart = Chart::Throughput { title: title.clone(), rows: rows.clone() };
            plots.push(draw_both(dir, &format!("throughput-{w}-{p}"), &title, &chart, &report.targets)?);
        }
        if rows.iter().any(|r| r.ops > 1 && !r.latency_cdf_us.is_empty()) {
            let title = format!("{w} {p}: request latency CDF");
            let chart = Chart::Latency { title: title.clone(), rows };
            plots.push(draw_both(dir, &format!("latency-{w}-{p}"), &title, &chart, &report.targets)?);
        }
    }
    Ok(plots)
}

fn draw_both(dir: &Path, stem: &str, title: &str, chart: &Chart<'_>, targets: &[String]) -> Result<Plot> {
    let err = |p: &PathBuf, why: String| BenchError::Report { path: p.display().to_string(), why };
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = SVGBackend::new(&svg, PLOT_PIXELS).into_drawing_area();
        draw(&root, chart, targets).map_err(|e| err(&svg, e.to_string()))?;
        root.present().map_err(|e| err(&svg, e.to_string()))?;
    }
    let png = dir.join(format!("{stem}.png"));
    {
        let root = BitMapBackend::new(&png, PLOT_PIXELS).into_drawing_area();
        draw(&root, chart, targets).map_err(|e| err(&png, e.to_string()))?;
        root.present().map_err(|e| err(&png, e.to_string()))?;
    }
    Ok(Plot { stem: stem.into(), title: title.into() })
}

type DrawResult<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart<'_>, targets: &[String]) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    match chart {
        Chart::Throughput { title, rows } => throughput(root, title, rows, targets),
        Chart::Latency { title, rows } => latency(root, title, rows, targets),
        Chart::Au { workloads, targets, rows } => au(root, workloads, targets, rows),
    }
}

/// Every chart's caption, margin and axis label room.
fn builder<'a, 'b, DB: DrawingBackend>(root: &'a DrawingArea<DB, Shift>, title: &'b str) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, (FONT, 22)).margin(16).x_label_area_size(44).y_label_area_size(72);
    b
}

/// One target's line, with its legend entry.
fn line<'a, DB: DrawingBackend + 'a, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    target: &str,
    targets: &[String],
) -> DrawResult<DB> {
    let c = color(targets, target);
    chart
        .draw_series(LineSeries::new(points, c.stroke_width(2)))?
        .label(target)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    at: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(at)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

fn throughput<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    rows: &[&Row],
    targets: &[String],
) -> DrawResult<DB> {
    let bytes = rows.iter().any(|r| r.moves_bytes());
    let series: Vec<(&Row, Vec<(f64, f64)>)> = rows
        .iter()
        .map(|r| {
            let t = r.timeline.coarsened(limits::PLOT_BUCKETS_MAX);
            (*r, step_points(&t.rates(bytes, r.seconds), t.width_ms))
        })
        .collect();
    let x_max = series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x)).fold(0.0, f64::max).max(1e-3);
    let y_max = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).fold(0.0, f64::max).max(1e-3) * 1.15;
    let mut chart = builder(root, title).build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the phase started")
        .y_desc(if bytes { "MiB/s" } else { "operations/s" })
        .label_style((FONT, 14))
        .draw()?;
    for (r, points) in series {
        line(&mut chart, points, &r.target, targets)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// A step line through per-bucket rates: flat across each bucket.
fn step_points(rates: &[(f64, f64)], width_ms: u64) -> Vec<(f64, f64)> {
    let w = width_ms as f64 / 1000.0;
    let mut out = Vec::with_capacity(rates.len() * 2);
    for (i, &(end, rate)) in rates.iter().enumerate() {
        out.push((i as f64 * w, rate));
        out.push((end, rate));
    }
    out
}

fn latency<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    rows: &[&Row],
    targets: &[String],
) -> DrawResult<DB> {
    let ms = |us: u64| (us.max(1) as f64) / 1000.0;
    let all = || rows.iter().flat_map(|r| r.latency_cdf_us.iter().map(|(_, us)| ms(*us)));
    let lo = all().fold(f64::INFINITY, f64::min).min(1e6) / 1.5;
    let hi = all().fold(0.0, f64::max).max(lo * 10.0) * 1.5;
    let mut chart = builder(root, title).build_cartesian_2d((lo..hi).log_scale(), 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("latency, ms (log scale)")
        .y_desc("percent of requests at or below")
        .label_style((FONT, 14))
        .draw()?;
    for r in rows {
        let points: Vec<(f64, f64)> = r.latency_cdf_us.iter().map(|&(q, us)| (ms(us), q * 100.0)).collect();
        line(&mut chart, points, &r.target, targets)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn au<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    workloads: &[String],
    targets: &[String],
    rows: &[&Row],
) -> DrawResult<DB> {
    let groups = workloads.len().max(1) as f64;
    let mut chart = builder(root, "Accelerator utilisation (AU) per workload; line: MLPerf's bar")
        .build_cartesian_2d(0f64..groups, 0f64..AU_AXIS_PCT)?;
    chart.configure_mesh().disable_x_mesh().x_labels(0).y_desc("AU, percent").label_style((FONT, 14)).draw()?;
    let width = 0.8 / targets.len().max(1) as f64;
    for (ti, t) in targets.iter().enumerate() {
        let c = color(targets, t);
        let mut bars = Vec::new();
        let mut values = Vec::new();
        for (wi, w) in workloads.iter().enumerate() {
            if let Some(au) = rows.iter().find(|r| &r.workload == w && &r.target == t).and_then(|r| r.au_pct) {
                let x0 = wi as f64 + 0.1 + ti as f64 * width;
                bars.push(Rectangle::new([(x0, 0.0), (x0 + width * 0.9, au.min(AU_AXIS_PCT))], c.filled()));
                values.push((x0 + width * 0.45, au));
            }
        }
        chart
            .draw_series(bars)?
            .label(t.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        for (x, au) in values {
            let (px, py) = chart.backend_coord(&(x, au.min(AU_AXIS_PCT)));
            let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
            root.draw(&Text::new(format!("{au:.0}%"), (px, py - 3), style))?;
        }
    }
    for (wi, w) in workloads.iter().enumerate() {
        if let Some(bar) = rows.iter().find(|r| &r.workload == w).and_then(|r| r.au_threshold_pct) {
            let (x0, x1) = (wi as f64 + 0.05, wi as f64 + 0.95);
            chart.draw_series(std::iter::once(PathElement::new(vec![(x0, bar), (x1, bar)], BLACK.stroke_width(2))))?;
        }
        let (px, py) = chart.backend_coord(&(wi as f64 + 0.5, 0.0));
        let style = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(w.clone(), (px, py + 8), style))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_flat_across_each_bucket() {
        let p = step_points(&[(0.5, 2.0), (0.75, 4.0)], 500);
        assert_eq!(p, vec![(0.0, 2.0), (0.5, 2.0), (0.5, 4.0), (0.75, 4.0)]);
    }
}
