//! Server-side SVG charts for the dashboard: horizontal bar charts (stacked, with an optional
//! marker per bar) and a stacked column chart. The output is plain inline SVG, with no script
//! and no external asset, so it passes the dashboard's content security policy. Every string is
//! escaped here; callers pass text as it is.

use std::fmt::Write;

/// Escapes text for HTML (and SVG) element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `n` with thousands separators, e.g. `1,234,567`.
pub(crate) fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in the largest unit that keeps it readable: `850 ms`, `42 s`, `12 min`, `5.2 h`,
/// `3.4 d`; negative durations keep their sign.
pub(crate) fn duration(ms: i64) -> String {
    const MINUTE: f64 = 60_000.0;
    const HOUR: f64 = 60.0 * MINUTE;
    const DAY: f64 = 24.0 * HOUR;
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs() as f64;
    let text = if abs < 1_000.0 {
        format!("{abs} ms")
    } else if abs < MINUTE {
        format!("{:.0} s", abs / 1_000.0)
    } else if abs < HOUR {
        format!("{:.0} min", abs / MINUTE)
    } else if abs < DAY {
        format!("{:.1} h", abs / HOUR)
    } else {
        format!("{:.1} d", abs / DAY)
    };
    format!("{sign}{text}")
}

/// One series of a chart: a name for the legend and a fill colour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Series {
    /// Legend text.
    pub name: &'static str,
    /// SVG fill colour.
    pub color: &'static str,
}

/// One horizontal bar: its parts (one value per series, stacked left to right), an optional
/// marker drawn across it, and a note printed after it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bar {
    /// Text left of the bar.
    pub label: String,
    /// One value per series of the chart.
    pub values: Vec<f64>,
    /// A value marked by a vertical tick (e.g. a 95th percentile).
    pub marker: Option<f64>,
    /// Text right of the bar.
    pub note: String,
    /// Whether the label and the note are drawn as an alert (red, bold).
    pub alert: bool,
}

/// A horizontal bar chart, one bar per row, on one linear scale from zero.
#[derive(Debug, Clone)]
pub(crate) struct BarChart<'a> {
    /// Element id of the `<svg>`.
    pub id: &'a str,
    /// Accessible title.
    pub title: &'a str,
    /// The series, in stacking order.
    pub series: &'a [Series],
    /// The bars, top to bottom.
    pub bars: Vec<Bar>,
    /// Shown instead of bars when there are none.
    pub empty: &'a str,
}

/// Width of every chart's view box.
const WIDTH: f64 = 600.0;
/// Where bars start (labels end just left of it).
const BAR_X: f64 = 140.0;
/// Longest bar.
const BAR_W: f64 = 210.0;
/// Height of one bar row.
const ROW_H: f64 = 26.0;
/// Height of the legend line.
const LEGEND_H: f64 = 22.0;
/// Longest label drawn in full, in characters.
const LABEL_CHARS: usize = 21;

/// `text` cut to `max` characters with an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Rounds to a tenth of a pixel.
fn px(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The scale's maximum: the largest total (or marker), at least `f64::MIN_POSITIVE` so that
/// all-zero data draws zero-length bars.
fn scale_max(totals: impl Iterator<Item = f64>) -> f64 {
    totals.fold(f64::MIN_POSITIVE, f64::max)
}

fn open_svg(out: &mut String, id: &str, title: &str, height: f64) {
    let _ = write!(
        out,
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" font-size=\"12\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{title}</title>",
        id = escape(id),
        title = escape(title),
    );
}

fn legend(out: &mut String, series: &[Series], y: f64) {
    let mut x = 0.0;
    for s in series {
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"11\" height=\"11\" rx=\"2\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"#444\">{}</text>",
            y - 10.0,
            escape(s.color),
            x + 15.0,
            y,
            escape(s.name)
        );
        x += 15.0 + 7.0 * s.name.chars().count() as f64 + 16.0;
    }
}

fn empty_svg(id: &str, title: &str, message: &str) -> String {
    let mut out = String::new();
    open_svg(&mut out, id, title, 40.0);
    let _ = write!(
        out,
        "<text x=\"0\" y=\"24\" fill=\"#666\">{}</text></svg>",
        escape(message)
    );
    out
}

/// Renders `chart` as an `<svg>` element.
pub(crate) fn bar_chart(chart: &BarChart<'_>) -> String {
    if chart.bars.is_empty() {
        return empty_svg(chart.id, chart.title, chart.empty);
    }
    let max = scale_max(
        chart
            .bars
            .iter()
            .flat_map(|bar| std::iter::once(bar.values.iter().sum::<f64>()).chain(bar.marker)),
    );
    let scale = |value: f64| px(value.max(0.0) / max * BAR_W);
    let top = if chart.series.len() > 1 {
        LEGEND_H
    } else {
        0.0
    };
    let height = top + ROW_H * chart.bars.len() as f64 + 4.0;
    let mut out = String::with_capacity(512 + chart.bars.len() * 400);
    open_svg(&mut out, chart.id, chart.title, height);
    if chart.series.len() > 1 {
        legend(&mut out, chart.series, 12.0);
    }
    for (row, bar) in chart.bars.iter().enumerate() {
        let y = top + ROW_H * row as f64;
        let text_y = y + 17.0;
        let (weight, color) = if bar.alert {
            (" font-weight=\"bold\"", "#b00020")
        } else {
            ("", "#222")
        };
        let _ = write!(
            out,
            "<g class=\"bar\"><title>{}: {}</title>\
             <text x=\"{}\" y=\"{text_y}\" text-anchor=\"end\" fill=\"{color}\"{weight}>{}</text>\
             <rect x=\"{BAR_X}\" y=\"{}\" width=\"{BAR_W}\" height=\"16\" rx=\"2\" fill=\"#f1f3f5\"/>",
            escape(&bar.label),
            escape(&bar.note),
            BAR_X - 6.0,
            escape(&truncate(&bar.label, LABEL_CHARS)),
            y + 5.0,
        );
        let mut x = BAR_X;
        for (value, series) in bar.values.iter().zip(chart.series) {
            let width = scale(*value);
            if width > 0.0 {
                let _ = write!(
                    out,
                    "<rect class=\"segment\" x=\"{}\" y=\"{}\" width=\"{width}\" height=\"16\" \
                     fill=\"{}\"/>",
                    px(x),
                    y + 5.0,
                    escape(series.color)
                );
            }
            x += width;
        }
        if let Some(marker) = bar.marker {
            let _ = write!(
                out,
                "<rect class=\"marker\" x=\"{}\" y=\"{}\" width=\"2\" height=\"22\" fill=\"#222\"/>",
                px(BAR_X + scale(marker) - 1.0),
                y + 2.0,
            );
        }
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{text_y}\" fill=\"{color}\"{weight}>{}</text></g>",
            BAR_X + BAR_W + 8.0,
            escape(&bar.note)
        );
    }
    out.push_str("</svg>");
    out
}

/// One column of a [`ColumnChart`]: a category label and one value per series, stacked upwards.
#[derive(Debug, Clone, Default)]
pub(crate) struct Column {
    /// Category label under the column.
    pub label: String,
    /// One value per series of the chart.
    pub values: Vec<f64>,
}

/// A stacked column chart on one linear scale from zero, each column's total printed above it.
#[derive(Debug, Clone)]
pub(crate) struct ColumnChart<'a> {
    /// Element id of the `<svg>`.
    pub id: &'a str,
    /// Accessible title.
    pub title: &'a str,
    /// The series, in stacking order (the first at the bottom).
    pub series: &'a [Series],
    /// The columns, left to right.
    pub columns: Vec<Column>,
}

/// Height of the tallest column.
const PLOT_H: f64 = 150.0;

/// Renders `chart` as an `<svg>` element.
pub(crate) fn column_chart(chart: &ColumnChart<'_>) -> String {
    let max = scale_max(chart.columns.iter().map(|c| c.values.iter().sum::<f64>()));
    let scale = |value: f64| px(value.max(0.0) / max * PLOT_H);
    let slot = WIDTH / chart.columns.len().max(1) as f64;
    let column_w = px(slot * 0.62);
    let top = LEGEND_H + 16.0;
    let base = top + PLOT_H;
    let mut out = String::with_capacity(512 + chart.columns.len() * 400);
    open_svg(&mut out, chart.id, chart.title, base + 22.0);
    legend(&mut out, chart.series, 12.0);
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\" stroke=\"#999\"/>"
    );
    for (i, column) in chart.columns.iter().enumerate() {
        let x = px(slot * i as f64 + (slot - column_w) / 2.0);
        let center = px(slot * (i as f64 + 0.5));
        let total: f64 = column.values.iter().sum();
        let _ = write!(
            out,
            "<g class=\"column\"><title>{}: {total}</title>",
            escape(&column.label)
        );
        let mut y = base;
        for (value, series) in column.values.iter().zip(chart.series) {
            let height = scale(*value);
            if height > 0.0 {
                y -= height;
                let _ = write!(
                    out,
                    "<rect class=\"segment\" x=\"{x}\" y=\"{}\" width=\"{column_w}\" \
                     height=\"{height}\" fill=\"{}\"/>",
                    px(y),
                    escape(series.color)
                );
            }
        }
        let _ = write!(
            out,
            "<text x=\"{center}\" y=\"{}\" text-anchor=\"middle\" fill=\"#222\" \
             font-weight=\"bold\">{total}</text>\
             <text x=\"{center}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{}</text></g>",
            px(y - 5.0),
            base + 16.0,
            escape(&column.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: [Series; 1] = [Series {
        name: "examined",
        color: "#4f7fd1",
    }];
    const TWO: [Series; 2] = [
        Series {
            name: "done",
            color: "#1a7f37",
        },
        Series {
            name: "failed",
            color: "#c62828",
        },
    ];

    /// The values of `attribute` on every `<rect class="segment"` of `svg`, in order.
    fn segment_attribute(svg: &str, attribute: &str) -> Vec<f64> {
        svg.split("<rect class=\"segment\"")
            .skip(1)
            .map(|rect| {
                let start = rect.find(&format!(" {attribute}=\"")).unwrap() + attribute.len() + 3;
                let end = start + rect[start..].find('"').unwrap();
                rect[start..end].parse().unwrap()
            })
            .collect()
    }

    fn bar(label: &str, values: &[f64]) -> Bar {
        Bar {
            label: label.into(),
            values: values.to_vec(),
            ..Bar::default()
        }
    }

    #[test]
    fn bar_lengths_are_proportional_to_the_values() {
        let svg = bar_chart(&BarChart {
            id: "chart-streams",
            title: "Records examined",
            series: &ONE,
            bars: vec![bar("a", &[400.0]), bar("b", &[100.0]), bar("c", &[0.0])],
            empty: "none",
        });
        assert!(svg.starts_with("<svg id=\"chart-streams\""));
        // The largest fills the scale; a quarter of it a quarter; zero draws nothing.
        assert_eq!(segment_attribute(&svg, "width"), vec![BAR_W, BAR_W / 4.0]);
    }

    #[test]
    fn stacked_parts_follow_each_other_and_total_to_the_scale() {
        let svg = bar_chart(&BarChart {
            id: "c",
            title: "t",
            series: &TWO,
            bars: vec![bar("x", &[3.0, 1.0]), bar("y", &[1.0, 1.0])],
            empty: "none",
        });
        let widths = segment_attribute(&svg, "width");
        let xs = segment_attribute(&svg, "x");
        let (three, one) = (BAR_W * 0.75, BAR_W * 0.25);
        assert_eq!(widths, vec![three, one, one, one]);
        assert_eq!(xs, vec![BAR_X, BAR_X + three, BAR_X, BAR_X + one]);
        assert!(svg.contains(">done</text>") && svg.contains(">failed</text>"));
    }

    #[test]
    fn a_marker_beyond_every_bar_sets_the_scale() {
        let svg = bar_chart(&BarChart {
            id: "c",
            title: "t",
            series: &ONE,
            bars: vec![Bar {
                marker: Some(10.0),
                ..bar("p", &[5.0])
            }],
            empty: "none",
        });
        assert_eq!(segment_attribute(&svg, "width"), vec![BAR_W / 2.0]);
        assert!(svg.contains(&format!(
            "<rect class=\"marker\" x=\"{}\"",
            BAR_X + BAR_W - 1.0
        )));
    }

    #[test]
    fn column_heights_are_proportional_and_stack_upwards() {
        let svg = column_chart(&ColumnChart {
            id: "chart-headroom",
            title: "Headroom",
            series: &TWO,
            columns: vec![
                Column {
                    label: "overdue".into(),
                    values: vec![2.0, 0.0],
                },
                Column {
                    label: "soon".into(),
                    values: vec![1.0, 3.0],
                },
            ],
        });
        let heights = segment_attribute(&svg, "height");
        assert_eq!(
            heights,
            vec![PLOT_H / 2.0, PLOT_H / 4.0, PLOT_H * 3.0 / 4.0]
        );
        let ys = segment_attribute(&svg, "y");
        // The second part sits on top of the first.
        assert_eq!(ys[2] + heights[2], ys[1]);
        assert!(svg.contains(">4</text>"), "the total is printed: {svg}");
    }

    #[test]
    fn every_string_is_escaped() {
        let svg = bar_chart(&BarChart {
            id: "c\"><script>",
            title: "<b>",
            series: &ONE,
            bars: vec![Bar {
                note: "a & b".into(),
                ..bar("<script>alert(1)</script>", &[1.0])
            }],
            empty: "none",
        });
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("a &amp; b"));
        let svg = column_chart(&ColumnChart {
            id: "c",
            title: "t",
            series: &ONE,
            columns: vec![Column {
                label: "<i>".into(),
                values: vec![1.0],
            }],
        });
        assert!(!svg.contains("<i>") && svg.contains("&lt;i&gt;"));
    }

    #[test]
    fn long_labels_are_cut_but_kept_whole_in_the_tooltip() {
        let label = "a-very-long-recipient-connector-id";
        let svg = bar_chart(&BarChart {
            id: "c",
            title: "t",
            series: &ONE,
            bars: vec![bar(label, &[1.0])],
            empty: "none",
        });
        assert!(svg.contains(&format!("<title>{label}: </title>")));
        assert!(svg.contains(">a-very-long-recipien…</text>"), "{svg}");
    }

    #[test]
    fn no_bars_shows_the_empty_message() {
        let svg = bar_chart(&BarChart {
            id: "chart-latency",
            title: "t",
            series: &ONE,
            bars: vec![],
            empty: "No recipient answered in the last 30 days.",
        });
        assert!(svg.starts_with("<svg id=\"chart-latency\""));
        assert!(svg.contains("No recipient answered in the last 30 days."));
        assert!(!svg.contains("class=\"segment\""));
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-12_345), "-12,345");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(42_000), "42 s");
        assert_eq!(duration(12 * 60_000), "12 min");
        assert_eq!(duration(5 * 3_600_000 + 720_000), "5.2 h");
        assert_eq!(duration(-3 * 86_400_000), "-3.0 d");
    }
}
