//! The PNG chart of the ratios (plotters, bitmap backend).
//!
//! Text goes through plotters' `ab_glyph` feature with a TrueType font read at run time
//! (DejaVu Sans or Liberation Sans from the Debian font packages, or `$BENCH_FONT`), so the
//! build needs no fontconfig/freetype. Without any font the bars are still drawn, unlabelled.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::MetricResult;
use crate::Res;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers a TTF as "sans-serif"; false when none could be loaded.
fn load_font() -> bool {
    let env = std::env::var("BENCH_FONT").ok();
    let candidates = env.iter().map(String::as_str).chain(FONT_PATHS.iter().copied());
    for path in candidates {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps a `&'static [u8]`; the font lives for the whole (short) process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

const GREEN: RGBColor = RGBColor(46, 160, 67);
const RED: RGBColor = RGBColor(214, 57, 57);
const BLUE: RGBColor = RGBColor(90, 130, 190);

/// One horizontal bar per metric: the ratio (> 1: edgebus better), a line at 1 and a
/// black tick at each target. Green: target met; red: missed; blue: no target.
pub(crate) fn draw(path: &Path, metrics: &[MetricResult], title: &str) -> Res<()> {
    let rows: Vec<&MetricResult> = metrics.iter().filter(|m| m.ratio.is_finite()).collect();
    let fonts = load_font();
    let height = 120 + 30 * rows.len() as u32;
    let root = BitMapBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    plot(&root, &rows, title, fonts).map_err(|e| format!("chart: {e}"))?;
    root.present()?;
    Ok(())
}

fn plot(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    rows: &[&MetricResult],
    title: &str,
    fonts: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let n = rows.len() as i32;
    let max = rows.iter().flat_map(|m| [m.ratio, m.target_ratio.unwrap_or(0.0)]).fold(1.5f64, f64::max);
    // Cap the axis at 3 so one outlier does not flatten every other bar; longer bars are cut
    // and carry their value inside, in white.
    let xmax = ((max * 1.1 * 4.0).ceil() / 4.0).min(3.0);
    let labels: Vec<String> = rows.iter().map(|m| m.label.clone()).collect();
    let mut builder = ChartBuilder::on(root);
    builder.margin(20);
    if fonts {
        builder.caption(title, ("sans-serif", 22)).x_label_area_size(40).y_label_area_size(330);
    }
    let mut chart = builder.build_cartesian_2d(0f64..xmax, (0..n).into_segmented())?;
    if fonts {
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(12)
            .light_line_style(RGBColor(238, 238, 238))
            .y_labels(rows.len() + 1)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get((n - 1 - *i) as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc(
                "ratio (> 1: edgebus better; throughput edgebus/nats-server, latency and memory nats-server/edgebus)",
            )
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
    }
    // Row 0 is drawn at the bottom; list the metrics top-down in table order.
    for (idx, m) in rows.iter().enumerate() {
        let y = n - 1 - idx as i32;
        let color = match m.met {
            Some(true) => GREEN,
            Some(false) => RED,
            None => BLUE,
        };
        let mut bar = Rectangle::new(
            [(0.0, SegmentValue::Exact(y)), (m.ratio.min(xmax), SegmentValue::Exact(y + 1))],
            color.filled(),
        );
        bar.set_margin(4, 4, 0, 0);
        chart.draw_series(std::iter::once(bar))?;
        // the 90% interval of the paired ratio as a whisker through the bar's middle
        if let Some((lo, hi)) = m.ratio_interval.filter(|(lo, hi)| lo.is_finite() && hi.is_finite() && hi > lo) {
            let mut whisker = Rectangle::new(
                [(lo.min(xmax), SegmentValue::Exact(y)), (hi.min(xmax), SegmentValue::Exact(y + 1))],
                BLACK.stroke_width(1),
            );
            whisker.set_margin(12, 12, 0, 0);
            chart.draw_series(std::iter::once(whisker))?;
        }
        if let Some(t) = m.target_ratio {
            let mut tick = Rectangle::new(
                [(t - xmax / 400.0, SegmentValue::Exact(y)), (t + xmax / 400.0, SegmentValue::Exact(y + 1))],
                BLACK.filled(),
            );
            tick.set_margin(1, 1, 0, 0);
            chart.draw_series(std::iter::once(tick))?;
        }
        if fonts {
            let (x, color, anchor) = if m.ratio > xmax {
                (xmax - xmax / 150.0, WHITE, HPos::Right)
            } else {
                (m.ratio + xmax / 150.0, BLACK, HPos::Left)
            };
            chart.draw_series(std::iter::once(Text::new(
                format!("{:.2}", m.ratio),
                (x, SegmentValue::CenterOf(y)),
                ("sans-serif", 14).into_font().color(&color).pos(Pos::new(anchor, VPos::Center)),
            )))?;
        }
    }
    // The parity line at 1.
    chart.draw_series(std::iter::once(Rectangle::new(
        [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
        BLACK.stroke_width(1),
    )))?;
    Ok(())
}
