//! Charts as inline SVG drawn on the server: no script, no external request, and readable
//! in print (every bar and point carries its number; colours are never the only cue).

use maud::{Markup, html};

const WIDTH: f64 = 640.0;

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// A bar of a bar chart: a label, a value in 0..100 (None: withheld, with a note) and an
/// optional interval.
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub ci: Option<[f64; 2]>,
    pub note: String,
}

/// Horizontal bars on a 0–100 scale, with an optional reference line (the province).
pub fn bars(title: &str, rows: &[Bar], reference: Option<(&str, f64)>) -> Markup {
    let label_w = 220.0;
    let plot_w = WIDTH - label_w - 60.0;
    let row_h = 26.0;
    let height = row_h * rows.len() as f64 + 34.0;
    let x = |v: f64| label_w + plot_w * v.clamp(0.0, 100.0) / 100.0;
    html! { div.chartbox {
        svg.chart viewBox={"0 0 " (WIDTH) " " (height)} role="img" aria-label=(title) {
            title { (title) }
            @for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
                line x1=(x(tick)) x2=(x(tick)) y1="0" y2=(height - 24.0) stroke="#d0d5db" stroke-width="1" {}
                text x=(x(tick)) y=(height - 8.0) font-size="11" text-anchor="middle" fill="#333" { (tick) }
            }
            @for (i, r) in rows.iter().enumerate() {
                @let y = i as f64 * row_h + 4.0;
                text x=(label_w - 6.0) y=(y + 14.0) font-size="12" text-anchor="end" fill="#111" { (truncate(&r.label, 34)) }
                @if let Some(v) = r.value {
                    rect x=(label_w) y=(y) width=(x(v) - label_w) height="16" fill="#2f6fb0" {}
                    @if let Some([lo, hi]) = r.ci {
                        line x1=(x(lo)) x2=(x(hi)) y1=(y + 8.0) y2=(y + 8.0) stroke="#111" stroke-width="1.5" {}
                    }
                    text x=(x(v) + 4.0) y=(y + 13.0) font-size="11" fill="#111" { (fmt(v)) }
                } @else {
                    text x=(label_w + 4.0) y=(y + 13.0) font-size="11" fill="#555" font-style="italic" { (r.note) }
                }
            }
            @if let Some((name, v)) = reference {
                line x1=(x(v)) x2=(x(v)) y1="0" y2=(height - 24.0) stroke="#b3261e" stroke-width="2" stroke-dasharray="5 3" {}
                text x=(x(v) + 3.0) y="10" font-size="10" fill="#b3261e" { (name) " " (fmt(v)) }
            }
        }
    } }
}

/// A line over periods, with gaps where a period is withheld.
pub fn line(title: &str, points: &[(String, Option<f64>)]) -> Markup {
    let (left, right, top, bottom) = (40.0, 20.0, 14.0, 40.0);
    let height = 220.0;
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let values: Vec<f64> = points.iter().filter_map(|p| p.1).collect();
    let lo = values.iter().copied().fold(100.0, f64::min).min(100.0);
    let floor = ((lo - 5.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0;
    let x =
        |i: usize| left + if points.len() > 1 { plot_w * i as f64 / (points.len() - 1) as f64 } else { plot_w / 2.0 };
    let y = |v: f64| top + plot_h * (1.0 - (v - floor) / (100.0 - floor));
    let mut path = String::new();
    let mut pen_down = false;
    for (i, (_, v)) in points.iter().enumerate() {
        match v {
            Some(v) => {
                path.push_str(&format!("{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x(i), y(*v)));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let every = points.len().div_ceil(12).max(1);
    html! { div.chartbox {
        svg.chart viewBox={"0 0 " (WIDTH) " " (height)} role="img" aria-label=(title) {
            title { (title) }
            @for step in 0..=4 {
                @let v = floor + (100.0 - floor) * step as f64 / 4.0;
                line x1=(left) x2=(WIDTH - right) y1=(y(v)) y2=(y(v)) stroke="#d0d5db" stroke-width="1" {}
                text x=(left - 4.0) y=(y(v) + 4.0) font-size="11" text-anchor="end" fill="#333" { (v) }
            }
            path d=(path) fill="none" stroke="#2f6fb0" stroke-width="2.5" {}
            @for (i, (label, v)) in points.iter().enumerate() {
                @if let Some(v) = v {
                    circle cx=(x(i)) cy=(y(*v)) r="3.5" fill="#2f6fb0" {}
                    text x=(x(i)) y=(y(*v) - 7.0) font-size="10" text-anchor="middle" fill="#111" { (fmt(*v)) }
                }
                @if i % every == 0 {
                    text x=(x(i)) y=(height - bottom + 16.0) font-size="10" text-anchor="middle" fill="#333" { (label) }
                }
            }
        }
    } }
}

/// Fills for the levels of a 5-point scale, from very dissatisfied to very satisfied.
const LEVEL_FILLS: [&str; 5] = ["#8c1d18", "#d9745f", "#c9c9c9", "#7aa6d6", "#1f5c99"];

/// One stacked bar per item: the share of answers at each level, with a legend.
pub fn distribution(title: &str, rows: &[(String, Vec<u64>)], legend: &[String]) -> Markup {
    let label_w = 60.0;
    let plot_w = WIDTH - label_w - 10.0;
    let row_h = 20.0;
    let height = row_h * rows.len() as f64 + 40.0;
    // (x, width, share, level) of every segment, row by row.
    let segments: Vec<Vec<(f64, f64, f64, usize)>> = rows
        .iter()
        .map(|(_, counts)| {
            let total: u64 = counts.iter().sum();
            let mut start = label_w;
            counts
                .iter()
                .enumerate()
                .filter(|_| total > 0)
                .map(|(level, c)| {
                    let share = *c as f64 / total as f64;
                    let seg = (start, plot_w * share, share, level.min(4));
                    start += plot_w * share;
                    seg
                })
                .collect()
        })
        .collect();
    html! { div.chartbox {
        svg.chart viewBox={"0 0 " (WIDTH) " " (height)} role="img" aria-label=(title) {
            title { (title) }
            @for (i, ((label, _), segs)) in rows.iter().zip(&segments).enumerate() {
                @let y = i as f64 * row_h + 2.0;
                text x=(label_w - 6.0) y=(y + 13.0) font-size="11" text-anchor="end" fill="#111" { (label) }
                @if segs.is_empty() {
                    text x=(label_w + 4.0) y=(y + 13.0) font-size="11" fill="#555" font-style="italic" { "—" }
                }
                @for (x, w, share, level) in segs {
                    rect x=(x) y=(y) width=(w) height="16" fill=(LEVEL_FILLS[*level]) stroke="#fff" stroke-width="0.5" {}
                    @if *w > 24.0 {
                        text x=(x + w / 2.0) y=(y + 12.0) font-size="10" text-anchor="middle" fill=(if *level == 2 { "#111" } else { "#fff" }) {
                            (format!("{:.0}%", 100.0 * share))
                        }
                    }
                }
            }
            @for (level, name) in legend.iter().enumerate() {
                @let lx = label_w + (plot_w / legend.len().max(1) as f64) * level as f64;
                rect x=(lx) y=(height - 30.0) width="12" height="12" fill=(LEVEL_FILLS[level.min(4)]) {}
                text x=(lx + 16.0) y=(height - 20.0) font-size="10" fill="#111" { (level + 1) " " (truncate(name, 20)) }
            }
        }
    } }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}
