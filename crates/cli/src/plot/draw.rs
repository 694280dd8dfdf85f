//! Drawing a [`Figure`] as SVG with plotters.
//!
//! Encoding, the same in every figure (and relied on by the tests that count elements):
//! a simulated mean is a filled circle of radius [`POINT_RADIUS`] with a vertical ±2 SE
//! bar; an exact conditional mean is a hollow square of side [`EXACT_SIDE`]; a theory line
//! is a polyline of width [`THEORY_WIDTH`] (nothing else is drawn that wide). Each series
//! has one colour; the legend below the panels lists the series and the three marks.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::format_number;
use super::figure::{Figure, Panel};

/// Radius of a simulated mean's marker.
pub const POINT_RADIUS: i32 = 3;
/// Side of an exact mean's square.
pub const EXACT_SIDE: i32 = 6;
/// Stroke width of theory lines.
pub const THEORY_WIDTH: u32 = 2;

/// Series colours (the Tableau 10 palette, distinguishable in print and on screen).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The series colours as RGB triples.
pub fn palette() -> Vec<(u8, u8, u8)> {
    PALETTE.iter().map(|c| (c.0, c.1, c.2)).collect()
}

/// The colour of legend entry `k`.
pub fn colour(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

const TITLE_SIZE: f64 = 22.0;
const LABEL_SIZE: f64 = 17.0;
const TICK_SIZE: f64 = 15.0;
const LEGEND_SIZE: f64 = 16.0;
const LEGEND_ROW: i32 = 22;

fn text_width(text: &str, size: f64) -> i32 {
    ("sans-serif", size).into_font().box_size(text).map(|(w, _)| w as i32).unwrap_or(8 * text.chars().count() as i32)
}

/// Legend entries: (kind, label) with kind 0 = series colour k, 1 = mean, 2 = exact, 3 = theory.
fn legend_entries(f: &Figure) -> Vec<(i32, usize, String)> {
    let mut out = Vec::new();
    if f.legend.len() > 1 || f.legend.first().is_some_and(|l| !l.is_empty()) {
        out.extend(f.legend.iter().enumerate().map(|(k, l)| (0, k, l.clone())));
    }
    out.push((1, 0, "simulation mean ± 2 SE".to_string()));
    if f.has_exact {
        out.push((2, 0, "exact conditional mean".to_string()));
    }
    if f.has_theory {
        out.push((3, 0, if f.dense_theory { "theory".to_string() } else { "theory (through the grid)".to_string() }));
    }
    out
}

/// Lay the legend out in rows of `width` pixels: per entry its (x, row).
fn legend_layout(entries: &[(i32, usize, String)], width: i32) -> (Vec<(i32, i32)>, i32) {
    let mut pos = Vec::new();
    let (mut x, mut row) = (20, 0);
    for (_, _, label) in entries {
        let w = 34 + text_width(label, LEGEND_SIZE) + 22;
        if x + w > width - 10 && x > 20 {
            x = 20;
            row += 1;
        }
        pos.push((x, row));
        x += w;
    }
    (pos, row + 1)
}

/// Height of the title band, and the padding below the legend (pixels).
const TITLE_H: u32 = 44;
const LEGEND_PAD: u32 = 16;

/// The panel grid: (rows, columns) for a figure's panels.
fn grid(f: &Figure) -> (usize, usize) {
    let n = f.panels.len().max(1);
    let cols = match n {
        1..=3 => n,
        4 => 2,
        _ => 3,
    };
    (n.div_ceil(cols), cols)
}

/// The figure's size in pixels.
pub fn size(f: &Figure) -> (u32, u32) {
    let (rows, cols) = grid(f);
    let width = if cols == 1 { 820 } else { 1000 };
    let panel_h = if f.panels.len() <= 1 { 480 } else { 340 };
    let (_, legend_rows) = legend_layout(&legend_entries(f), width as i32);
    (width, TITLE_H + rows as u32 * panel_h + legend_rows as u32 * LEGEND_ROW as u32 + LEGEND_PAD)
}

/// The figure as an SVG document.
pub fn svg(f: &Figure) -> anyhow::Result<String> {
    super::raster::register_font();
    let (width, height) = size(f);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw(&root, f).map_err(|e| anyhow::anyhow!("cannot draw figure {}: {e}", f.name))?;
        root.present().map_err(|e| anyhow::anyhow!("cannot draw figure {}: {e}", f.name))?;
    }
    Ok(out)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &Figure) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (width, height) = root.dim_in_pixel();
    let entries = legend_entries(f);
    let (positions, legend_rows) = legend_layout(&entries, width as i32);
    let legend_h = legend_rows * LEGEND_ROW + LEGEND_PAD as i32;
    let (top, rest) = root.split_vertically(TITLE_H);
    let (body, legend) = rest.split_vertically(height as i32 - TITLE_H as i32 - legend_h);
    top.draw(&Text::new(
        f.title.clone(),
        (width as i32 / 2, 12),
        ("sans-serif", TITLE_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let areas = body.split_evenly(grid(f));
    for (panel, area) in f.panels.iter().zip(&areas) {
        draw_panel(area, f, panel)?;
    }
    for ((kind, k, label), (x, row)) in entries.iter().zip(&positions) {
        let y = 10 + row * LEGEND_ROW + LEGEND_ROW / 2;
        let sample = (x + 14, y);
        match kind {
            0 => legend.draw(&Rectangle::new([(x + 4, y - 6), (x + 24, y + 6)], colour(*k).filled()))?,
            1 => {
                legend.draw(&PathElement::new(vec![(sample.0, y - 8), (sample.0, y + 8)], BLACK.stroke_width(1)))?;
                legend.draw(&Circle::new(sample, POINT_RADIUS + 1, BLACK.filled()))?;
            }
            2 => legend.draw(&Rectangle::new([(sample.0 - 4, y - 4), (sample.0 + 4, y + 4)], BLACK.stroke_width(1)))?,
            _ => legend.draw(&Rectangle::new([(x + 2, y - 1), (x + 26, y + 1)], BLACK.filled()))?,
        }
        legend.draw(&Text::new(
            label.clone(),
            (x + 34, y),
            ("sans-serif", LEGEND_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// The data range of a panel on one axis, padded; geometric on a log axis.
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        if hi / lo < 1.0 + 1e-9 {
            (lo, hi) = (lo / 2.0, hi * 2.0);
        }
        let pad = (hi / lo).powf(0.04);
        (lo / pad, hi * pad)
    } else {
        if hi - lo <= 1e-12 * hi.abs().max(1.0) {
            let d = if hi == 0.0 { 1.0 } else { 0.1 * hi.abs() };
            (lo, hi) = (lo - d, hi + d);
        }
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &Figure, panel: &Panel) -> DrawResult<DB> {
    let xs = panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.x).chain(s.theory.iter().map(|t| t.0)));
    let (x0, x1) = range(xs.collect::<Vec<_>>().into_iter(), f.log_x);
    let ys = panel.series.iter().flat_map(|s| {
        s.points
            .iter()
            .flat_map(|p| [Some(p.mean), p.low, p.high, p.exact])
            .flatten()
            .chain(s.theory.iter().map(|t| t.1))
    });
    let (y0, y1) = range(ys.collect::<Vec<_>>().into_iter(), f.log_y);
    let mut builder = ChartBuilder::on(area);
    builder.margin(10).margin_right(18).x_label_area_size(46).y_label_area_size(70);
    if !panel.title.is_empty() {
        builder.caption(panel.title.clone(), ("sans-serif", LABEL_SIZE));
    }
    match (f.log_x, f.log_y) {
        (false, false) => fill(builder.build_cartesian_2d(x0..x1, y0..y1)?, f, panel),
        (true, false) => fill(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?, f, panel),
        (false, true) => fill(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?, f, panel),
        (true, true) => fill(builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?, f, panel),
    }
}

fn fill<DB, X, Y>(mut chart: ChartContext<'_, DB, Cartesian2d<X, Y>>, f: &Figure, panel: &Panel) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let tick = |v: &f64| format_number(significant(*v));
    chart
        .configure_mesh()
        .x_desc(f.x_label.clone())
        .y_desc(f.y_label.clone())
        .axis_desc_style(("sans-serif", LABEL_SIZE))
        .label_style(("sans-serif", TICK_SIZE))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_labels(7)
        .y_labels(7)
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    for s in &panel.series {
        let c = colour(s.key);
        if s.theory.len() >= 2 {
            chart.draw_series(std::iter::once(PathElement::new(s.theory.clone(), c.stroke_width(THEORY_WIDTH))))?;
        }
        for p in &s.points {
            if let (Some(lo), Some(hi)) = (p.low, p.high) {
                let lo = if f.log_y && lo <= 0.0 { p.mean / 10.0 } else { lo };
                let bar = c.stroke_width(1);
                chart.draw_series([
                    EmptyElement::at((p.x, lo)) + PathElement::new(vec![(-3, 0), (3, 0)], bar),
                    EmptyElement::at((p.x, hi)) + PathElement::new(vec![(-3, 0), (3, 0)], bar),
                ])?;
                // A bar shorter than a pixel is only its caps (a zero-length line has no stroke).
                if chart.backend_coord(&(p.x, lo)).1 != chart.backend_coord(&(p.x, hi)).1 {
                    chart.draw_series(std::iter::once(PathElement::new(vec![(p.x, lo), (p.x, hi)], bar)))?;
                }
            }
            if let Some(e) = p.exact {
                let h = EXACT_SIDE / 2;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((p.x, e)) + Rectangle::new([(-h, -h), (h, h)], c.stroke_width(1)),
                ))?;
            }
            chart.draw_series(std::iter::once(Circle::new((p.x, p.mean), POINT_RADIUS, c.filled())))?;
        }
    }
    Ok(())
}

/// A tick value rounded to 10 significant digits, so that 0.30000000000000004 reads 0.3.
fn significant(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(9 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}
