//! Minimal SVG charts for the report: grouped bars, and figures of stacked panels sharing one x
//! axis (lines, points, horizontal rules) on linear, logarithmic or percentile ("nines") scales.
//!
//! Written by hand on purpose: plotting crates need a font backend to lay out labels (fonts to
//! ship or system fonts to find), while an SVG viewer lays out `<text>` itself.
//!
//! Every plot draws an architecture in the same colour ([`architecture_colour`]); what differs
//! within an architecture (a percentile, a repetition) differs by [`Style`].

use std::fmt::Write;

use hdrhistogram::Histogram;

const WIDTH: f64 = 860.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 290.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// Height of the plotting area of a figure with a single panel.
const SINGLE_PANEL_HEIGHT: f64 = 270.0;
/// Height of each plotting area of a figure with several panels, and the gap between them.
const STACKED_PANEL_HEIGHT: f64 = 120.0;
const PANEL_GAP: f64 = 30.0;
/// Colours of architectures without one of their own.
const OTHER_COLOURS: [&str; 4] = ["#ff7f0e", "#9467bd", "#8c564b", "#17becf"];

/// The colour of an architecture, the same in every plot: a reader who learned that the monolith
/// is blue in one plot reads the next without its legend.
pub fn architecture_colour(architecture: &str) -> &'static str {
    match architecture {
        "monolith" => "#1f77b4",
        "microservices" => "#d62728",
        "null-server" => "#2ca02c",
        other => {
            // Stable across runs and machines (no randomised hasher).
            let index = other.bytes().fold(0usize, |sum, b| sum.wrapping_mul(31).wrapping_add(usize::from(b)));
            OTHER_COLOURS[index % OTHER_COLOURS.len()]
        }
    }
}

/// How a series is drawn; bars of any style but `Solid` are drawn lighter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Solid,
    Dashed,
    Dotted,
    /// Markers only, no line between them.
    Points,
}

impl Style {
    /// The line style of the `repetition`th repetition (1-based): solid, dashed, dotted, ...
    pub fn of_repetition(repetition: u32) -> Self {
        [Style::Solid, Style::Dashed, Style::Dotted][(repetition.max(1) as usize - 1) % 3]
    }

    fn dash(self) -> &'static str {
        match self {
            Style::Dashed => r#" stroke-dasharray="8,4""#,
            Style::Dotted => r#" stroke-dasharray="2,3""#,
            Style::Solid | Style::Points => "",
        }
    }
}

/// One named series of (x, y) values.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub colour: &'static str,
    pub style: Style,
    pub values: Vec<(f64, f64)>,
}

/// A horizontal line across a panel, such as an objective.
#[derive(Debug, Clone)]
pub struct Rule {
    pub label: String,
    pub y: f64,
}

/// How values map to positions along an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// From 0 to a "nice" ceiling of the largest value.
    Linear,
    /// Whole decades around the positive values; values at or below 0 sit on the axis.
    Log,
    /// Percentiles as HdrHistogram plots them: x = log10(1 / (1 - p)), the number of nines,
    /// so 0%, 90%, 99%, 99.9% are evenly spaced. Values are given as nines.
    Nines,
}

/// One plotting area: its y axis and what is drawn in it.
#[derive(Debug, Clone)]
pub struct Panel {
    pub y_label: String,
    pub y_scale: Scale,
    pub series: Vec<Series>,
    pub rules: Vec<Rule>,
}

/// Panels stacked over one shared x axis.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub x_scale: Scale,
    pub panels: Vec<Panel>,
}

/// An axis's range and its ticks (value, label).
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    scale: Scale,
    min: f64,
    max: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    fn new(scale: Scale, values: impl Iterator<Item = f64> + Clone) -> Self {
        match scale {
            Scale::Linear => {
                let max = nice_ceiling(values.fold(0.0, f64::max));
                let ticks = (0..=5).map(|i| max * f64::from(i) / 5.0).map(|v| (v, format_tick(v))).collect();
                Axis { scale, min: 0.0, max, ticks }
            }
            Scale::Log => {
                let positive = values.filter(|v| *v > 0.0 && v.is_finite());
                let low = positive.clone().fold(f64::INFINITY, f64::min);
                let high = positive.fold(0.0, f64::max);
                let (min, max) = if high > 0.0 { log_range(low, high) } else { (1.0, 10.0) };
                Axis { scale, min, max, ticks: log_ticks(min, max).into_iter().map(|v| (v, format_tick(v))).collect() }
            }
            Scale::Nines => {
                let max = values.fold(2.0, f64::max).ceil();
                let ticks = (0..=max as u32).map(|n| (f64::from(n), nines_label(n))).collect();
                Axis { scale, min: 0.0, max, ticks }
            }
        }
    }

    /// Where `value` lies between the axis's ends, 0 to 1 (log: values at or below 0 at 0).
    fn fraction(&self, value: f64) -> f64 {
        let fraction = match self.scale {
            Scale::Linear | Scale::Nines => (value - self.min) / (self.max - self.min),
            Scale::Log if value <= 0.0 => 0.0,
            Scale::Log => (value.log10() - self.min.log10()) / (self.max.log10() - self.min.log10()),
        };
        fraction.clamp(0.0, 1.0)
    }
}

/// Whole decades enclosing `[low, high]` (both positive).
fn log_range(low: f64, high: f64) -> (f64, f64) {
    let low = low.min(high);
    let mut min = power_of_ten(low.log10().floor() as i32);
    let mut max = power_of_ten(high.log10().ceil() as i32);
    if max <= min {
        max = min * 10.0;
    }
    if min <= 0.0 {
        min = max / 10.0;
    }
    (min, max)
}

/// `10^exponent`, exact for negative exponents too (0.01, not 0.010000000000000002).
fn power_of_ten(exponent: i32) -> f64 {
    if exponent >= 0 { 10f64.powi(exponent) } else { 1.0 / 10f64.powi(-exponent) }
}

/// Ticks of a log axis from `min` to `max` (powers of ten): 1, 2 and 5 per decade over at most
/// three decades, only the powers of ten beyond.
fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let (first, last) = (min.log10().round() as i32, max.log10().round() as i32);
    let multiples: &[f64] = if last - first <= 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut ticks = Vec::new();
    for exponent in first..=last {
        for m in multiples {
            let value = if exponent >= 0 { m * 10f64.powi(exponent) } else { m / 10f64.powi(-exponent) };
            if value <= max * (1.0 + 1e-9) {
                ticks.push(value);
            }
        }
    }
    ticks
}

/// "0%", "90%", "99%", "99.9%", "99.99%", ... for 0, 1, 2, 3, 4, ... nines.
fn nines_label(nines: u32) -> String {
    match nines {
        0 => "0%".into(),
        1 => "90%".into(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)).replace(".%", "%"),
    }
}

/// The number of nines of quantile `q` (0.99 -> 2).
pub fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).max(f64::MIN_POSITIVE).log10()
}

/// A histogram's percentile spectrum in milliseconds (from microseconds), as (nines, ms):
/// every twentieth of a nine from 0% to the percentile its count resolves (1 - 1/count), then
/// the maximum there.
pub fn spectrum_ms(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let last = (histogram.len() as f64).log10();
    let steps = (last * 20.0).floor() as u32;
    let mut points: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let x = f64::from(i) / 20.0;
            let quantile = 1.0 - 1.0 / 10f64.powf(x);
            (x, histogram.value_at_quantile(quantile) as f64 / 1000.0)
        })
        .collect();
    points.push((last.max(points.last().map_or(0.0, |p| p.0)), histogram.max() as f64 / 1000.0));
    points
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn header(svg: &mut String, height: f64, title: &str) {
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ =
        write!(svg, r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#, WIDTH / 2.0, escape(title));
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
    if value >= 1000.0 && (value / 1000.0).fract() == 0.0 {
        format!("{}k", value / 1000.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value >= 0.01 {
        // Shortest representation: 0.2, 0.05, 2.5.
        format!("{}", (value * 100.0).round() / 100.0)
    } else {
        format!("{value}")
    }
}

/// One legend entry per distinct (name, colour, style), in order of appearance.
fn legend(svg: &mut String, entries: &[(&str, &'static str, Style)]) {
    let mut seen: Vec<(&str, &str, Style)> = Vec::new();
    for &(name, colour, style) in entries {
        if seen.iter().any(|s| s.0 == name) {
            continue;
        }
        seen.push((name, colour, style));
        let y = TOP + 10.0 + (seen.len() - 1) as f64 * 20.0;
        let x = WIDTH - RIGHT + 15.0;
        match style {
            Style::Points => {
                let _ = write!(svg, r#"<circle cx="{}" cy="{}" r="4" fill="{colour}"/>"#, x + 8.0, y - 4.0);
            }
            _ => {
                let _ = write!(
                    svg,
                    r#"<line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2"{}/>"#,
                    y - 4.0,
                    x + 16.0,
                    y - 4.0,
                    style.dash()
                );
            }
        }
        let _ = write!(svg, r#"<text x="{}" y="{y}">{}</text>"#, x + 22.0, escape(name));
    }
}

impl Figure {
    /// The SVG document.
    pub fn render(&self) -> String {
        let panel_height = if self.panels.len() > 1 { STACKED_PANEL_HEIGHT } else { SINGLE_PANEL_HEIGHT };
        let count = self.panels.len().max(1) as f64;
        let height = TOP + count * panel_height + (count - 1.0) * PANEL_GAP + BOTTOM;
        let plot_width = WIDTH - LEFT - RIGHT;
        let mut svg = String::new();
        header(&mut svg, height, &self.title);

        let x_values = self.panels.iter().flat_map(|p| p.series.iter().flat_map(|s| s.values.iter().map(|v| v.0)));
        let x_axis = Axis::new(self.x_scale, x_values);
        let x_at = |value: f64| LEFT + plot_width * x_axis.fraction(value);
        let mut entries = Vec::new();
        for (index, panel) in self.panels.iter().enumerate() {
            let top = TOP + index as f64 * (panel_height + PANEL_GAP);
            let bottom = top + panel_height;
            let y_values = panel
                .series
                .iter()
                .flat_map(|s| s.values.iter().map(|v| v.1))
                .chain(panel.rules.iter().map(|r| r.y))
                .collect::<Vec<_>>();
            let y_axis = Axis::new(panel.y_scale, y_values.iter().copied());
            let y_at = |value: f64| bottom - panel_height * y_axis.fraction(value);

            for (value, label) in &y_axis.ticks {
                let y = y_at(*value);
                let _ = write!(
                    svg,
                    r##"<line class="y-grid" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/>"##,
                    WIDTH - RIGHT
                );
                let _ = write!(
                    svg,
                    r#"<text class="y-tick" x="{}" y="{:.1}" text-anchor="end">{label}</text>"#,
                    LEFT - 6.0,
                    y + 4.0
                );
            }
            for (value, label) in &x_axis.ticks {
                let x = x_at(*value);
                let _ = write!(
                    svg,
                    r##"<line class="x-grid" x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#eee"/>"##
                );
                if index + 1 == self.panels.len() {
                    let _ = write!(
                        svg,
                        r#"<text class="x-tick" x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                        bottom + 16.0
                    );
                }
            }
            let _ = write!(svg, r#"<path d="M{LEFT},{top} V{bottom} H{}" fill="none" stroke="black"/>"#, WIDTH - RIGHT);
            let _ = write!(
                svg,
                r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
                top + panel_height / 2.0,
                escape(&panel.y_label)
            );

            for rule in &panel.rules {
                let y = y_at(rule.y);
                let _ = write!(
                    svg,
                    r#"<line class="rule" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="black" stroke-dasharray="6,3"/>"#,
                    WIDTH - RIGHT
                );
                let _ = write!(
                    svg,
                    r#"<text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
                    WIDTH - RIGHT - 4.0,
                    y - 4.0,
                    escape(&rule.label)
                );
            }
            for series in &panel.series {
                let points: Vec<(f64, f64)> = series.values.iter().map(|&(x, y)| (x_at(x), y_at(y))).collect();
                let name = escape(&series.name);
                let colour = series.colour;
                if series.style == Style::Points {
                    for (x, y) in &points {
                        let _ = write!(
                            svg,
                            r#"<circle class="point" cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}" fill-opacity="0.7"><title>{name}</title></circle>"#
                        );
                    }
                } else if !points.is_empty() {
                    let d: Vec<String> = points
                        .iter()
                        .enumerate()
                        .map(|(i, (x, y))| format!("{}{x:.1},{y:.1}", if i == 0 { 'M' } else { 'L' }))
                        .collect();
                    let _ = write!(
                        svg,
                        r#"<path class="series" d="{}" fill="none" stroke="{colour}" stroke-width="2"{}><title>{name}</title></path>"#,
                        d.join(" "),
                        series.style.dash()
                    );
                }
                entries.push((series.name.as_str(), colour, series.style));
            }
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + plot_width / 2.0,
            height - 20.0,
            escape(&self.x_label)
        );
        legend(&mut svg, &entries);
        svg.push_str("</svg>\n");
        svg
    }
}

/// Grouped bars: for each category `j`, one bar per series that has a value at x = `j`.
pub fn bar_chart(title: &str, y_label: &str, categories: &[String], series: &[Series]) -> String {
    let plot_height = SINGLE_PANEL_HEIGHT;
    let height = TOP + plot_height + BOTTOM + 30.0;
    let bottom = TOP + plot_height;
    let mut svg = String::new();
    header(&mut svg, height, title);
    let axis = Axis::new(Scale::Linear, series.iter().flat_map(|s| s.values.iter().map(|v| v.1)));
    for (value, label) in &axis.ticks {
        let y = bottom - plot_height * axis.fraction(*value);
        let _ = write!(svg, r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/>"##, WIDTH - RIGHT);
        let _ = write!(svg, r#"<text x="{}" y="{:.1}" text-anchor="end">{label}</text>"#, LEFT - 6.0, y + 4.0);
    }
    let _ = write!(svg, r#"<path d="M{LEFT},{TOP} V{bottom} H{}" fill="none" stroke="black"/>"#, WIDTH - RIGHT);
    let _ = write!(
        svg,
        r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_height / 2.0,
        escape(y_label)
    );
    let group = (WIDTH - LEFT - RIGHT) / categories.len().max(1) as f64;
    for (j, category) in categories.iter().enumerate() {
        let present: Vec<(&Series, f64)> =
            series.iter().filter_map(|s| s.values.iter().find(|v| v.0 == j as f64).map(|v| (s, v.1))).collect();
        let bar = group * 0.8 / present.len().max(1) as f64;
        let group_x = LEFT + group * j as f64 + group * 0.1;
        for (i, (s, value)) in present.iter().enumerate() {
            let h = plot_height * axis.fraction(*value);
            let opacity = if s.style == Style::Solid { 1.0 } else { 0.45 };
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="{opacity}"><title>{}: {}</title></rect>"#,
                group_x + bar * i as f64,
                bottom - h,
                bar.max(1.0),
                h,
                s.colour,
                escape(&s.name),
                format_tick(*value)
            );
        }
        let _ = write!(
            svg,
            r#"<text transform="translate({:.1},{}) rotate(30)" text-anchor="start">{}</text>"#,
            group_x + group * 0.3,
            bottom + 14.0,
            escape(category)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 20.0;
        let x = WIDTH - RIGHT + 15.0;
        let opacity = if s.style == Style::Solid { 1.0 } else { 0.45 };
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}" fill-opacity="{opacity}"/>"#,
            y - 10.0,
            s.colour
        );
        let _ = write!(svg, r#"<text x="{}" y="{y}">{}</text>"#, x + 18.0, escape(&s.name));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, architecture: &str, style: Style, values: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), colour: architecture_colour(architecture), style, values }
    }

    /// The numbers in attribute `name` of every element that has `marker` in it.
    fn attribute(svg: &str, marker: &str, name: &str) -> Vec<f64> {
        svg.split('<')
            .filter(|element| element.contains(marker))
            .filter_map(|element| element.split(&format!(" {name}=\"")).nth(1)?.split('"').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn axes_end_on_nice_numbers() {
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }

    #[test]
    fn a_log_axis_spans_whole_decades_with_1_2_5_ticks() {
        assert_eq!(log_range(0.3, 120.0), (0.1, 1000.0));
        assert_eq!(log_range(5.0, 5.0), (1.0, 10.0));
        let ticks: Vec<String> = log_ticks(0.1, 100.0).into_iter().map(format_tick).collect();
        assert_eq!(ticks, ["0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "50", "100"]);
        // Over more than three decades only the powers of ten.
        let ticks: Vec<String> = log_ticks(0.01, 10_000.0).into_iter().map(format_tick).collect();
        assert_eq!(ticks, ["0.01", "0.1", "1", "10", "100", "1k", "10k"]);
    }

    #[test]
    fn the_same_architecture_has_the_same_colour_everywhere() {
        assert_eq!(architecture_colour("monolith"), "#1f77b4");
        assert_eq!(architecture_colour("microservices"), "#d62728");
        assert_ne!(architecture_colour("monolith"), architecture_colour("microservices"));
        assert_eq!(architecture_colour("something-else"), architecture_colour("something-else"));
    }

    #[test]
    fn a_log_panel_places_values_and_the_objective_by_their_logarithm() {
        let figure = Figure {
            title: "t".into(),
            x_label: "x".into(),
            x_scale: Scale::Linear,
            panels: vec![Panel {
                y_label: "ms".into(),
                y_scale: Scale::Log,
                series: vec![series("monolith p99", "monolith", Style::Points, vec![(100.0, 1.0), (200.0, 10.0)])],
                rules: vec![Rule { label: "objective".into(), y: 100.0 }],
            }],
        };
        let svg = figure.render();
        // Axis 1..100 ms over the panel's height: 1 at the bottom, 10 half way, 100 at the top.
        let bottom = TOP + SINGLE_PANEL_HEIGHT;
        assert_eq!(attribute(&svg, r#"class="point""#, "cy"), [bottom, bottom - SINGLE_PANEL_HEIGHT / 2.0]);
        assert_eq!(attribute(&svg, r#"class="rule""#, "y1"), [TOP]);
        let ticks: Vec<f64> = attribute(&svg, r#"class="y-grid""#, "y1");
        assert_eq!(ticks.len(), 7, "1, 2, 5, 10, 20, 50, 100");
    }

    #[test]
    fn the_nines_axis_spaces_90_99_and_99_9_percent_evenly() {
        let axis = Axis::new(Scale::Nines, [nines(0.999)].into_iter());
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%"]);
        let plot_width = WIDTH - LEFT - RIGHT;
        for (quantile, third) in [(0.9, 1.0), (0.99, 2.0), (0.999, 3.0)] {
            let x = LEFT + plot_width * axis.fraction(nines(quantile));
            assert!((x - (LEFT + plot_width * third / 3.0)).abs() < 1e-6, "{quantile} at {x}");
        }
    }

    #[test]
    fn a_spectrum_reads_the_histogram_at_each_nine() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for micros in 1..=10_000u64 {
            histogram.record(micros).expect("in range");
        }
        let spectrum = spectrum_ms(&histogram);
        let at = |n: f64| spectrum.iter().find(|p| (p.0 - n).abs() < 1e-9).expect("sampled").1;
        assert!((at(0.0) - 0.001).abs() < 1e-3);
        assert!((at(1.0) - 9.0).abs() < 0.01, "p90 of 1..10,000 µs is 9 ms: {}", at(1.0));
        assert!((at(2.0) - 9.9).abs() < 0.01);
        assert_eq!(spectrum.last().map(|p| p.0), Some(4.0), "ends where 10,000 samples resolve");
    }

    #[test]
    fn stacked_panels_share_the_x_axis_and_label_it_once() {
        let line = |architecture: &str, repetition| {
            series(architecture, architecture, Style::of_repetition(repetition), vec![(0.0, 1.0), (1.0, 2.0)])
        };
        let panel = |label: &str| Panel {
            y_label: label.into(),
            y_scale: Scale::Linear,
            series: vec![line("monolith", 1), line("microservices", 2)],
            rules: Vec::new(),
        };
        let figure = Figure {
            title: "a<b".into(),
            x_label: "second".into(),
            x_scale: Scale::Linear,
            panels: vec![panel("ok/s"), panel("failed/s")],
        };
        let svg = figure.render();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b"));
        assert_eq!(svg.matches(r#"class="series""#).count(), 4);
        assert_eq!(svg.matches(r#"class="x-tick""#).count(), 6, "tick labels under the last panel only");
        assert_eq!(svg.matches(r##"stroke="#d62728" stroke-width="2" stroke-dasharray="8,4""##).count(), 3);
    }

    #[test]
    fn bars_take_their_series_colour_and_skip_missing_categories() {
        let series = vec![
            series("monolith", "monolith", Style::Solid, vec![(0.0, 2.0)]),
            series("microservices", "microservices", Style::Solid, vec![(1.0, 3.0)]),
        ];
        let bars = bar_chart("t", "y", &["monolith".into(), "microservices".into()], &series);
        assert_eq!(bars.matches(r#"class="bar""#).count(), 2);
        assert_eq!(bars.matches(r##"fill="#d62728""##).count(), 2, "a bar and its legend swatch");
    }
}
