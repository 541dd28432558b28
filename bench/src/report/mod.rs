//! Writing results: raw data, exports, `report.md` with SVG plots, and the terminal summary.
//!
//! `run.json` is the raw data (see [`data`]); everything else in a run directory is derived
//! from it by [`write_report`], which `splitbench report <dir>` calls again to rebuild.

pub mod data;
pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::analyse::{FailureShape, Objective, Percentiles, QuantileInterval, failure_shape, human_micros};
use crate::check::{ConsistencyReport, Invariant, thousands};
use data::{Measurement, RunData};
use svg::Series;

/// Generator lag at send (p99, due to last byte written) above which the report warns, per
/// window and so per sweep step, that the generator, not the server, may have shaped the
/// latencies. Why 1 ms: the cheapest answers of the shop on loopback take a few hundred
/// microseconds, and a step's latencies are judged against objectives in milliseconds; a lag
/// above 1 ms is as large as what is measured for those endpoints, so their latencies would
/// say more about the generator than about the server (a generator that keeps up lags by
/// microseconds).
pub const LAG_WARNING_US: u64 = 1_000;

/// CPU taken on the run's cores by anything outside the run (other processes, the kernel's
/// threads, the hypervisor's steal), as a share of one core, above which the report warns.
/// 5%: /proc counts in 10 ms ticks, so the figure of a 10 s window is uncertain by about 1%
/// of a core per process sampled; 5% of the system under test's core is about as much as one
/// architecture's CPU per request differs between repetitions, so more than that can move a
/// comparison, and on the generator's core it delays dispatch.
pub const INTERFERENCE_WARNING_SHARE: f64 = 0.05;

/// Writes `run.json` into `dir` and derives everything else from it.
pub fn write_run(dir: &Path, run: &RunData) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(run)?;
    std::fs::write(dir.join("run.json"), json)?;
    write_report(dir)
}

/// (Re)builds `report.md`, the plots, the CSV timelines and the HdrHistogram logs of `dir`
/// from its `run.json` alone.
pub fn write_report(dir: &Path) -> anyhow::Result<()> {
    let run = RunData::read(&dir.join("run.json"))?;
    write_exports(dir, &run)?;
    let plots = write_plots(dir, &run)?;
    let markdown = markdown(&run, &plots)?;
    std::fs::write(dir.join("report.md"), markdown)?;
    Ok(())
}

/// The file name of a window's exports: `<architecture>-<phase>-<rate>-r<repetition>`, and
/// `-a<attempt>` for a sweep step's re-tests (so a re-test does not overwrite the failing
/// attempt it re-tests).
fn measurement_stem(m: &Measurement) -> String {
    let rate = m.offered_rate.map_or_else(|| "closed".to_string(), |r| format!("{r:.0}rps"));
    let attempt = match m.sweep_step {
        Some(step) if step.attempt > 1 => format!("-a{}", step.attempt),
        _ => String::new(),
    };
    format!("{}-{}-{rate}-r{}{attempt}", m.architecture, m.phase, m.repetition)
}

/// Per-second CSV timelines and HdrHistogram interval logs, for other tools.
fn write_exports(dir: &Path, run: &RunData) -> anyhow::Result<()> {
    let timelines = dir.join("timelines");
    let histograms = dir.join("histograms");
    std::fs::create_dir_all(&timelines)?;
    std::fs::create_dir_all(&histograms)?;
    let kinds = failure_kinds(run);
    for m in &run.measurements {
        let stem = measurement_stem(m);
        std::fs::write(timelines.join(format!("{stem}.csv")), timeline_csv(m, &kinds)?)?;
        if let Some(csv) = endpoint_timeline_csv(m, &kinds)? {
            let by_endpoint = timelines.join("by_endpoint");
            std::fs::create_dir_all(&by_endpoint)?;
            std::fs::write(by_endpoint.join(format!("{stem}.csv")), csv)?;
        }

        let mut file = std::fs::File::create(histograms.join(format!("{stem}.hlog")))?;
        let mut serializer = V2DeflateSerializer::new();
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment(&format!("splitbench {} {}: latency from due time, microseconds", run.run_id, stem))
            .add_comment("tags: all = every endpoint's ok answers; all_requests = every endpoint's requests, failures included; <endpoint>, <endpoint>_all_requests likewise over the window")
            .begin_log_with(&mut file, &mut serializer)?;
        let mut write = |histogram: &hdrhistogram::Histogram<u64>, start: Duration, length: Duration, tag: &str| {
            log.write_histogram(histogram, start, length, Tag::new(tag))
                .map_err(|e| anyhow::anyhow!("writing the histogram log: {e:?}"))
        };
        for (second, s) in m.timeline.iter().enumerate() {
            let start = Duration::from_secs(second as u64);
            write(&s.latency.decode()?, start, Duration::from_secs(1), "all")?;
            if let Some(all) = &s.all_latency {
                write(&all.decode()?, start, Duration::from_secs(1), "all_requests")?;
            }
        }
        let whole = Duration::from_secs_f64(m.duration_secs);
        for (endpoint, data) in &m.endpoints {
            write(&data.latency.decode()?, Duration::ZERO, whole, endpoint)?;
            if let Some(all) = &data.all_latency {
                write(&all.decode()?, Duration::ZERO, whole, &format!("{endpoint}_all_requests"))?;
            }
        }
    }
    Ok(())
}

/// Every kind of failure that occurred anywhere in the run, in order: the `failed_<kind>`
/// columns of every timeline, so all the run's CSV files share one header.
fn failure_kinds(run: &RunData) -> Vec<String> {
    let kinds: std::collections::BTreeSet<String> =
        run.measurements.iter().flat_map(|m| m.failures_by_kind().into_keys()).collect();
    kinds.into_iter().collect()
}

/// The `failed_<kind>` cells of one second: its count of each kind, or empty cells where the
/// run did not record failures by kind per second (before schema 6).
fn failure_cells(failures: Option<&BTreeMap<String, u64>>, kinds: &[String]) -> String {
    let count = |kind: &String| failures.map_or_else(String::new, |f| f.get(kind).copied().unwrap_or(0).to_string());
    kinds.iter().map(|kind| format!(",{}", count(kind))).collect()
}

/// `,failed_<kind>` for each kind.
fn failure_columns(kinds: &[String]) -> String {
    kinds.iter().map(|kind| format!(",failed_{kind}")).collect()
}

/// `p50,p90,p99,max` of `histogram`, or empty cells where it holds nothing (no 0 µs latency).
fn percentile_cells(histogram: Option<&hdrhistogram::Histogram<u64>>) -> String {
    match histogram.filter(|h| !h.is_empty()) {
        Some(histogram) => {
            let p = Percentiles::of(histogram);
            format!("{},{},{},{}", p.p50, p.p90, p.p99, p.max)
        }
        None => ",,,".into(),
    }
}

/// One window's seconds, every endpoint merged: `timelines/<stem>.csv`.
fn timeline_csv(m: &Measurement, kinds: &[String]) -> anyhow::Result<String> {
    // p*_us: the ok answers; all_p*_us: every request (empty in old runs where unknown);
    // lag_*_us: the generator's lag at send; connections_opened during the second and the
    // most connections_open (lag and connections empty in runs that did not record them);
    // failed_<kind>: the second's failures of each kind that occurred in the run (empty in
    // runs that did not record them per second).
    let mut csv = format!(
        "second,due,ok,degraded,failed,p50_us,p90_us,p99_us,max_us,all_p50_us,all_p90_us,all_p99_us,all_max_us,lag_p50_us,lag_p99_us,lag_max_us,connections_opened,connections_open{}\n",
        failure_columns(kinds)
    );
    for (second, s) in m.timeline.iter().enumerate() {
        let p = Percentiles::of(&s.latency.decode()?);
        let all = match s.all_requests()? {
            Some(all) => {
                let a = Percentiles::of(&all);
                format!("{},{},{},{}", a.p50, a.p90, a.p99, a.max)
            }
            None => ",,,".into(),
        };
        let lag = match &s.generator_lag {
            Some(lag) => {
                let l = Percentiles::of(&lag.decode()?);
                format!("{},{},{}", l.p50, l.p99, l.max)
            }
            None => ",,".into(),
        };
        let count = |n: Option<u64>| n.map_or_else(String::new, |n| n.to_string());
        let _ = writeln!(
            csv,
            "{second},{},{},{},{},{},{},{},{},{all},{lag},{},{}{}",
            s.due,
            s.ok,
            s.degraded,
            s.failed,
            p.p50,
            p.p90,
            p.p99,
            p.max,
            count(s.connections_opened),
            count(s.connections_open),
            failure_cells(s.failures.as_ref(), kinds)
        );
    }
    Ok(csv)
}

/// One window's seconds per endpoint, `timelines/by_endpoint/<stem>.csv`; `None` for a run
/// that did not record them (before schema 6).
///
/// Long ("tidy") format, one row per second and endpoint with an `endpoint` column, rather than
/// a file per endpoint or a column per endpoint and measure: `pandas.read_csv` then
/// `groupby("endpoint")` or `pivot`, and R's `read.csv` then `ggplot(aes(colour = endpoint))`
/// or `facet_wrap(~endpoint)`, take it as it is; one file per window keeps it beside its merged
/// timeline (same stem), and the header does not change with the mix. Every endpoint of the
/// window has a row every second, with zero counts and empty percentiles in a second where none
/// of its requests was due (a missing row would read as missing data, not as none).
fn endpoint_timeline_csv(m: &Measurement, kinds: &[String]) -> anyhow::Result<Option<String>> {
    if m.timeline.iter().all(|s| s.endpoints.is_none()) {
        return Ok(None);
    }
    // p*_us: the ok answers; all_p*_us: every request; failed_<kind>: as in the merged timeline.
    let mut csv = format!(
        "second,endpoint,ok,degraded,failed,p50_us,p90_us,p99_us,max_us,all_p50_us,all_p90_us,all_p99_us,all_max_us{}\n",
        failure_columns(kinds)
    );
    let none = BTreeMap::new();
    for (second, s) in m.timeline.iter().enumerate() {
        let Some(endpoints) = &s.endpoints else { continue };
        for endpoint in m.endpoints.keys() {
            let (counts, ok, all) = match endpoints.get(endpoint) {
                Some(e) => {
                    let ok = e.latency.decode()?;
                    let all = e.all_requests()?;
                    (format!("{},{},{}", e.ok, e.degraded, e.failed()), Some(ok), Some(all))
                }
                None => ("0,0,0".into(), None, None),
            };
            let failures = endpoints.get(endpoint).map_or(&none, |e| &e.failures);
            let _ = writeln!(
                csv,
                "{second},{endpoint},{counts},{},{}{}",
                percentile_cells(ok.as_ref()),
                percentile_cells(all.as_ref()),
                failure_cells(Some(failures), kinds)
            );
        }
    }
    Ok(Some(csv))
}

struct Plots {
    files: Vec<(String, String)>,
}

/// Writes every plot: the head-to-head run's (latency per endpoint, CPU per request, p99 per
/// second, one percentile spectrum per endpoint) and the sweep's (latency vs offered rate, one
/// per-second timeline per offered rate). Every architecture has the same colour in all of them.
fn write_plots(dir: &Path, run: &RunData) -> anyhow::Result<Plots> {
    let mut files = Vec::new();
    let mut write = |file: String, title: String, svg: String| -> anyhow::Result<()> {
        std::fs::write(dir.join(&file), svg)?;
        files.push((file, title));
        Ok(())
    };
    let main: Vec<&Measurement> = run.main_measurements().collect();
    if !main.is_empty() {
        let mut endpoints: Vec<String> = main.iter().flat_map(|m| m.endpoints.keys().cloned()).collect();
        endpoints.sort();
        endpoints.dedup();
        let mut series = Vec::new();
        for m in &main {
            for (label, style) in [("p50", svg::Style::Dashed), ("p99", svg::Style::Solid)] {
                let mut values = Vec::new();
                for (i, endpoint) in endpoints.iter().enumerate() {
                    let p = match m.endpoints.get(endpoint) {
                        Some(data) => Percentiles::of(&data.latency.decode()?),
                        None => Percentiles::default(),
                    };
                    let micros = if label == "p50" { p.p50 } else { p.p99 };
                    values.push((i as f64, micros as f64 / 1000.0));
                }
                let colour = svg::architecture_colour(&m.architecture);
                series.push(Series { name: format!("{} {label}", m.architecture), colour, style, values });
            }
        }
        let chart = svg::bar_chart("Latency per endpoint (from due time)", "milliseconds", &endpoints, &series);
        write("latency_per_endpoint.svg".into(), "Latency percentiles per endpoint".into(), chart)?;

        let categories: Vec<String> = main.iter().map(|m| m.architecture.clone()).collect();
        let cpu: Vec<Series> = main
            .iter()
            .enumerate()
            .map(|(i, m)| Series {
                name: m.architecture.clone(),
                colour: svg::architecture_colour(&m.architecture),
                style: svg::Style::Solid,
                values: vec![(i as f64, m.cpu_ms_per_request())],
            })
            .collect();
        let chart = svg::bar_chart("CPU per request (system under test)", "CPU milliseconds", &categories, &cpu);
        write("cpu_per_request.svg".into(), "CPU per request".into(), chart)?;

        let mut timeline = Vec::new();
        for m in &main {
            let (mut ok, mut all) = (Vec::new(), Vec::new());
            for (second, s) in m.timeline.iter().enumerate() {
                ok.push((second as f64, Percentiles::of(&s.latency.decode()?).p99 as f64 / 1000.0));
                if let Some(every) = s.all_requests()? {
                    all.push((second as f64, Percentiles::of(&every).p99 as f64 / 1000.0));
                }
            }
            let colour = svg::architecture_colour(&m.architecture);
            timeline.push(Series {
                name: format!("{} p99", m.architecture),
                colour,
                style: svg::Style::Solid,
                values: ok,
            });
            if m.timeline.iter().any(|s| s.all_latency.is_some()) {
                let name = format!("{} p99 (all requests)", m.architecture);
                timeline.push(Series { name, colour, style: svg::Style::Dashed, values: all });
            }
        }
        let figure = svg::Figure {
            title: "p99 latency per second (head-to-head run)".into(),
            x_label: "second of the measured window".into(),
            x_scale: svg::Scale::Linear,
            panels: vec![svg::Panel {
                y_label: "milliseconds (log scale)".into(),
                y_scale: svg::Scale::Log,
                series: timeline,
                rules: Vec::new(),
            }],
        };
        write("timeline.svg".into(), "p99 latency per second".into(), figure.render())?;

        // One spectrum per endpoint, and one of all endpoints together.
        let several = main.iter().any(|m| m.repetition > 1);
        for endpoint in endpoints.iter().map(Some).chain([None]) {
            let mut curves = Vec::new();
            for m in &main {
                let histogram = match endpoint {
                    Some(endpoint) => match m.endpoints.get(endpoint) {
                        Some(data) => data.all_requests()?.map_or_else(|| data.latency.decode(), Ok)?,
                        None => continue,
                    },
                    None => m.judged_latency()?,
                };
                let name =
                    if several { format!("{} r{}", m.architecture, m.repetition) } else { m.architecture.clone() };
                curves.push(Series {
                    name,
                    colour: svg::architecture_colour(&m.architecture),
                    style: svg::Style::of_repetition(m.repetition),
                    values: svg::spectrum_ms(&histogram),
                });
            }
            let name = endpoint.map_or("all endpoints", String::as_str);
            let figure = svg::Figure {
                title: format!("Percentile spectrum: {name} (every request, from due time)"),
                x_label: "percentile".into(),
                x_scale: svg::Scale::Nines,
                panels: vec![svg::Panel {
                    y_label: "milliseconds (log scale)".into(),
                    y_scale: svg::Scale::Log,
                    series: curves,
                    rules: Vec::new(),
                }],
            };
            let file = format!("spectrum_{}.svg", endpoint.map_or("all", String::as_str));
            write(file, format!("Percentile spectrum: {name}"), figure.render())?;
        }
    }
    if run.sweep_measurements().next().is_some() {
        let (figure, title) = latency_vs_offered_rate(run)?;
        // The file keeps the name it had when the x axis was the achieved rate.
        write("latency_vs_throughput.svg".into(), title, figure.render())?;
        let mut rates: Vec<f64> = run.sweep_measurements().filter_map(|m| m.offered_rate).collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        for rate in rates {
            let steps: Vec<&Measurement> = run.sweep_measurements().filter(|m| m.offered_rate == Some(rate)).collect();
            let figure = sweep_step_timeline(run, rate, &steps)?;
            write(
                format!("sweep_timeline_{rate:.0}rps.svg"),
                format!("Sweep step at {rate:.0}/s, per second"),
                figure.render(),
            )?;
        }
    }
    Ok(Plots { files })
}

/// Latency vs offered rate on a log axis: every repetition's p99 (every request, what the
/// objective judges) as a point, lines through the medians of the repetitions' p99 and p50,
/// and the objective.
fn latency_vs_offered_rate(run: &RunData) -> anyhow::Result<(svg::Figure, String)> {
    let mut by_step: BTreeMap<(String, u64), Vec<(f64, f64)>> = BTreeMap::new();
    let mut points: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for m in run.sweep_measurements() {
        let rate = m.offered_rate.unwrap_or(0.0);
        let p = Percentiles::of(&m.judged_latency()?);
        let (p50, p99) = (p.p50 as f64 / 1000.0, p.p99 as f64 / 1000.0);
        points.entry(m.architecture.clone()).or_default().push((rate, p99));
        by_step.entry((m.architecture.clone(), rate.to_bits())).or_default().push((p50, p99));
    }
    let median = |values: Vec<f64>| crate::analyse::Spread::of(&values).map_or(0.0, |s| s.median);
    let mut medians: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for ((architecture, rate), repeats) in by_step {
        let p50 = median(repeats.iter().map(|r| r.0).collect());
        let p99 = median(repeats.iter().map(|r| r.1).collect());
        medians.entry(architecture).or_default().push((f64::from_bits(rate), p50, p99));
    }
    let mut series = Vec::new();
    for (architecture, mut steps) in medians {
        steps.sort_by(|a, b| a.0.total_cmp(&b.0));
        let colour = svg::architecture_colour(&architecture);
        let line = |name: &str, style, pick: fn(&(f64, f64, f64)) -> f64| Series {
            name: format!("{architecture} {name}"),
            colour,
            style,
            values: steps.iter().map(|s| (s.0, pick(s))).collect(),
        };
        series.push(line("p99 (median)", svg::Style::Solid, |s| s.2));
        series.push(line("p50 (median)", svg::Style::Dashed, |s| s.1));
        let values = points.remove(&architecture).unwrap_or_default();
        series.push(Series {
            name: format!("{architecture} p99, each repetition"),
            colour,
            style: svg::Style::Points,
            values,
        });
    }
    let rules = run
        .config
        .objective
        .iter()
        .map(|o| svg::Rule {
            label: format!("objective: p99 ≤ {}", human_micros(o.p99_us)),
            y: o.p99_us as f64 / 1000.0,
        })
        .collect();
    let figure = svg::Figure {
        title: "Latency vs offered rate (rate sweep, every request, from due time)".into(),
        x_label: "offered requests per second".into(),
        x_scale: svg::Scale::Linear,
        panels: vec![svg::Panel {
            y_label: "milliseconds (log scale)".into(),
            y_scale: svg::Scale::Log,
            series,
            rules,
        }],
    };
    Ok((figure, "Latency vs offered rate".into()))
}

/// One sweep step's seconds, every architecture and repetition: answers, failures, degraded
/// answers (runs from schema 3) and the generator's lag at send (where it was kept per second).
fn sweep_step_timeline(run: &RunData, rate: f64, steps: &[&Measurement]) -> anyhow::Result<svg::Figure> {
    let several = steps.iter().any(|m| m.repetition > 1);
    let line = |m: &Measurement, values: Vec<(f64, f64)>| Series {
        name: if several { format!("{} r{}", m.architecture, m.repetition) } else { m.architecture.clone() },
        colour: svg::architecture_colour(&m.architecture),
        style: svg::Style::of_repetition(m.repetition),
        values,
    };
    let per_second = |m: &Measurement, pick: fn(&data::SecondData) -> u64| -> Vec<(f64, f64)> {
        m.timeline.iter().enumerate().map(|(second, s)| (second as f64, pick(s) as f64)).collect()
    };
    let panel = |y_label: &str, y_scale, series: Vec<Series>, rules: Vec<svg::Rule>| svg::Panel {
        y_label: y_label.into(),
        y_scale,
        series,
        rules,
    };
    let mut panels = vec![
        panel(
            "answers/s",
            svg::Scale::Linear,
            steps.iter().map(|m| line(m, per_second(m, |s| s.ok + s.degraded))).collect(),
            vec![svg::Rule { label: "offered".into(), y: rate }],
        ),
        panel(
            "failed/s",
            svg::Scale::Linear,
            steps.iter().map(|m| line(m, per_second(m, |s| s.failed))).collect(),
            Vec::new(),
        ),
    ];
    if run.schema_version >= 3 {
        let degraded = steps.iter().map(|m| line(m, per_second(m, |s| s.degraded))).collect();
        panels.push(panel("degraded/s", svg::Scale::Linear, degraded, Vec::new()));
    }
    if steps.iter().any(|m| m.timeline.iter().any(|s| s.generator_lag.is_some())) {
        let mut lag = Vec::new();
        for m in steps {
            let mut values = Vec::new();
            for (second, s) in m.timeline.iter().enumerate() {
                if let Some(histogram) = &s.generator_lag {
                    values.push((second as f64, Percentiles::of(&histogram.decode()?).p99 as f64 / 1000.0));
                }
            }
            lag.push(line(m, values));
        }
        panels.push(panel("lag p99, ms (log)", svg::Scale::Log, lag, Vec::new()));
    }
    Ok(svg::Figure {
        title: format!("Sweep step at {rate:.0}/s offered, per second"),
        x_label: "second of the measured window".into(),
        x_scale: svg::Scale::Linear,
        panels,
    })
}

/// `n (x.xxx%)` of `of`.
fn share(n: u64, of: u64) -> String {
    format!("{n} ({:.3}%)", n as f64 * 100.0 / of.max(1) as f64)
}

/// Table cells of every request's percentiles, or `n/a` where the run did not keep them.
fn all_cells(all: Option<&Percentiles>, picks: &[fn(&Percentiles) -> u64]) -> String {
    let cells: Vec<String> =
        picks.iter().map(|pick| all.map_or_else(|| "n/a".to_string(), |p| human_micros(pick(p)))).collect();
    cells.join(" | ")
}

/// The seeds row: the base seed and what each repetition drew from it.
fn seeds_description(run: &RunData) -> String {
    let base = run.config.seed;
    let mut by_repetition: BTreeMap<u32, crate::drive::RepetitionSeeds> = BTreeMap::new();
    for seeds in run.measurements.iter().filter_map(|m| m.seeds) {
        by_repetition.insert(seeds.repetition, seeds);
    }
    if by_repetition.is_empty() {
        // Recorded before per-repetition seeds: one schedule for every window.
        return format!("base {base}: schedule seed {base} in every window, workload seed {base} + repetition");
    }
    let each: Vec<String> = by_repetition
        .values()
        .map(|s| format!("repetition {}: schedule {}, workload {}", s.repetition, s.schedule, s.workload))
        .collect();
    format!("base {base} (`--seed`); {} (both architectures alike within a repetition)", each.join("; "))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The architectures of `windows`, each once, in the order they first appear.
fn architectures_in_order<'a>(windows: impl IntoIterator<Item = &'a Measurement>) -> Vec<&'a str> {
    distinct_in_order(windows.into_iter().map(|m| m.architecture.as_str()))
}

/// Each distinct item once, in the order first seen (the lists are short: a linear search).
pub(crate) fn distinct_in_order<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// The sweep's windows grouped by architecture (in the order first swept), then repetition,
/// each group in the order measured: the architectures' searches advance in turns, so
/// run.json holds their windows interleaved.
fn sweep_by_architecture(run: &RunData) -> Vec<&Measurement> {
    let order = architectures_in_order(run.sweep_measurements());
    let mut windows: Vec<&Measurement> = run.sweep_measurements().collect();
    windows.sort_by_key(|m| (order.iter().position(|a| *a == m.architecture), m.repetition));
    windows
}

/// The sweep's failed attempts by how they failed ([`FailureShape`]), and for each one that
/// recovered what the generator and the cores did while it missed: the evidence a reader needs
/// to tell a passing accident from a capacity limit. Attempts set aside as disturbed are left
/// out (the step table lists them).
fn failed_attempts_section(md: &mut String, run: &RunData, objective: &Objective) -> anyhow::Result<()> {
    let degraded_ok = run.config.degraded_ok;
    let mut failed = Vec::new();
    for m in run.sweep_measurements() {
        let set_aside = m.sweep_step.is_some_and(|s| s.disturbed);
        if !set_aside && !m.verdict(objective, degraded_ok)?.sustainable {
            failed.push((m, failure_shape(m, objective, degraded_ok)?));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        md,
        "\n### How the failed attempts failed\n\nEach second of a failed attempt (numbered from 0, as in `timelines/`) is judged alone: it misses when its p99 of every request exceeds the objective, or it alone holds more failures than the whole window's error budget allows. *Overload*: every second from some point to the window's end missed, so the backlog was there at its end, as past capacity. *Recovered*: seconds missed and the window ended on seconds that met the objective, so the system drained its backlog; near capacity a burst of the Poisson schedule does that as well as a pause of the machine, so the shape names no cause: the columns below are the evidence. *Spread*: no second missed alone. Attempts set aside as disturbed are not counted here.\n\n| architecture | overload | recovered | spread |\n|---|---|---|---|"
    );
    for architecture in architectures_in_order(failed.iter().map(|(m, _)| *m)) {
        let count = |wanted: fn(&Option<FailureShape>) -> bool| {
            failed.iter().filter(|(m, shape)| m.architecture == architecture && wanted(shape)).count()
        };
        let _ = writeln!(
            md,
            "| {architecture} | {} | {} | {} |",
            count(|s| matches!(s, Some(FailureShape::Overload { .. }))),
            count(|s| s.is_some_and(|s| s.recovered())),
            count(|s| matches!(s, Some(FailureShape::Spread) | None))
        );
    }
    let recovered: Vec<_> = failed
        .iter()
        .filter_map(|(m, shape)| match shape {
            Some(FailureShape::Recovered { first_bad, last_bad, .. }) => Some((m, *first_bad, *last_bad, shape)),
            _ => None,
        })
        .collect();
    if recovered.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        md,
        "\nThe failures that recovered, with what happened meanwhile. Lag: the generator's worst per-second lag p99 (due to last byte written) in the seconds that missed; it includes connecting and waiting for the socket to take the bytes, so a server too busy to accept or read shows up in it too, not only a generator that stopped. Connections: opened by the generator in those seconds (the pool opened before the window ran out). CPU outside the run and steal: over the whole window, as shares of a core, on the generator's / the system's cores (outside the run: anything but the run's processes, the kernel's work for the run included).\n\n| architecture | repetition | offered req/s | attempt | shape | from the first second? | generator lag p99 | connections opened | CPU outside the run (generator / system) | max steal (generator / system) |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (m, first_bad, last_bad, shape) in recovered {
        let lags = m.lag_per_second()?;
        let lag = lags[first_bad..=last_bad]
            .iter()
            .filter_map(|h| h.as_ref().filter(|h| !h.is_empty()).map(|h| h.value_at_quantile(0.99)))
            .max()
            .map_or_else(|| "n/a".to_string(), human_micros);
        let opened: Option<u64> = m.timeline[first_bad..=last_bad].iter().map(|s| s.connections_opened).sum();
        let groups = m.interference().unwrap_or_default();
        let per_group = |value: fn(&data::Interference) -> f64| {
            let shares: Vec<String> = groups.iter().map(|g| format!("{:.1}%", value(g) * 100.0)).collect();
            if shares.is_empty() { "n/a".to_string() } else { shares.join(" / ") }
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {} | {lag} | {} | {} | {} |",
            m.architecture,
            m.repetition,
            m.offered_rate.unwrap_or(0.0),
            m.sweep_step.map_or(1, |s| s.attempt),
            shape.map_or_else(String::new, |s| s.describe()),
            if first_bad == 0 { "yes" } else { "no" },
            opened.map_or_else(|| "n/a".to_string(), |n| n.to_string()),
            per_group(|g| g.outside_share_of_a_core),
            per_group(|g| g.max_steal_share),
        );
    }
    Ok(())
}

/// Warnings a reader must see next to the numbers.
pub fn warnings(m: &Measurement) -> anyhow::Result<Vec<String>> {
    // A sweep has many windows per architecture: say which one.
    let window = match (m.phase.as_str(), m.offered_rate) {
        ("sweep", Some(rate)) => {
            format!("{} (sweep step {rate:.0} req/s, repetition {})", m.architecture, m.repetition)
        }
        _ => m.architecture.clone(),
    };
    let mut warnings = Vec::new();
    let lag = Percentiles::of(&m.generator_lag.decode()?);
    if lag.p99 > LAG_WARNING_US {
        // Which seconds, where they were recorded.
        let seconds: Vec<(usize, u64)> = m
            .lag_per_second()?
            .iter()
            .enumerate()
            .filter_map(|(i, h)| Some((i, Percentiles::of(h.as_ref()?).p99)))
            .filter(|(_, p99)| *p99 > LAG_WARNING_US)
            .collect();
        let detail = match seconds.iter().max_by_key(|(_, p99)| *p99) {
            Some((worst, p99)) => format!(
                " in {} of {} seconds, worst second {worst} (p99 {})",
                seconds.len(),
                m.timeline.len(),
                human_micros(*p99)
            ),
            None => String::new(),
        };
        warnings.push(format!(
            "{window}: the generator wrote requests late (lag at send p99 {} > {}{detail}): latencies include the generator's own delay",
            human_micros(lag.p99),
            human_micros(LAG_WARNING_US)
        ));
    }
    if let Some(opened) = m.connections_opened().filter(|&n| n > 0) {
        warnings.push(format!(
            "{window}: the generator opened {opened} connections during the measured window (at most {} in one second; {} opened before it): their connects are in those requests' latency",
            m.most_connections_opened_in_a_second().unwrap_or(0),
            m.connections_preopened.map_or_else(|| "unknown".to_string(), |n| n.to_string())
        ));
    }
    let overflow = m.failures_by_kind().get("overflow").copied().unwrap_or(0);
    if overflow > 0 {
        warnings.push(format!("{window}: {overflow} requests were not sent because the in-flight limit was reached"));
    }
    let degraded = m.degraded();
    if degraded > 0 {
        warnings
            .push(format!("{window}: {degraded} answers were degraded (product pages missing inventory or reviews)"));
    }
    warnings.extend(interference_warnings(m));
    Ok(warnings)
}

/// The window a warning is about: the architecture, and a sweep step's rate and repetition.
fn window_name(m: &Measurement) -> String {
    match (m.phase.as_str(), m.offered_rate) {
        ("sweep", Some(rate)) => {
            format!("{} (sweep step {rate:.0} req/s, repetition {})", m.architecture, m.repetition)
        }
        _ => m.architecture.clone(),
    }
}

/// Warnings when something outside the run took more than [`INTERFERENCE_WARNING_SHARE`] of a
/// core on the run's cores, or the hypervisor stole that much of one of them.
pub fn interference_warnings(m: &Measurement) -> Vec<String> {
    let window = window_name(m);
    let mut warnings = Vec::new();
    for group in m.interference().unwrap_or_default() {
        let cores = format!("{} core(s) {:?}", group.group, group.cores);
        if group.outside_share_of_a_core > INTERFERENCE_WARNING_SHARE {
            warnings.push(format!(
                "{window}: processes outside the run used {:.1}% of a core on the {cores} ({:.2} CPU s busy, {:.2} of them this run's)",
                group.outside_share_of_a_core * 100.0,
                group.busy_seconds,
                group.ours_seconds
            ));
        }
        if group.max_steal_share > INTERFERENCE_WARNING_SHARE {
            warnings.push(format!(
                "{window}: the hypervisor stole up to {:.1}% of a core on the {cores}",
                group.max_steal_share * 100.0
            ));
        }
    }
    warnings
}

/// The "Generator" section: per window, the lag at send and the connections the generator
/// opened (ahead of the window, and during it).
fn generator_section(md: &mut String, run: &RunData) -> anyhow::Result<()> {
    if run.measurements.is_empty() {
        return Ok(());
    }
    let _ = writeln!(md, "\n## Generator\n");
    let _ = writeln!(
        md,
        "Lag: from each request's due time to its last byte written to the socket; a window warns when its p99 exceeds {} (seconds over: seconds of the window whose own p99 did). Connections: opened before the schedule started (the expected in-flight count: rate × {} ms, at least {}, at most the in-flight limit), opened during the measured window (each one's connect inside a request's latency), and the most open at once. n/a: not recorded by the run.\n",
        human_micros(LAG_WARNING_US),
        // Runs that did not record it sized the pool for 20 ms.
        run.config.pool_latency_ms.unwrap_or(20.0),
        crate::drive::OpenLoop::MIN_POOL
    );
    let _ = writeln!(
        md,
        "| architecture | window | lag p50 | lag p99 | lag max | seconds over | connections opened before | opened during (most in a second) | most open |\n|---|---|---|---|---|---|---|---|---|"
    );
    let na = |n: Option<u64>| n.map_or_else(|| "n/a".to_string(), |n| n.to_string());
    for m in &run.measurements {
        let window = match (m.phase.as_str(), m.offered_rate) {
            ("sweep", Some(rate)) => format!("sweep step {rate:.0} req/s, repetition {}", m.repetition),
            (phase, _) => phase.to_string(),
        };
        let lag = Percentiles::of(&m.generator_lag.decode()?);
        let per_second = m.lag_per_second()?;
        let over = if per_second.iter().all(Option::is_none) {
            "n/a".to_string()
        } else {
            let n = per_second.iter().flatten().filter(|h| Percentiles::of(h).p99 > LAG_WARNING_US).count();
            format!("{n} of {}", per_second.len())
        };
        let during = match (m.connections_opened(), m.most_connections_opened_in_a_second()) {
            (Some(total), Some(most)) => format!("{total} ({most})"),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {window} | {} | {} | {} | {over} | {} | {during} | {} |",
            m.architecture,
            human_micros(lag.p50),
            human_micros(lag.p99),
            human_micros(lag.max),
            na(m.connections_preopened),
            na(m.peak_connections_open())
        );
    }
    Ok(())
}

/// Which system a consistency check covered: the architecture, and for a sweep its repetition
/// (the check follows the last step of the sweep and covers every step before it).
pub fn checked_system(m: &Measurement) -> String {
    match m.phase.as_str() {
        "main" => m.architecture.clone(),
        phase => format!("{} ({phase}, repetition {})", m.architecture, m.repetition),
    }
}

/// Violations listed in report.md (the counts cover them all).
const REPORTED_VIOLATIONS: usize = 20;

/// The "Consistency" section: violations per invariant per checked system, then the first
/// violations. Runs recorded before checking existed have none.
fn consistency_section(md: &mut String, run: &RunData) {
    let merged = data::merged_checks(run);
    if merged.is_empty() {
        return;
    }
    let checked: Vec<(String, &data::ConsistencyCheck)> =
        merged.iter().map(|(system, check, _)| (system.clone(), check)).collect();
    let _ = writeln!(md, "\n## Consistency\n");
    let _ = writeln!(
        md,
        "After the last window of each started system the harness waited until no checkout was in progress (at most three recovery deadlines), then read its databases and checked the books (`splitbench check`). Each sweep step runs on a system of its own (fresh databases); a sweep's column sums its steps' checks. Each cell counts violations.\n"
    );
    let systems: Vec<String> = merged.iter().map(|(_, _, n)| n.to_string()).collect();
    let systems_row = format!("| systems checked | {} |", systems.join(" | "));
    let header: Vec<&str> = checked.iter().map(|(system, _)| system.as_str()).collect();
    let _ = writeln!(md, "| invariant | {} |", header.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(checked.len()));
    let cells = |cell: &dyn Fn(&ConsistencyReport) -> String| -> String {
        let cells: Vec<String> =
            checked.iter().map(|(_, c)| c.report.as_ref().map_or_else(|| "not checked".to_string(), cell)).collect();
        cells.join(" | ")
    };
    for invariant in Invariant::ALL {
        let _ = writeln!(
            md,
            "| `{invariant}`: {} | {} |",
            invariant.meaning(),
            cells(&|r: &ConsistencyReport| r.count(invariant).to_string())
        );
    }
    let _ = writeln!(md, "{systems_row}");
    let _ = writeln!(md, "| orders checked | {} |", cells(&|r: &ConsistencyReport| thousands(r.orders_checked)));
    let _ = writeln!(
        md,
        "| orders acknowledged to the client | {} |",
        cells(&|r: &ConsistencyReport| thousands(r.acknowledged_checked))
    );
    let _ = writeln!(
        md,
        "| still in progress when checked | {} |",
        cells(&|r: &ConsistencyReport| r.in_progress.to_string())
    );
    let waited: Vec<String> = checked.iter().map(|(_, c)| format!("{:.1} s", c.waited_ms as f64 / 1000.0)).collect();
    let _ = writeln!(md, "| waited for quiet | {} |", waited.join(" | "));
    let recoveries: Vec<String> =
        checked.iter().map(|(_, c)| c.recoveries.map_or_else(|| "-".to_string(), |n| thousands(n as usize))).collect();
    let _ = writeln!(md, "| checkouts settled by recovery | {} |", recoveries.join(" | "));

    for (system, check) in &checked {
        if let Some(error) = &check.error {
            let _ = writeln!(md, "\n{system}: the books could not be checked: {error}");
        }
    }
    let violations: Vec<(&String, &crate::check::Violation)> = checked
        .iter()
        .filter_map(|(s, c)| Some((s, c.report.as_ref()?)))
        .flat_map(|(s, r)| r.violations.iter().map(move |v| (s, v)))
        .collect();
    let total: usize =
        checked.iter().filter_map(|(_, c)| c.report.as_ref()).map(ConsistencyReport::total_violations).sum();
    if total > 0 {
        let shown = violations.len().min(REPORTED_VIOLATIONS);
        let _ = writeln!(md, "\n### Violations ({shown} of {} listed)\n", thousands(total));
        for (system, v) in violations.iter().take(REPORTED_VIOLATIONS) {
            let _ = writeln!(md, "- {system}, `{}`: {}", v.invariant, v.detail);
        }
    }
}

/// The environment table every report opens with (header included): commit, build, machine,
/// OS, time. `build` names the profile the measured code was built with.
pub fn environment_rows(f: &data::Fingerprint, build: &str) -> String {
    let mut md = String::from("| | |\n|---|---|\n");
    let dirty = if f.dirty { " (with uncommitted changes to the code)" } else { "" };
    let _ = writeln!(md, "| commit | `{}`{dirty} |", f.commit);
    let _ = writeln!(md, "| build | {build} ({}) |", f.rustc);
    let _ = writeln!(md, "| machine | {} × {} ({}) |", f.cpu_count, f.cpu_model, f.hostname);
    let _ = writeln!(md, "| OS | {} (kernel {}) |", f.os, f.kernel);
    let not_recorded = || "not recorded".to_string();
    let _ = writeln!(
        md,
        "| CPU topology | {} |",
        f.cpu_topology.as_ref().map_or_else(not_recorded, crate::fingerprint::describe_topology)
    );
    let _ = writeln!(
        md,
        "| kernel command line | {} |",
        f.kernel_cmdline.as_deref().map_or_else(not_recorded, |c| format!("`{}`", c.replace('|', "\\|")))
    );
    let binaries = if f.binaries.is_empty() {
        not_recorded()
    } else {
        let each: Vec<String> = f.binaries.iter().map(|b| format!("{} `{}`", b.name, b.sha256)).collect();
        each.join("<br>")
    };
    let _ = writeln!(md, "| binaries (SHA-256) | {binaries} |");
    let _ = writeln!(md, "| started | {} |", f.started_at);

    md
}

/// PSS mean and maximum as two cells, or `n/a` where not sampled.
fn pss_cells(stats: Option<data::MemoryStats>) -> String {
    stats.map_or_else(|| "n/a | n/a".to_string(), |s| format!("{} | {}", mib(s.mean_bytes), mib(s.max_bytes)))
}

/// The "CPU outside the run" section: per window and group of cores, the CPU used by
/// everything but this run's processes, and the steal time of each core.
fn interference_section(md: &mut String, run: &RunData) {
    let sampled: Vec<&Measurement> = run.measurements.iter().filter(|m| m.cores.is_some()).collect();
    if sampled.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## CPU outside the run\n");
    let _ = writeln!(
        md,
        "Per measured window, from `/proc/stat`: the busy time of each group of cores minus the CPU time of this run's processes on them (the generator's on its cores, the system under test's on theirs; every process on every core when unpinned), as a share of one core; and each core's steal time (the hypervisor running something else), as a share of that core. Kernel work done for the run but charged to no process of it (loopback packets handled by `ksoftirqd`) counts as outside, so this is an upper bound. Above {:.0}% the report warns.\n",
        INTERFERENCE_WARNING_SHARE * 100.0
    );
    let _ = writeln!(
        md,
        "| window | cores | busy CPU s | this run's CPU s | outside the run | steal per core |\n|---|---|---|---|---|---|"
    );
    for m in sampled {
        let Some(activity) = &m.cores else { continue };
        let window_secs = m.duration_secs.max(f64::EPSILON);
        for group in m.interference().unwrap_or_default() {
            let steal: Vec<String> = activity
                .cores
                .iter()
                .filter(|c| group.cores.contains(&c.core))
                .map(|c| format!("cpu{} {:.1}%", c.core, c.steal_seconds * 100.0 / window_secs))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} {:?} | {:.2} | {:.2} | {:.1}% of a core | {} |",
                window_name(m),
                group.group,
                group.cores,
                group.busy_seconds,
                group.ours_seconds,
                group.outside_share_of_a_core * 100.0,
                steal.join(", ")
            );
        }
    }
}

/// The saturation stage: each architecture's throughput with its core never idle, and the
/// monolith / microservices ratios within each round of back-to-back windows (the run's
/// headline: unlike the open loop's knee, it moves little from run to run).
fn saturation_section(md: &mut String, run: &RunData) -> anyhow::Result<()> {
    let Some(saturation) = run.saturation_summary()? else { return Ok(()) };
    let c = &run.config;
    let seconds = |secs: Option<f64>| secs.map_or_else(|| "not recorded".to_string(), |s| format!("{s} s"));
    let _ = writeln!(
        md,
        "## Saturation throughput
"
    );
    let _ = writeln!(
        md,
        "Each architecture in closed loop: {} users, each sending its next request as soon as the last is answered, so the system under test's core never waits for work and the throughput is its service rate (the open loop's knee in the sweep below usually lies under it, as a Poisson burst queues there; not always, as the service rate itself moves between the stage and the sweep). Each round starts both systems afresh (fresh databases, the same seed data) and loads them one after the other (warm-up {}, measured {}; the order reversed every other round), so a round's windows run seconds apart and share the machine's slow periods, and each ratio is taken within a round. The headline is the median over the rounds, with its distribution-free 95% interval (order statistics; it assumes independent rounds). Throughput counts answered requests (complete{}) per second; CPU is the system under test's per answered request.\n",
        saturation.users.map_or_else(|| "?".to_string(), |u| u.to_string()),
        seconds(c.saturation_warmup_secs),
        seconds(c.saturation_duration_secs),
        if c.degraded_ok { ", or degraded with `--degraded-ok`" } else { "; degraded ones are not counted" }
    );
    let _ = writeln!(
        md,
        "| architecture | throughput req/s (median, min..max) | each round | CPU µs per request, each | p99 of every request, each | errors and degraded, each |\n|---|---|---|---|---|---|"
    );
    let each = |values: &[f64], decimals: usize| -> String {
        values.iter().map(|v| format!("{v:.decimals$}")).collect::<Vec<_>>().join(", ")
    };
    for a in &saturation.architectures {
        let s = a.throughput_spread;
        let p99: Vec<String> = a.p99_us.iter().map(|p| human_micros(*p)).collect();
        let errors: Vec<String> = a.error_rate.iter().map(|e| format!("{:.3}%", e * 100.0)).collect();
        let _ = writeln!(
            md,
            "| {} | {:.0} ({:.0}..{:.0}) | {} | {} | {} | {} |",
            a.architecture,
            s.median,
            s.min,
            s.max,
            each(&a.throughput, 0),
            each(&a.cpu_us_per_request, 0),
            p99.join(", "),
            errors.join(", ")
        );
    }
    if let Some(ratio) = &saturation.throughput_ratio {
        let _ = writeln!(md, "\n**Saturation throughput, monolith / microservices: {}.**", ratio.describe());
    }
    if let Some(ratio) = &saturation.cpu_ratio {
        let _ = writeln!(
            md,
            "\nCPU per answered request, microservices / monolith: {}. While the system's core is busy the whole window, as it is in closed loop, a window's CPU per request is its CPU time over the requests it answered, so this ratio restates the throughput ratio (it differs where a window left the core idle); the cost at an equal, lower rate is another question (`--sweep-rates` shares a grid, and the report then pairs the costs at the highest rate both passed).",
            ratio.describe()
        );
    }
    for (name, ratio) in [("throughput", &saturation.throughput_ratio), ("CPU", &saturation.cpu_ratio)] {
        if let Some((first, second)) = ratio.as_ref().and_then(|r| r.drifted()) {
            let _ = writeln!(
                md,
                "\n**Warning**: the {name} ratio drifted over the rounds (median of the first half {first:.2}, of the second {second:.2}): the rounds were not alike, and the interval, which takes them as independent draws of one distribution, understates the uncertainty."
            );
        }
    }
    if let Some(objective) = c.objective {
        let failing: Vec<String> = run
            .saturation_measurements()
            .filter(|m| m.error_rate(c.degraded_ok) > objective.error_budget)
            .map(|m| format!("{} (round {})", m.architecture, m.repetition))
            .collect();
        if !failing.is_empty() {
            let _ = writeln!(
                md,
                "\nWindows with more errors than the error budget ({:.2}%): {}; their throughput counts answered requests only.",
                objective.error_budget * 100.0,
                failing.join(", ")
            );
        }
    }
    let _ = writeln!(md);
    Ok(())
}

/// The sweep's answer: each architecture's capacity as an interval (per repetition, and their
/// hull), and the monolith / microservices ratio with its interval.
fn capacity_section(md: &mut String, run: &RunData) -> anyhow::Result<()> {
    let Some(capacity) = run.capacity_summary()? else { return Ok(()) };
    let refinement = match capacity.resolution {
        Some(resolution) => format!(
            "after the grid, bisection between the highest passing and the lowest failing rate until they were at most {} apart",
            resolution.describe()
        ),
        None => "the grid alone (recorded before the sweep refined)".to_string(),
    };
    let retest = if capacity.attempts > 1 {
        format!(
            "a step whose first attempt failed was re-tested, each attempt on a fresh system with an arrival schedule of its own (passing first attempts are not re-tested, which favours passing), and failed only when {} of {} attempts failed",
            capacity.attempts / 2 + 1,
            capacity.attempts
        )
    } else {
        "each step was one attempt".to_string()
    };
    let set_aside = if run.config.sweep_sets_aside_disturbed == Some(true) {
        format!(
            " A failed attempt during which more than {:.0}% of a core on the run's cores went to anything but the run's processes (the kernel's work for the run included), or was stolen by the hypervisor, was set aside (listed, marked, not counted) and run again with the same schedule, at most {} times per step; a pass under interference stands, so this rule can only help a step pass.",
            INTERFERENCE_WARNING_SHARE * 100.0,
            capacity.attempts
        )
    } else {
        String::new()
    };
    // How far above capacity a rate can be and still pass: past capacity c, at rate r the
    // backlog's delay grows by (r/c - 1) seconds per second at the full rate, so it reaches the
    // objective only after objective / (r/c - 1) seconds.
    let detection = match (run.config.objective, run.config.sweep_warmup_secs, run.config.sweep_duration_secs) {
        (Some(objective), Some(warmup), Some(window)) if window > 0.0 => {
            let full_rate_warmup = if run.config.warmup_ramped == Some(true) { warmup / 2.0 } else { warmup };
            let limit = objective.p99_us as f64 / 1e6 / (full_rate_warmup + window);
            format!(
                " A rate above capacity passes when its backlog has not delayed requests past the objective by the window's end: with {full_rate_warmup} s at the full rate before the {window} s window, a rate up to about {:.1}% above capacity can pass (the objective over those {} s), so each capacity's upper end is uncertain by about that much besides the resolution.",
                limit * 100.0,
                full_rate_warmup + window
            )
        }
        _ => String::new(),
    };
    let _ = writeln!(
        md,
        "Capacity is an interval, [highest rate that passed with every lower rate passing too, lowest rate above it that failed): {refinement}; {retest}.{set_aside}{detection} Over repetitions the interval spans every repetition's. Overlapping intervals mean no difference can be claimed. Intervals that do not overlap show a difference only as far as they hold the variation between runs: with one repetition they bracket this run's search alone (earlier runs of the same command have differed by more than that), so use `--repeat`. The ratio's interval divides the intervals' ends.\n"
    );
    let _ = writeln!(
        md,
        "| architecture | capacity | repetitions | each repetition | highest passing (median, min..max) |\n|---|---|---|---|---|"
    );
    for a in &capacity.architectures {
        let each: Vec<String> = a.repetitions.iter().map(|r| r.describe()).collect();
        let s = a.highest_passing;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} ({:.0}..{:.0}) |",
            a.architecture,
            a.interval.describe(),
            a.repetitions.len(),
            each.join("; "),
            s.median,
            s.min,
            s.max
        );
    }
    if let Some(ratio) = &capacity.ratio {
        let _ = writeln!(md, "\n**{}**.", ratio.describe());
    }
    paired_cost(md, run)?;
    Ok(())
}

/// CPU per request of the two architectures at the highest swept rate both passed, per
/// repetition: with the sweeps taking turns their steps there ran back to back, so a slow
/// period of the machine shows in both (the head-to-head run's ratio, at a low rate and
/// minutes apart from nothing in particular, moved from 2.22 to 2.68 over three runs where this
/// one moved from 1.81 to 1.85).
fn paired_cost(md: &mut String, run: &RunData) -> anyhow::Result<()> {
    let Some(objective) = run.config.objective else { return Ok(()) };
    let passing = |architecture: &str, repetition: u32| -> anyhow::Result<Vec<&Measurement>> {
        let mut windows = Vec::new();
        for m in run.sweep_measurements() {
            let counted = !m.sweep_step.is_some_and(|s| s.disturbed);
            if m.architecture == architecture
                && m.repetition == repetition
                && counted
                && m.verdict(&objective, run.config.degraded_ok)?.sustainable
            {
                windows.push(m);
            }
        }
        Ok(windows)
    };
    let mut lines = Vec::new();
    for repetition in 1..=run.config.repeat.max(1) {
        let (monolith, microservices) = (passing("monolith", repetition)?, passing("microservices", repetition)?);
        let common = monolith
            .iter()
            .filter_map(|m| m.offered_rate)
            .filter(|rate| microservices.iter().any(|s| s.offered_rate == Some(*rate)))
            .max_by(f64::total_cmp);
        let Some(rate) = common else { continue };
        let first_at = |windows: &[&Measurement]| {
            windows.iter().find(|m| m.offered_rate == Some(rate)).map(|m| m.cpu_ms_per_request() * 1000.0)
        };
        if let (Some(mono), Some(micro)) = (first_at(&monolith), first_at(&microservices))
            && mono > 0.0
        {
            lines.push(format!(
                "repetition {repetition}, {rate:.0} req/s: monolith {mono:.0} µs, microservices {micro:.0} µs, ratio {:.2}",
                micro / mono
            ));
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(
            md,
            "\nCPU per request of the system under test at the highest rate both architectures passed (their first passing attempts there; with the sweeps taking turns they ran back to back, so a slow period of the machine weighs on both): {}.",
            lines.join("; ")
        );
    }
    Ok(())
}

fn markdown(run: &RunData, plots: &Plots) -> anyhow::Result<String> {
    let mut md = String::new();
    let f = &run.fingerprint;
    let c = &run.config;
    let _ = writeln!(md, "# splitbench report `{}`\n", run.run_id);
    let _ = writeln!(md, "Produced by `{}`.\n", c.command_line.join(" "));
    let _ = writeln!(md, "## Environment\n");
    md.push_str(&environment_rows(f, &f.build_profile));
    if let Some(secs) = run.measuring_secs {
        let _ = writeln!(
            md,
            "| took | {} min {:02} s (from the first system's start to the last one's stop, checks included; building not) |",
            (secs / 60.0).floor() as u64,
            (secs % 60.0).floor() as u64
        );
    }
    let _ = writeln!(md, "| core layout | {} |", c.core_layout);
    let _ = writeln!(md, "| database | {} |", c.database);
    let load = match (c.rate, c.users) {
        (Some(rate), _) => format!("open loop, {} arrivals at {rate} req/s", c.arrivals),
        (None, Some(users)) => format!("closed loop, {users} users, think time {} ms", c.think_time_ms.unwrap_or(0)),
        _ => "sweep only".into(),
    };
    let ramped = c.warmup_ramped == Some(true);
    const RAMP: &str = " (the rate ramped linearly from 0 over its first half)";
    let ramp = if ramped && c.rate.is_some() && c.warmup_secs > 0.0 { RAMP } else { "" };
    let _ = writeln!(
        md,
        "| load | {load}; warm-up {} s{ramp}, measured {} s; at most {} in flight; timeout {} ms |",
        c.warmup_secs,
        c.duration_secs,
        c.max_in_flight.map_or_else(crate::drive::OpenLoop::describe_default_in_flight, |n| n.to_string()),
        c.request_timeout_ms
    );
    if !c.sweep_rates.is_empty() || !c.sweep_grids.is_empty() {
        let seconds = |secs: Option<f64>| secs.map_or_else(|| "not recorded".to_string(), |s| format!("{s} s"));
        let list = |rates: &[f64]| rates.iter().map(|r| format!("{r}")).collect::<Vec<_>>().join(", ");
        let rates = if c.sweep_rates.is_empty() {
            let fractions = list(&crate::experiment::SATURATION_GRID_FRACTIONS);
            let grids: Vec<String> = c.sweep_grids.iter().map(|(a, rates)| format!("{a} {}", list(rates))).collect();
            format!("{fractions} × each architecture's median saturation throughput: {}", grids.join("; "))
        } else {
            list(&c.sweep_rates)
        };
        let _ = writeln!(
            md,
            "| sweep | rates {} req/s; each step: warm-up {}{}, measured {} |",
            rates,
            seconds(c.sweep_warmup_secs),
            if ramped && c.sweep_warmup_secs.is_some_and(|w| w > 0.0) { RAMP } else { "" },
            seconds(c.sweep_duration_secs)
        );
    }
    let weights: Vec<String> = c.mix_weights.iter().map(|(e, w)| format!("{e} {w}")).collect();
    let _ = writeln!(md, "| mix | `{}`: {} |", c.mix, weights.join(", "));
    let _ =
        writeln!(md, "| seeds | {}; {} users logged in before measuring |", seeds_description(run), c.logged_in_users);
    let _ = writeln!(
        md,
        "| degraded answers | {} |",
        if c.degraded_ok {
            "count as successes (`--degraded-ok`)"
        } else {
            "count against the error budget and thresholds"
        }
    );
    let _ = writeln!(md, "| shop settings (every process) | `{}` |", c.shop_settings.join(" "));
    let _ = writeln!(md);

    saturation_section(&mut md, run)?;
    let main: Vec<&Measurement> = run.main_measurements().collect();
    let mut all_warnings = Vec::new();
    if !main.is_empty() {
        let _ = writeln!(md, "## Head to head\n");
        let _ = writeln!(
            md,
            "Latency is measured from each request's due time (open loop), so queueing is included; service time is from when it was sent. p50 to max are the successes' (complete, correct answers); the *all* columns count every request, degraded answers and failures included, each at the time it ended: a failure when its answer arrived, a timeout when it timed out, an overflow (never sent) at the request timeout, as a client that waited in vain. Degraded answers (product pages missing inventory or reviews) are not successes{}.\n",
            if c.degraded_ok {
                " but were counted as such here (`--degraded-ok`)"
            } else {
                ": they count against the error budget and the `errors` threshold"
            }
        );
        let _ = writeln!(
            md,
            "| architecture | offered req/s | achieved req/s | errors | degraded | p50 | p90 | p99 | p99.9 | max | all p50 | all p90 | all p99 | all p99.9 | all max |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for m in &main {
            let p = m.total_percentiles()?;
            let all = m.all_requests_percentiles()?;
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.architecture,
                m.offered_rate.map_or("closed loop".into(), |r| format!("{r:.0}")),
                m.achieved_rate(c.degraded_ok),
                share(m.failed(), m.attempted()),
                share(m.degraded(), m.attempted()),
                human_micros(p.p50),
                human_micros(p.p90),
                human_micros(p.p99),
                human_micros(p.p999),
                human_micros(p.max),
                all_cells(all.as_ref(), &[|p| p.p50, |p| p.p90, |p| p.p99, |p| p.p999, |p| p.max]),
            );
            all_warnings.extend(warnings(m)?);
        }
        let _ = writeln!(
            md,
            "\nMemory: *SUT PSS* is the system under test's proportional set size (each shared page split among the processes mapping it), summed over its processes once a second during the window: the mean and the maximum of those sums. *Sum of peak RSS* adds each process's lifetime peak (`VmHWM`, start-up included), counting shared pages once per process: an overstatement kept for comparison with older runs.\n"
        );
        let _ = writeln!(
            md,
            "| architecture | CPU ms/request | context switches/request | SUT CPU s | SUT PSS mean | SUT PSS max | sum of peak RSS | generator CPU s | generator lag p99 |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        for m in &main {
            let lag = Percentiles::of(&m.generator_lag.decode()?);
            let _ = writeln!(
                md,
                "| {} | {:.3} | {} | {:.2} | {} | {} | {:.2} | {} |",
                m.architecture,
                m.cpu_ms_per_request(),
                m.sut_context_switches_per_request().map_or_else(|| "n/a".to_string(), |s| format!("{s:.1}")),
                m.sut_cpu_seconds(),
                pss_cells(m.sut_pss()),
                mib(m.sut_peak_rss_bytes()),
                m.generator.cpu_seconds,
                human_micros(lag.p99),
            );
        }
        let _ = writeln!(md, "\n### Per endpoint\n");
        let _ = writeln!(
            md,
            "| endpoint | architecture | ok | degraded | failed | p50 | p90 | p99 | p99.9 | max | all p50 | all p99 | all max | service time p50 | service time p99 |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let mut endpoints: Vec<&String> = main.iter().flat_map(|m| m.endpoints.keys()).collect();
        endpoints.sort();
        endpoints.dedup();
        for endpoint in endpoints {
            for m in &main {
                let Some(data) = m.endpoints.get(endpoint) else { continue };
                let p = Percentiles::of(&data.latency.decode()?);
                let all = data.all_requests()?.as_ref().map(Percentiles::of);
                let s = Percentiles::of(&data.service_time.decode()?);
                let _ = writeln!(
                    md,
                    "| {endpoint} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    m.architecture,
                    data.ok,
                    data.degraded,
                    data.failed(),
                    human_micros(p.p50),
                    human_micros(p.p90),
                    human_micros(p.p99),
                    human_micros(p.p999),
                    human_micros(p.max),
                    all_cells(all.as_ref(), &[|p| p.p50, |p| p.p99, |p| p.max]),
                    human_micros(s.p50),
                    human_micros(s.p99)
                );
            }
        }
        let _ = writeln!(md, "\n### Errors by kind\n");
        for m in &main {
            let mut list: Vec<String> = m.failures_by_kind().iter().map(|(k, n)| format!("{k} × {n}")).collect();
            if list.is_empty() {
                list.push("none".into());
            }
            let degraded = match m.degraded() {
                0 => String::new(),
                n => format!("; and {n} degraded answers"),
            };
            let _ = writeln!(md, "- {}: {}{degraded}", m.architecture, list.join(", "));
        }
        let _ = writeln!(md, "\n### Cost per process\n");
        let _ = writeln!(
            md,
            "Per request: per answered request of the window (complete or degraded). The generator keeps its core busy while it waits, so its CPU is an upper bound on its work.\n"
        );
        let _ = writeln!(
            md,
            "| architecture | process | CPU seconds | CPU µs per request | context switches per request | PSS mean | PSS max | peak RSS (lifetime) |\n|---|---|---|---|---|---|---|---|"
        );
        for m in &main {
            for (name, p) in m.processes.iter().map(|p| (p.name.as_str(), p)).chain([("(generator)", &m.generator)]) {
                let (cpu_us, switches) = m.per_request(p);
                let pss = m.memory.as_ref().and_then(|memory| memory.process(&p.name)).and_then(data::PssSeries::stats);
                let _ = writeln!(
                    md,
                    "| {} | {name} | {:.2} | {cpu_us:.0} | {} | {} | {} |",
                    m.architecture,
                    p.cpu_seconds,
                    switches.map_or_else(|| "n/a".to_string(), |s| format!("{s:.1}")),
                    pss_cells(pss),
                    mib(p.peak_rss_bytes)
                );
            }
        }
    }

    if run.sweep_measurements().next().is_some() {
        let _ = writeln!(md, "\n## Rate sweep\n");
        if let Some(objective) = &run.config.objective {
            let degraded = if c.degraded_ok { "" } else { " and degraded answers" };
            let _ = writeln!(
                md,
                "A rate is sustainable when the p99 of every request (failures included, each at the time it ended) ≤ {}, errors (failures{degraded}) ≤ {:.3}% and at least {:.0}% of the requests that came due succeeded within the window. The successes-only p99 is shown beside it but not judged; the p99's 95% interval is distribution-free (order statistics of the step's samples: the ranks l, u with P(X_(l) ≤ p99 ≤ X_(u)) ≥ 95% under the binomial distribution, read from the histogram). That interval assumes independent requests: latencies within a window are correlated (one stall delays many requests in a row), so it is narrower than the real uncertainty, and it leaves out the variation between runs.\n",
                human_micros(objective.p99_us),
                objective.error_budget * 100.0,
                objective.min_achieved_fraction * 100.0
            );
            let mut unknown = Vec::new();
            for m in run.sweep_measurements() {
                if m.all_requests_latency()?.is_none() {
                    unknown.push(format!("{} {:.0} req/s", m.architecture, m.offered_rate.unwrap_or(0.0)));
                }
            }
            if !unknown.is_empty() {
                let _ = writeln!(
                    md,
                    "This run was recorded before every request's latency was kept; where a step had failures ({}), its p99 is the successes' alone, as it was judged then.\n",
                    unknown.join(", ")
                );
            }
            capacity_section(&mut md, run)?;
            let steps = run.decided_sweep_steps(objective)?;
            let _ = writeln!(
                md,
                "\n| architecture | repetition | offered req/s | step | attempt | achieved req/s | errors | degraded | p50 | p99 | p99 (all requests) | its 95% interval | attempt passed | step decided |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            );
            for m in sweep_by_architecture(run) {
                let p = m.total_percentiles()?;
                let offered = m.offered_rate.unwrap_or(0.0);
                let verdict = m.verdict(objective, c.degraded_ok)?;
                let step = steps
                    .iter()
                    .find(|s| s.architecture == m.architecture && s.repetition == m.repetition && s.rate == offered);
                let decided = match step {
                    _ if m.sweep_step.is_some_and(|s| s.disturbed) => {
                        "set aside: disturbed from outside the run, not counted".to_string()
                    }
                    Some(s) => match s.passed {
                        Some(true) => "passed".to_string(),
                        Some(false) => format!(
                            "failed ({} of {} attempts)",
                            s.attempts.iter().filter(|a| !a.sustainable).count(),
                            s.attempts.len()
                        ),
                        None => "undecided".to_string(),
                    },
                    None => "-".to_string(),
                };
                let (stage, attempt) = match m.sweep_step {
                    Some(step) => (format!("{:?}", step.stage).to_lowercase(), step.attempt),
                    None => ("grid".to_string(), 1),
                };
                let interval = QuantileInterval::p99(&m.judged_latency()?).map_or_else(|| "-".into(), |i| i.describe());
                let _ = writeln!(
                    md,
                    "| {} | {} | {offered:.0} | {stage} | {attempt} | {:.1} | {:.3}% | {:.3}% | {} | {} | {} | {interval} | {} | {decided} |",
                    m.architecture,
                    m.repetition,
                    m.achieved_rate(c.degraded_ok),
                    m.failure_rate() * 100.0,
                    m.degraded_rate() * 100.0,
                    human_micros(p.p50),
                    human_micros(p.p99),
                    all_cells(m.all_requests_percentiles()?.as_ref(), &[|p| p.p99]),
                    if verdict.sustainable {
                        "yes".to_string()
                    } else {
                        failure_shape(m, objective, c.degraded_ok)?
                            .map_or_else(|| "no".to_string(), |shape| format!("no: {}", shape.describe()))
                    }
                );
                all_warnings.extend(warnings(m)?);
            }
            failed_attempts_section(&mut md, run, objective)?;
            let _ = writeln!(
                md,
                "\n### Cost per request at each step\n\nCPU time and context switches of the system under test per answered request (complete or degraded), and each process's share of the CPU.\n\n| architecture | repetition | offered req/s | CPU µs per request | context switches per request | CPU µs per request by process |\n|---|---|---|---|---|---|"
            );
            for m in sweep_by_architecture(run) {
                let by_process: Vec<String> = m
                    .processes
                    .iter()
                    .filter(|p| p.cpu_seconds > 0.0)
                    .map(|p| format!("{} {:.0}", p.name, m.per_request(p).0))
                    .collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.0} | {:.0} | {} | {} |",
                    m.architecture,
                    m.repetition,
                    m.offered_rate.unwrap_or(0.0),
                    m.cpu_ms_per_request() * 1000.0,
                    m.sut_context_switches_per_request().map_or_else(|| "n/a".to_string(), |s| format!("{s:.1}")),
                    by_process.join(", ")
                );
            }
        }
    }

    generator_section(&mut md, run)?;
    consistency_section(&mut md, run);
    interference_section(&mut md, run);

    if !all_warnings.is_empty() {
        let _ = writeln!(md, "\n## Warnings\n");
        for w in &all_warnings {
            let _ = writeln!(md, "- {w}");
        }
    }
    if !plots.files.is_empty() {
        let _ = writeln!(md, "\n## Plots\n");
        for (file, title) in &plots.files {
            let _ = writeln!(md, "![{title}]({file})\n");
        }
    }
    let _ = writeln!(md, "\n## Files\n");
    let per_endpoint_seconds = run.measurements.iter().any(|m| m.timeline.iter().any(|s| s.endpoints.is_some()));
    let _ = writeln!(
        md,
        "- `run.json`: the raw data (schema version {}): histograms per endpoint and per second{}, costs, per-second PSS of every process, every core's busy and steal time per window, settings, fingerprint.",
        run.schema_version,
        if per_endpoint_seconds {
            ", and each endpoint's per second with its ok, degraded and failed requests (failures by kind)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "- `histograms/*.hlog`: HdrHistogram interval logs (per second, and per endpoint over the window), microseconds."
    );
    let _ = writeln!(
        md,
        "- `timelines/*.csv`: per-second offered load, successes, degraded answers, failures (in all and by kind, `failed_<kind>`, one column per kind that occurred in the run), latency percentiles of the successes and of every request, the generator's lag at send, and the connections it opened and had open."
    );
    if per_endpoint_seconds {
        let _ = writeln!(
            md,
            "- `timelines/by_endpoint/*.csv`: the same seconds per endpoint, one row per second and endpoint (an `endpoint` column): successes, degraded answers, failures in all and by kind, latency percentiles of the successes and of every request."
        );
    }
    let _ = writeln!(
        md,
        "- `logs/<n>-<architecture>-<process>.log`: every process's output, `<n>` numbering the systems in the order they were started (each sweep step and each head-to-head run starts its own)."
    );
    let _ = writeln!(md, "\nRebuild this report from the raw data with `splitbench report <this directory>`.");
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Endpoint, Failure, Outcome, Recorder, Verdict};
    use data::ProcessCost;

    /// Two seconds: in the first, two ok searches and a 503 checkout; in the second, a timed-out
    /// search and a degraded product page.
    fn two_seconds() -> Measurement {
        let mut recorder = Recorder::new(Duration::ZERO);
        let requests = [
            (Endpoint::Search, 100, 1_000, Verdict::Ok),
            (Endpoint::Search, 200, 3_000, Verdict::Ok),
            (Endpoint::Checkout, 300, 5_000, Verdict::Failed(Failure::Status(503))),
            (Endpoint::Search, 1_100, 2_000_000, Verdict::Failed(Failure::Timeout)),
            (Endpoint::ProductPage, 1_200, 4_000, Verdict::Degraded),
        ];
        for (endpoint, due_ms, latency_us, verdict) in requests {
            let (due, latency) = (Duration::from_millis(due_ms), Duration::from_micros(latency_us));
            recorder.record_due(due, Duration::from_micros(2));
            recorder.record(&Outcome { endpoint, due, latency, service_time: latency, verdict });
        }
        let generator =
            ProcessCost { name: "generator".into(), cpu_seconds: 0.0, peak_rss_bytes: 0, context_switches: 0 };
        Measurement::from_recorder("monolith", "main", Some(2.5), 1, 2.0, &recorder, vec![], generator)
    }

    /// The rows of a CSV as maps from column to cell, checking every row has every column.
    fn rows(csv: &str) -> Vec<BTreeMap<String, String>> {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        lines
            .map(|line| {
                let cells: Vec<&str> = line.split(',').collect();
                assert_eq!(cells.len(), header.len(), "{line}");
                header.iter().zip(cells).map(|(h, c)| (h.to_string(), c.to_string())).collect()
            })
            .collect()
    }

    #[test]
    fn the_timeline_has_a_column_per_failure_kind_of_the_run() {
        let m = two_seconds();
        // `overflow` happened in another window of the run: a column of zeros here.
        let kinds: Vec<String> = ["overflow", "status_503", "timeout"].map(String::from).into();
        let csv = timeline_csv(&m, &kinds).expect("decodes");
        assert!(csv.starts_with("second,due,ok,degraded,failed,"));
        assert!(csv.lines().next().expect("header").ends_with(",failed_overflow,failed_status_503,failed_timeout"));
        let rows = rows(&csv);
        let by_kind = |row: &BTreeMap<String, String>| {
            ["failed", "failed_overflow", "failed_status_503", "failed_timeout"].map(|c| row[c].clone())
        };
        assert_eq!(by_kind(&rows[0]), ["1", "0", "1", "0"]);
        assert_eq!(by_kind(&rows[1]), ["1", "0", "0", "1"]);

        // A run recorded before the kinds were kept per second: the cells are empty, not 0.
        let mut old = m.clone();
        old.timeline.iter_mut().for_each(|s| (s.failures, s.endpoints) = (None, None));
        let rows = super::tests::rows(&timeline_csv(&old, &kinds).expect("decodes"));
        assert_eq!(by_kind(&rows[0]), ["1", "", "", ""]);
        assert_eq!(endpoint_timeline_csv(&old, &kinds).expect("decodes"), None, "no per-endpoint file");
    }

    #[test]
    fn a_sweep_steps_re_tests_get_files_of_their_own() {
        let mut m = two_seconds();
        assert_eq!(measurement_stem(&m), "monolith-main-2rps-r1");
        m.phase = "sweep".into();
        m.sweep_step = Some(data::SweepStep { stage: crate::analyse::SweepStage::Grid, attempt: 1, disturbed: false });
        assert_eq!(measurement_stem(&m), "monolith-sweep-2rps-r1", "the first attempt keeps the name it had");
        m.sweep_step = Some(data::SweepStep { stage: crate::analyse::SweepStage::Grid, attempt: 2, disturbed: false });
        assert_eq!(measurement_stem(&m), "monolith-sweep-2rps-r1-a2");
    }

    #[test]
    fn the_endpoint_timeline_has_a_row_per_second_and_endpoint() {
        let m = two_seconds();
        let kinds: Vec<String> = ["status_503", "timeout"].map(String::from).into();
        let csv = endpoint_timeline_csv(&m, &kinds).expect("decodes").expect("recorded per endpoint");
        assert!(csv.starts_with("second,endpoint,ok,degraded,failed,p50_us,"), "{csv}");
        let rows = rows(&csv);
        let cells = |row: &BTreeMap<String, String>| {
            [
                "second",
                "endpoint",
                "ok",
                "degraded",
                "failed",
                "failed_status_503",
                "failed_timeout",
                "p99_us",
                "all_max_us",
            ]
            .map(|c| row[c].clone())
        };
        let expected = [
            ["0", "checkout", "0", "0", "1", "1", "0", "", "5003"],
            ["0", "product_page", "0", "0", "0", "0", "0", "", ""],
            ["0", "search", "2", "0", "0", "0", "0", "3001", "3001"],
            ["1", "checkout", "0", "0", "0", "0", "0", "", ""],
            ["1", "product_page", "0", "1", "0", "0", "0", "", "4001"],
            ["1", "search", "0", "0", "1", "0", "1", "", "2000895"],
        ];
        assert_eq!(rows.iter().map(cells).collect::<Vec<_>>(), expected.map(|row| row.map(String::from)));
    }
}
