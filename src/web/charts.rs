//! Charts as inline SVG drawn on the server: no script, no external request, and readable
//! in print (every bar and point carries its number; colours are never the only cue).
//!
//! Drawn for phones first: a narrow viewBox (`WIDTH` user units) that the page scales to its
//! width (CSS caps it, so text stays between about 10 px at a 320 px phone and 1.4× on a
//! laptop). Every label has a place of its own, so none meets another or a whisker: a bar's
//! name on the line above it, its value in a column right of the plot, a reference's value
//! in a header row or on the line below the bar; a line chart's values alternate above and
//! below the points when neighbours would touch.

use maud::{Markup, html};

const WIDTH: f64 = 340.0;
/// Names and legends; values and axis ticks are a little smaller.
const FONT: f64 = 12.0;
const SMALL: f64 = 11.5;
const PAD: f64 = 4.0;
const BAR: &str = "#2f6fb0";
const REFERENCE: &str = "#b3261e";

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// A generous estimate of the width of a text in user units (DejaVu Sans, the widest of
/// the usual fonts): what truncation and placement go by.
fn text_width(s: &str, size: f64) -> f64 {
    let em: f64 = s
        .chars()
        .map(|c| match c {
            '0'..='9' => 0.64,
            '.' | ',' | ':' | ' ' | 'i' | 'l' | 'j' | 'I' | '(' | ')' => 0.36,
            '%' | 'm' | 'w' | 'M' | 'W' => 0.95,
            c if c.is_uppercase() => 0.74,
            _ => 0.6,
        })
        .sum();
    em * size
}

/// `s`, cut with an ellipsis to fit `room` user units at `size`.
fn fit(s: &str, size: f64, room: f64) -> String {
    if text_width(s, size) <= room {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        out.push(c);
        if text_width(&out, size) + text_width("…", size) > room {
            out.pop();
            break;
        }
    }
    format!("{}…", out.trim_end())
}

/// A bar of a bar chart: a label, a value in 0..100 (None: withheld, with a note) and an
/// optional interval.
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub ci: Option<[f64; 2]>,
    pub note: String,
}

/// What the bars are measured against.
enum Against<'a> {
    Nothing,
    /// One value for every bar (the province's SIPAS against its units).
    All(&'a str, f64),
    /// A value per bar (the province's value for the same element); None when withheld,
    /// with the note to show instead.
    Each(&'a str, &'a [Option<f64>], &'a str),
}

/// Horizontal bars on a 0–100 scale, with an optional reference (the province) drawn on
/// every bar.
pub fn bars(title: &str, rows: &[Bar], reference: Option<(&str, f64)>) -> Markup {
    match reference {
        Some((name, v)) => bar_chart(title, rows, Against::All(name, v)),
        None => bar_chart(title, rows, Against::Nothing),
    }
}

/// Bars each compared with its own reference value: a mark on the bar and the value on the
/// line below it (`withheld` when the reference is suppressed).
pub fn bars_against(title: &str, rows: &[Bar], name: &str, references: &[Option<f64>], withheld: &str) -> Markup {
    bar_chart(title, rows, Against::Each(name, references, withheld))
}

fn bar_chart(title: &str, rows: &[Bar], against: Against) -> Markup {
    let (x0, x1) = (PAD, WIDTH - 50.0);
    let x = |v: f64| x0 + (x1 - x0) * v.clamp(0.0, 100.0) / 100.0;
    let header = if matches!(against, Against::All(..)) { 20.0 } else { 4.0 };
    let row_h = if matches!(against, Against::Each(..)) { 52.0 } else { 36.0 };
    let height = header + row_h * rows.len() as f64 + 18.0;
    let ticks = [0.0, 25.0, 50.0, 75.0, 100.0];
    html! { div.chartbox {
        svg.chart viewBox={"0 0 " (WIDTH) " " (height)} role="img" aria-label=(title) {
            title { (title) }
            @if let Against::All(name, v) = against {
                @let text = format!("{name} {}", fmt(v));
                @let half = text_width(&text, SMALL) / 2.0;
                text x=(x(v).clamp(PAD + half, WIDTH - PAD - half)) y="13" font-size=(SMALL) text-anchor="middle" fill=(REFERENCE) { (text) }
            }
            @for (i, r) in rows.iter().enumerate() {
                @let y = header + i as f64 * row_h;
                text x=(PAD) y=(y + 12.0) font-size=(FONT) fill="#111" { (fit(&r.label, FONT, WIDTH - 2.0 * PAD)) }
                @for tick in ticks {
                    line x1=(x(tick)) x2=(x(tick)) y1=(y + 17.0) y2=(y + 31.0) stroke="#d0d5db" stroke-width="1" {}
                }
                @if let Some(v) = r.value {
                    rect x=(x0) y=(y + 17.0) width=(x(v) - x0) height="14" fill=(BAR) data-value=(fmt(v)) {}
                    @if let Some([lo, hi]) = r.ci {
                        line.whisker x1=(x(lo)) x2=(x(hi)) y1=(y + 24.0) y2=(y + 24.0) stroke="#111" stroke-width="1.5" {}
                    }
                    text x=(WIDTH - PAD) y=(y + 28.5) font-size=(SMALL) text-anchor="end" fill="#111" font-weight="600" { (fmt(v)) }
                } @else {
                    text x=(x0 + 2.0) y=(y + 28.5) font-size=(SMALL) fill="#555" font-style="italic" { (r.note) }
                }
                @match against {
                    Against::All(_, v) => {
                        line.reference x1=(x(v)) x2=(x(v)) y1=(y + 15.5) y2=(y + 32.5) stroke=(REFERENCE) stroke-width="2" stroke-dasharray="3 2" {}
                    }
                    Against::Each(name, refs, withheld) => {
                        @match refs.get(i).copied().flatten() {
                            Some(v) => {
                                line.marker x1=(x(v)) x2=(x(v)) y1=(y + 15.5) y2=(y + 32.5) stroke=(REFERENCE) stroke-width="3" data-reference=(fmt(v)) {}
                                text x=(PAD) y=(y + 46.0) font-size=(SMALL) fill=(REFERENCE) { (name) ": " (fmt(v)) }
                            }
                            None => {
                                text x=(PAD) y=(y + 46.0) font-size=(SMALL) fill="#555" font-style="italic" { (name) ": " (withheld) }
                            }
                        }
                    }
                    Against::Nothing => {}
                }
            }
            @for tick in ticks {
                @let anchor = if tick == 0.0 { "start" } else if tick == 100.0 { "end" } else { "middle" };
                text x=(x(tick)) y=(height - 5.0) font-size=(SMALL) text-anchor=(anchor) fill="#333" { (tick) }
            }
        }
    } }
}

/// A point of a line chart; `mark` is drawn where the value is missing, and the page
/// explains it under the chart.
pub struct Point {
    pub label: String,
    pub value: Option<f64>,
    pub mark: &'static str,
}

/// The axis label of a period: the month's number for `2024-03` (the year under the first
/// point and under each January), the label itself otherwise.
fn axis_label(label: &str, first: bool) -> (String, Option<String>) {
    match label.split_once('-') {
        Some((year, month)) if month.len() == 2 && month.chars().all(|c| c.is_ascii_digit()) => {
            let m = month.trim_start_matches('0').to_string();
            let year = (first || m == "1").then(|| year.to_string());
            (m, year)
        }
        _ => (label.to_string(), None),
    }
}

/// Gridlines of a line chart from 100 down to `floor` (a multiple of 10): every 10 points,
/// or every 20 over a wide range, so tick labels stay whole numbers that fit the margin.
fn grid(floor: f64) -> Vec<f64> {
    let step = if 100.0 - floor <= 50.0 { 10.0 } else { 20.0 };
    (0..=10).map(|j| 100.0 - step * f64::from(j)).take_while(|v| *v >= floor - 1e-9).collect()
}

/// A line over periods, with gaps (and their marks) where a period has no value, and a
/// dashed rule before each point in `breaks` (where the series changes what it adds up).
pub fn line(title: &str, points: &[Point], breaks: &[usize]) -> Markup {
    let (left, right, top, height) = (26.0, 4.0, 20.0, 190.0);
    let bottom = height - 38.0;
    let inset = 13.0;
    let values: Vec<f64> = points.iter().filter_map(|p| p.value).collect();
    let lo = values.iter().copied().fold(100.0, f64::min);
    let floor = ((lo - 5.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0;
    let span = WIDTH - left - right - 2.0 * inset;
    let step = if points.len() > 1 { span / (points.len() - 1) as f64 } else { span };
    let x = |i: usize| left + inset + if points.len() > 1 { step * i as f64 } else { span / 2.0 };
    // The lowest value stays 18 units above the axis, room for a label below it.
    let y = |v: f64| top + (bottom - 18.0 - top) * (1.0 - (v - floor) / (100.0 - floor));
    let mut path = String::new();
    let mut pen_down = false;
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => {
                path.push_str(&format!("{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x(i), y(v)));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    // Value labels: above every point when neighbours leave room, else alternately above and
    // below; a label that would still touch the previous one on its side is left out (only
    // with more than a dozen points).
    let widest = points.iter().filter_map(|p| p.value).map(|v| text_width(&fmt(v), SMALL)).fold(0.0, f64::max);
    let alternate = step < widest + 6.0;
    let mut last_end = [f64::MIN, f64::MIN];
    let labels: Vec<Option<(f64, bool)>> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let v = p.value?;
            let below = alternate && i % 2 == 1;
            let half = text_width(&fmt(v), SMALL) / 2.0;
            let side = usize::from(below);
            if x(i) - half < last_end[side] + 2.0 {
                return None;
            }
            last_end[side] = x(i) + half;
            Some((if below { y(v) + 17.0 } else { y(v) - 8.0 }, below))
        })
        .collect();
    let axis: Vec<(String, Option<String>)> =
        points.iter().enumerate().map(|(i, p)| axis_label(&p.label, i == 0)).collect();
    let widest_axis = axis.iter().map(|(a, _)| text_width(a, SMALL)).fold(0.0, f64::max);
    let every = ((widest_axis + 4.0) / step).ceil().max(1.0) as usize;
    html! { div.chartbox {
        svg.chart viewBox={"0 0 " (WIDTH) " " (height)} role="img" aria-label=(title) {
            title { (title) }
            @for v in grid(floor) {
                line x1=(left) x2=(WIDTH - right) y1=(y(v)) y2=(y(v)) stroke="#d0d5db" stroke-width="1" {}
                text x=(left - 3.0) y=(y(v) + 4.0) font-size=(SMALL) text-anchor="end" fill="#333" { (v) }
            }
            @for i in breaks.iter().filter(|i| **i < points.len()) {
                @let bx = if *i == 0 { x(0) - inset / 2.0 } else { (x(*i) + x(i - 1)) / 2.0 };
                line x1=(bx) x2=(bx) y1=(top - 6.0) y2=(bottom) stroke="#b07a00" stroke-width="1.5" stroke-dasharray="4 3" data-break=(points[*i].label) {}
            }
            path d=(path) fill="none" stroke=(BAR) stroke-width="2.5" {}
            @for (i, p) in points.iter().enumerate() {
                @if let Some(v) = p.value {
                    circle cx=(x(i)) cy=(y(v)) r="3.5" fill=(BAR) {}
                    @if let Some((ly, _)) = labels[i] {
                        text x=(x(i)) y=(ly) font-size=(SMALL) text-anchor="middle" fill="#111" { (fmt(v)) }
                    }
                } @else {
                    text x=(x(i)) y=(y(floor) - 5.0) font-size=(FONT) text-anchor="middle" fill="#555" data-missing=(p.label) { (p.mark) }
                }
                @if i % every == 0 {
                    text x=(x(i)) y=(bottom + 14.0) font-size=(SMALL) text-anchor="middle" fill="#333" { (axis[i].0) }
                }
                @if let Some(year) = &axis[i].1 {
                    text x=(x(i)) y=(bottom + 29.0) font-size=(SMALL) text-anchor="middle" fill="#333" { (year) }
                }
            }
        }
    } }
}

/// Fills for the levels of a 5-point scale, from very dissatisfied to very satisfied, and
/// the text that reads on each (contrast of at least 4.5:1).
const LEVEL_FILLS: [(&str, &str); 5] =
    [("#8c1d18", "#fff"), ("#d9745f", "#111"), ("#c9c9c9", "#111"), ("#7aa6d6", "#111"), ("#1f5c99", "#fff")];

/// One stacked bar per item: the share of answers at each level, with a legend.
pub fn distribution(title: &str, rows: &[(String, Vec<u64>)], legend: &[String]) -> Markup {
    let label_w = rows.iter().map(|(l, _)| text_width(l, SMALL)).fold(0.0, f64::max).min(WIDTH * 0.3) + 2.0 * PAD + 1.0;
    let plot_w = WIDTH - label_w - PAD;
    let row_h = 20.0;
    let legend_rows = legend.len().div_ceil(2);
    let legend_top = row_h * rows.len() as f64 + 8.0;
    let height = legend_top + 18.0 * legend_rows as f64 + 4.0;
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
    let column = (WIDTH - 2.0 * PAD) / 2.0;
    html! { div.chartbox {
        svg.chart viewBox={"0 0 " (WIDTH) " " (height)} role="img" aria-label=(title) {
            title { (title) }
            @for (i, ((label, _), segs)) in rows.iter().zip(&segments).enumerate() {
                @let y = i as f64 * row_h + 2.0;
                text x=(label_w - PAD) y=(y + 13.0) font-size=(SMALL) text-anchor="end" fill="#111" { (fit(label, SMALL, label_w - 2.0 * PAD)) }
                @if segs.is_empty() {
                    text x=(label_w + PAD) y=(y + 13.0) font-size=(SMALL) fill="#555" font-style="italic" { "—" }
                }
                @for (x, w, share, level) in segs {
                    @let (fill, ink) = LEVEL_FILLS[*level];
                    @let pct = format!("{:.0}%", 100.0 * share);
                    rect x=(x) y=(y) width=(w) height="17" fill=(fill) stroke="#fff" stroke-width="0.5" {}
                    @if *w >= text_width(&pct, SMALL) + 4.0 {
                        text x=(x + w / 2.0) y=(y + 12.5) font-size=(SMALL) text-anchor="middle" fill=(ink) { (pct) }
                    }
                }
            }
            @for (level, name) in legend.iter().enumerate() {
                @let lx = PAD + column * (level % 2) as f64;
                @let ly = legend_top + 18.0 * (level / 2) as f64;
                @let text = format!("{} {}", level + 1, name);
                rect x=(lx) y=(ly + 2.0) width="11" height="11" fill=(LEVEL_FILLS[level.min(4)].0) {}
                text x=(lx + 15.0) y=(ly + 12.0) font-size=(FONT) fill="#111" { (fit(&text, FONT, column - 19.0)) }
            }
        }
    } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_labels_are_cut_to_their_room_and_short_ones_kept() {
        let long = "E Tiếp nhận, giải quyết góp ý, phản ánh, kiến nghị của người dân";
        let cut = fit(long, FONT, 200.0);
        assert!(cut.ends_with('…') && text_width(&cut, FONT) <= 200.0 + 1e-9, "{cut}");
        assert_eq!(fit("A1", FONT, 200.0), "A1");
    }

    #[test]
    fn gridlines_are_whole_tens_or_twenties_down_to_the_floor() {
        assert_eq!(grid(50.0), [100.0, 90.0, 80.0, 70.0, 60.0, 50.0]);
        assert_eq!(grid(30.0), [100.0, 80.0, 60.0, 40.0]);
        assert_eq!(grid(0.0), [100.0, 80.0, 60.0, 40.0, 20.0, 0.0]);
    }

    #[test]
    fn months_are_labelled_by_number_with_the_year_where_it_changes() {
        assert_eq!(axis_label("2024-03", true), ("3".into(), Some("2024".into())));
        assert_eq!(axis_label("2024-04", false), ("4".into(), None));
        assert_eq!(axis_label("2025-01", false), ("1".into(), Some("2025".into())));
        assert_eq!(axis_label("2024-Q1", false), ("2024-Q1".into(), None));
    }
}
