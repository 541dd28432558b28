//! Minimal SVG charts for the report: grouped bars and lines.
//!
//! Written by hand on purpose: plotting crates need a font backend to lay out labels (fonts to
//! ship or system fonts to find), while an SVG viewer lays out `<text>` itself. These two chart
//! kinds are all the report needs.

use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 380.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 70.0;
const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

/// One named series.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<(f64, f64)>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn header(title: &str, y_label: &str) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ =
        write!(svg, r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#, WIDTH / 2.0, escape(title));
    let _ = write!(
        svg,
        r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        escape(y_label)
    );
    svg
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|c| *c >= value).unwrap_or(10.0 * magnitude)
}

fn format_tick(value: f64) -> String {
    if value >= 1000.0 && value.fract() == 0.0 {
        format!("{}k", value / 1000.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Axes with five horizontal grid lines from 0 to `y_max`.
fn y_axis(svg: &mut String, y_max: f64) {
    let plot_height = HEIGHT - TOP - BOTTOM;
    for i in 0..=5 {
        let value = y_max * f64::from(i) / 5.0;
        let y = TOP + plot_height - plot_height * f64::from(i) / 5.0;
        let _ = write!(svg, r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##, WIDTH - RIGHT);
        let _ =
            write!(svg, r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#, LEFT - 6.0, y + 4.0, format_tick(value));
    }
    let _ = write!(svg, r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/>"#, HEIGHT - BOTTOM);
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        HEIGHT - BOTTOM
    );
}

fn legend(svg: &mut String, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 20.0;
        let x = WIDTH - RIGHT + 15.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/>"#,
            y - 10.0,
            COLOURS[i % COLOURS.len()]
        );
        let _ = write!(svg, r#"<text x="{}" y="{y}">{}</text>"#, x + 18.0, escape(name));
    }
}

/// Grouped bars: for each category, one bar per series (`series[i].values[j].1` is the value
/// of series i in category j).
pub fn bar_chart(title: &str, y_label: &str, categories: &[String], series: &[Series]) -> String {
    let mut svg = header(title, y_label);
    let y_max = nice_ceiling(series.iter().flat_map(|s| s.values.iter().map(|v| v.1)).fold(0.0, f64::max));
    y_axis(&mut svg, y_max);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let group = plot_width / categories.len().max(1) as f64;
    let bar = group * 0.8 / series.len().max(1) as f64;
    for (j, category) in categories.iter().enumerate() {
        let group_x = LEFT + group * j as f64 + group * 0.1;
        for (i, s) in series.iter().enumerate() {
            let value = s.values.get(j).map_or(0.0, |v| v.1);
            let h = plot_height * value / y_max;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                group_x + bar * i as f64,
                TOP + plot_height - h,
                bar.max(1.0),
                h,
                COLOURS[i % COLOURS.len()],
                escape(&s.name),
                format_tick(value)
            );
        }
        let _ = write!(
            svg,
            r#"<text transform="translate({:.1},{}) rotate(30)" text-anchor="start">{}</text>"#,
            group_x + group * 0.3,
            HEIGHT - BOTTOM + 14.0,
            escape(category)
        );
    }
    legend(&mut svg, &series.iter().map(|s| s.name.clone()).collect::<Vec<_>>());
    svg.push_str("</svg>\n");
    svg
}

/// Lines with markers over a numeric x axis.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let mut svg = header(title, y_label);
    let all = || series.iter().flat_map(|s| s.values.iter());
    let x_max = nice_ceiling(all().map(|v| v.0).fold(0.0, f64::max));
    let y_max = nice_ceiling(all().map(|v| v.1).fold(0.0, f64::max));
    y_axis(&mut svg, y_max);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    for i in 0..=5 {
        let value = x_max * f64::from(i) / 5.0;
        let x = LEFT + plot_width * f64::from(i) / 5.0;
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            HEIGHT - BOTTOM + 16.0,
            format_tick(value)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + plot_width / 2.0,
        HEIGHT - 25.0,
        escape(x_label)
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .values
            .iter()
            .map(|(x, y)| {
                format!("{:.1},{:.1}", LEFT + plot_width * x / x_max, TOP + plot_height - plot_height * y / y_max)
            })
            .collect();
        let _ =
            write!(svg, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#, points.join(" "));
        for point in &points {
            let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>"#);
        }
    }
    legend(&mut svg, &series.iter().map(|s| s.name.clone()).collect::<Vec<_>>());
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_nice_numbers() {
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }

    #[test]
    fn charts_are_well_formed_svg_with_escaped_labels() {
        let series = vec![Series { name: "a<b".into(), values: vec![(1.0, 2.0), (2.0, 3.0)] }];
        let line = line_chart("t", "x", "y", &series);
        assert!(line.starts_with("<svg") && line.trim_end().ends_with("</svg>"));
        assert!(line.contains("a&lt;b") && line.contains("<polyline"));
        let bars = bar_chart("t", "y", &["one".into(), "two".into()], &series);
        assert_eq!(bars.matches("<rect x=").count(), 2 + 1, "two bars and one legend swatch");
    }
}
