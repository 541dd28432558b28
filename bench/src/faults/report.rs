//! A fault run's results directory: `faults.json` (everything measured), `faults.md` (the
//! matrix, then per scenario the phases per endpoint, blast radius, recovery and the books),
//! `timelines/<scenario>-<architecture>[-<profile>].csv` (100 ms slices) and `<scenario>.svg` (both
//! architectures over time, the fault's window marked).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::analysis::Phase;
use super::inject::FaultParameters;
use super::run::{FaultRun, Trigger};
use super::{FaultTiming, Scenario};
use crate::analyse::{Objective, human_micros};
use crate::report::data::Fingerprint;
use crate::report::distinct_in_order;
use crate::report::svg;

/// Everything `splitbench faults` measured, as `faults.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultReport {
    pub schema_version: u32,
    pub run_id: String,
    pub fingerprint: Fingerprint,
    pub command_line: Vec<String>,
    pub rate: f64,
    /// The generator's bound on requests in flight.
    pub max_in_flight: usize,
    pub request_timeout_ms: u64,
    pub mix: String,
    pub timing: FaultTiming,
    pub parameters: FaultParameters,
    pub objective: Objective,
    pub degraded_ok: bool,
    pub database: String,
    pub core_layout: String,
    pub shop_settings: Vec<String>,
    pub runs: Vec<FaultRun>,
    /// Runs that could not finish, and why.
    pub failed: Vec<FailedRun>,
    /// Runs left out by design, and why (a network fault on the monolith, which has no
    /// network between its modules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_run: Vec<FailedRun>,
    pub measuring_secs: f64,
    /// Runs planned per scenario, trigger and architecture (`--repeat`; 1 in files written
    /// before it existed).
    #[serde(default = "one_run")]
    pub repeat: u32,
}

fn one_run() -> u32 {
    1
}

/// A scenario run that failed (its system was stopped; the others went on).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedRun {
    pub scenario: Scenario,
    pub architecture: String,
    pub error: String,
}

pub const FAULT_SCHEMA_VERSION: u32 = 1;

/// Writes the whole directory.
pub fn write(dir: &Path, report: &FaultReport) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(dir.join("faults.json"), json).context("writing faults.json")?;
    write_derived(dir, report)
}

/// Rebuilds everything but `faults.json` from it (`splitbench report <dir>`).
pub fn rebuild(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("faults.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let report: FaultReport = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(
        report.schema_version <= FAULT_SCHEMA_VERSION,
        "faults.json has schema version {}; this splitbench reads up to {FAULT_SCHEMA_VERSION}",
        report.schema_version
    );
    write_derived(dir, &report)
}

/// faults.md, the CSV timelines and the plots, all from the report's data.
fn write_derived(dir: &Path, report: &FaultReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("timelines"))?;
    for run in &report.runs {
        let mut stem =
            format!("{}-{}", group_slug(report, &run.scenario, &run.trigger(&report.parameters)), run.slug());
        if report.repeat > 1 {
            stem.push_str(&format!("-r{}", run.repetition));
        }
        let file = dir.join("timelines").join(format!("{stem}.csv"));
        std::fs::write(&file, timeline_csv(run)).with_context(|| format!("writing {}", file.display()))?;
    }
    for scenario in scenarios(report) {
        for trigger in triggers(report, &scenario) {
            let runs = runs_of(report, &scenario, &trigger);
            let title = group_title(report, &scenario, &trigger);
            let file = format!("{}.svg", group_slug(report, &scenario, &trigger));
            std::fs::write(dir.join(file), timeline_svg(report, &title, &runs))?;
        }
        if triggers(report, &scenario).len() > 1 {
            std::fs::write(dir.join(format!("phase-{}.svg", scenario.slug())), phase_svg(report, &scenario))?;
        }
    }
    std::fs::write(dir.join("faults.md"), markdown(report)).context("writing faults.md")?;
    Ok(())
}

/// A run's name in tables, legends and the terminal: its label, and its repetition when there
/// were several.
pub(crate) fn run_name(report: &FaultReport, run: &FaultRun) -> String {
    if report.repeat > 1 { format!("{} #{}", run.label(), run.repetition) } else { run.label() }
}

/// A scenario's triggers (length, share) in the order run.
fn triggers(report: &FaultReport, scenario: &Scenario) -> Vec<Trigger> {
    distinct_in_order(report.runs.iter().filter(|r| r.scenario == *scenario).map(|r| r.trigger(&report.parameters)))
}

fn runs_of<'a>(report: &'a FaultReport, scenario: &Scenario, trigger: &Trigger) -> Vec<&'a FaultRun> {
    report.runs.iter().filter(|r| r.scenario == *scenario && r.trigger(&report.parameters) == *trigger).collect()
}

/// The file name of a scenario's runs at one trigger: the scenario's, and the trigger's when the
/// scenario ran with several.
fn group_slug(report: &FaultReport, scenario: &Scenario, trigger: &Trigger) -> String {
    if triggers(report, scenario).len() > 1 {
        format!("{}-{}", scenario.slug(), trigger.slug())
    } else {
        scenario.slug()
    }
}

fn group_title(report: &FaultReport, scenario: &Scenario, trigger: &Trigger) -> String {
    if triggers(report, scenario).len() > 1 {
        format!("{scenario}, {}", trigger.describe())
    } else {
        scenario.to_string()
    }
}

/// The labels (architecture and profile) of a scenario's runs, in the order run.
fn labels(report: &FaultReport, scenario: &Scenario) -> Vec<String> {
    distinct_in_order(report.runs.iter().filter(|r| r.scenario == *scenario).map(FaultRun::label))
}

/// The phase diagram's axes: the distinct shares (rows; `None` for faults without one) and
/// lengths (columns), each in ascending order.
fn phase_axes(report: &FaultReport, scenario: &Scenario) -> (Vec<Option<f64>>, Vec<Duration>) {
    let all = triggers(report, scenario);
    let mut shares = distinct_in_order(all.iter().map(|t| t.share));
    let mut lengths = distinct_in_order(all.iter().map(|t| t.length));
    shares.sort_by(|a, b| a.unwrap_or(0.0).total_cmp(&b.unwrap_or(0.0)));
    lengths.sort();
    (shares, lengths)
}

/// One cell of the phase diagram: the runs of `label` at that trigger that finished (one per
/// repetition).
fn phase_cell<'a>(
    report: &'a FaultReport,
    scenario: &Scenario,
    label: &str,
    share: Option<f64>,
    length: Duration,
) -> Vec<&'a FaultRun> {
    let trigger = Trigger { length, share };
    runs_of(report, scenario, &trigger).into_iter().filter(|r| r.label() == label).collect()
}

/// How the runs of one cell ended: how many finished and recovered, and their median time to
/// recover.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recoveries {
    planned: usize,
    runs: usize,
    recovered: usize,
    median_ms: Option<f64>,
}

impl Recoveries {
    fn of(report: &FaultReport, runs: &[&FaultRun]) -> Self {
        Self::of_outcomes(report.repeat as usize, runs.iter().map(|r| r.outcome.recovered_ms))
    }

    /// From each finished run's time to recover (`None`: it did not), of `planned` runs.
    fn of_outcomes(planned: usize, outcomes: impl Iterator<Item = Option<f64>>) -> Self {
        let outcomes: Vec<Option<f64>> = outcomes.collect();
        let times: Vec<f64> = outcomes.iter().flatten().copied().collect();
        let median_ms = crate::analyse::Spread::of(&times).map(|spread| spread.median);
        Self { planned: planned.max(outcomes.len()), runs: outcomes.len(), recovered: times.len(), median_ms }
    }

    /// The markdown cell: one run as before; several as `2 of 3 recovered (median 1.2 s)`,
    /// and how many of the planned runs failed.
    fn cell(&self) -> String {
        let failed = self.planned - self.runs;
        let verdict = self.verdict();
        match failed {
            0 => verdict,
            _ if self.runs == 0 => verdict,
            _ => format!("{verdict}; {failed} of {} runs failed", self.planned),
        }
    }

    fn verdict(&self) -> String {
        match (self.runs, self.median_ms) {
            (0, _) if self.planned > 1 => format!("all {} runs failed", self.planned),
            (0, _) => "run failed".into(),
            (1, Some(ms)) => recovered(ms),
            (1, None) => "**did not recover**".into(),
            (n, Some(ms)) if self.recovered == n => format!("{n} of {n} recovered (median {:.1} s)", ms / 1000.0),
            (n, Some(ms)) => format!("**{} of {n} recovered** (median {:.1} s)", self.recovered, ms / 1000.0),
            (n, None) => format!("**none of {n} recovered**"),
        }
    }

    /// The SVG square's colour and text.
    fn square(&self) -> (&'static str, String) {
        match (self.runs, self.median_ms) {
            (0, _) => ("#d9d9d9", "failed".into()),
            (1, Some(ms)) => ("#a1d99b", format!("{:.1} s", ms / 1000.0)),
            (1, None) => ("#fb6a4a", "no".into()),
            (n, _) if self.recovered == n => ("#a1d99b", format!("{n}/{n}")),
            (n, _) if self.recovered == 0 => ("#fb6a4a", format!("0/{n}")),
            (n, _) => ("#fdae6b", format!("{}/{n}", self.recovered)),
        }
    }
}

/// The phase diagram as an SVG: one panel per architecture and profile, a square per trigger,
/// green where the run recovered (its time written in), red where it did not.
fn phase_svg(report: &FaultReport, scenario: &Scenario) -> String {
    let (shares, lengths) = phase_axes(report, scenario);
    let labels = labels(report, scenario);
    let (cell, left, top, gap) = (64.0, 110.0, 56.0, 40.0);
    let panel_width = left + cell * lengths.len() as f64;
    // Wide enough for the title, too.
    let width = (gap + (panel_width + gap) * labels.len() as f64).max(800.0);
    let height = top + cell * shares.len() as f64 + 60.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{gap}\" y=\"20\" font-size=\"14\">{scenario}: did the system recover after the trigger? (time from the trigger's end to recovery)</text>\n"
    );
    for (index, label) in labels.iter().enumerate() {
        let x0 = gap + index as f64 * (panel_width + gap);
        let _ = writeln!(svg, "<text x=\"{:.0}\" y=\"42\" font-weight=\"bold\">{label}</text>", x0 + left);
        for (row, share) in shares.iter().enumerate() {
            let y = top + row as f64 * cell;
            let name = share.map_or_else(|| "-".to_string(), |s| format!("{} of a core", super::run::percent(s)));
            let _ = writeln!(svg, "<text x=\"{x0:.0}\" y=\"{:.0}\">{name}</text>", y + cell / 2.0 + 4.0);
            for (column, length) in lengths.iter().enumerate() {
                let x = x0 + left + column as f64 * cell;
                let (fill, text) =
                    Recoveries::of(report, &phase_cell(report, scenario, label, *share, *length)).square();
                let _ = writeln!(
                    svg,
                    "<rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"{:.0}\" height=\"{:.0}\" fill=\"{fill}\" stroke=\"white\"/><text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">{text}</text>",
                    cell,
                    cell,
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.0
                );
            }
        }
        let y = top + shares.len() as f64 * cell + 18.0;
        for (column, length) in lengths.iter().enumerate() {
            let x = x0 + left + column as f64 * cell + cell / 2.0;
            let _ = writeln!(
                svg,
                "<text x=\"{x:.0}\" y=\"{y:.0}\" text-anchor=\"middle\">{:.1} s</text>",
                length.as_secs_f64()
            );
        }
        let _ = writeln!(svg, "<text x=\"{:.0}\" y=\"{:.0}\">trigger length</text>", x0 + left, y + 20.0);
    }
    svg.push_str("</svg>\n");
    svg
}

/// The phase diagram in markdown: per architecture and profile, a row per share and a column
/// per length, each cell whether (and when) that run recovered.
fn phase_section(md: &mut String, report: &FaultReport, scenario: &Scenario) {
    let (shares, lengths) = phase_axes(report, scenario);
    let _ = writeln!(
        md,
        "\n## Phase diagram: {scenario}\n\n![phase diagram](phase-{}.svg)\n\nThe same load, the trigger varied in size (the share of a core left to the process) and length. Each cell is one run: *recovered after* as in the matrix, or **did not recover** when the load after the trigger never again met the objective within the {:.1} s after it, a metastable failure in the sense of Huang et al. (OSDI'22) as far as this window can tell: a longer window might still see it recover. {}\n",
        scenario.slug(),
        report.timing.after.as_secs_f64(),
        match report.repeat {
            1 => "One run per cell, no repetitions: read the pattern, not a boundary.".to_string(),
            n => format!(
                "{n} runs per cell (`--repeat`), each on a schedule of its own; a cell says how many recovered and their median time."
            ),
        }
    );
    let header: Vec<String> = lengths.iter().map(|l| format!("{:.1} s", l.as_secs_f64())).collect();
    for label in labels(report, scenario) {
        let _ = writeln!(
            md,
            "**{label}**\n\n| share of a core \\ length | {} |\n|---|{}",
            header.join(" | "),
            "---|".repeat(lengths.len())
        );
        for share in &shares {
            let cells: Vec<String> = lengths
                .iter()
                .map(|length| Recoveries::of(report, &phase_cell(report, scenario, &label, *share, *length)).cell())
                .collect();
            let name = share.map_or_else(|| "-".to_string(), super::run::percent);
            let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
        }
        md.push('\n');
    }
}

/// The scenarios in the order run.
fn scenarios(report: &FaultReport) -> Vec<Scenario> {
    distinct_in_order(report.runs.iter().map(|r| r.scenario.clone()))
}

fn timeline_csv(run: &FaultRun) -> String {
    let mut csv = String::from("slice_start_ms,phase,requests,ok,degraded,failed,p99_us\n");
    for slice in &run.outcome.timeline {
        let _ = writeln!(
            csv,
            "{:.0},{},{},{},{},{},{}",
            slice.start_ms,
            slice.phase.name(),
            slice.requests,
            slice.ok,
            slice.degraded,
            slice.failed,
            slice.p99_us.map_or_else(String::new, |p| p.to_string())
        );
    }
    csv
}

/// Success share and p99 per slice, both architectures, the fault's window drawn as a box.
fn timeline_svg(report: &FaultReport, title: &str, runs: &[&FaultRun]) -> String {
    let mut success = Vec::new();
    let mut p99 = Vec::new();
    for run in runs {
        let colour = svg::architecture_colour(&run.architecture);
        // One colour per architecture; the microservices' profiles by line style.
        let style = match run.resilience {
            None | Some(shop::resilience::Resilience::None) => svg::Style::Solid,
            Some(shop::resilience::Resilience::NaiveRetries) => svg::Style::Dashed,
            Some(shop::resilience::Resilience::Full) => svg::Style::Dotted,
        };
        let series = |values: Vec<(f64, f64)>| svg::Series { name: run_name(report, run), colour, style, values };
        let timeline = &run.outcome.timeline;
        success.push(series(
            timeline
                .iter()
                .filter(|s| s.requests > 0)
                .map(|s| (s.start_ms / 1000.0, 100.0 * s.ok as f64 / s.requests as f64))
                .collect(),
        ));
        p99.push(series(
            timeline.iter().filter_map(|s| s.p99_us.map(|p| (s.start_ms / 1000.0, p as f64 / 1000.0))).collect(),
        ));
    }
    // The fault's window (as the first run saw it; the others' differ by milliseconds).
    if let Some(run) = runs.first() {
        let (start, end) = (run.fault.started_ms / 1000.0, run.fault.ended_ms / 1000.0);
        success.push(svg::Series {
            name: "fault".into(),
            colour: "#7f7f7f",
            style: svg::Style::Dashed,
            values: vec![(start, 0.0), (start, 100.0), (end, 100.0), (end, 0.0)],
        });
    }
    svg::Figure {
        title: format!("{title}: complete answers and p99 per 100 ms"),
        x_label: "seconds into the measured window".into(),
        x_scale: svg::Scale::Linear,
        panels: vec![
            svg::Panel {
                y_label: "% complete answers".into(),
                y_scale: svg::Scale::Linear,
                series: success,
                rules: Vec::new(),
            },
            svg::Panel {
                y_label: "p99 ms (log scale)".into(),
                y_scale: svg::Scale::Log,
                series: p99,
                rules: Vec::new(),
            },
        ],
    }
    .render()
}

/// `0.00, 0.00, 0.00` (the monolith makes none); `-` for a phase not read.
fn calls_cell(run: &FaultRun) -> String {
    let phases: Vec<String> = Phase::ALL
        .iter()
        .map(|phase| {
            run.calls
                .iter()
                .find(|c| c.phase == *phase)
                .and_then(|c| c.per_request)
                .map_or_else(|| "-".into(), |p| format!("{p:.2}"))
        })
        .collect();
    phases.join(", ")
}

/// `0, 412, 3`: requests the gateway shed per phase; `-` for a phase not read.
fn shed_cell(run: &FaultRun) -> String {
    let phases: Vec<String> = Phase::ALL
        .iter()
        .map(|phase| run.calls.iter().find(|c| c.phase == *phase).map_or_else(|| "-".into(), |c| c.shed.to_string()))
        .collect();
    phases.join(", ")
}

fn first_success(run: &FaultRun) -> String {
    match (run.outcome.module_in_mix, run.outcome.first_success_ms) {
        (false, _) => "not measured (no endpoint of the mix needs the module)".into(),
        (true, None) => "none in the window".into(),
        (true, Some(ms)) => after_fault(ms),
    }
}

/// A time after the fault's end as read in 100 ms slices.
fn after_fault(ms: f64) -> String {
    if within_a_slice(ms) { "within 0.1 s".into() } else { format!("{:.1} s", ms / 1000.0) }
}

/// `recovered within 0.1 s`, `recovered after 2.4 s`.
fn recovered(ms: f64) -> String {
    if within_a_slice(ms) {
        format!("recovered {}", after_fault(ms))
    } else {
        format!("recovered after {}", after_fault(ms))
    }
}

/// Sooner than the timeline can tell apart from at once.
fn within_a_slice(ms: f64) -> bool {
    ms < super::run::SLICE.as_secs_f64() * 1000.0
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "did not recover in the window".into(), after_fault)
}

fn books(run: &FaultRun) -> String {
    match &run.consistency {
        None => "not checked".into(),
        Some(check) => match (&check.report, &check.error) {
            (Some(report), _) => report.summary(),
            (None, Some(error)) => format!("check failed: {error}"),
            (None, None) => "not checked".into(),
        },
    }
}

/// `148 (overflow 140, timeout 8)`.
fn failed_cell(s: &super::analysis::PhaseStats) -> String {
    if s.failed == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = s.failures.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    format!("{} ({})", s.failed, kinds.join(", "))
}

/// What the injector read back while the fault was on.
fn evidence(run: &FaultRun) -> Option<String> {
    let e = &run.evidence;
    let mut parts = Vec::new();
    if let Some((period, quota)) = e.cpu_limit {
        let quota = quota.map_or_else(|| "no limit".to_string(), |q| format!("{q} µs"));
        parts.push(format!("the cgroup's quota read back as {quota} per {period} µs period"));
    }
    if let Some(t) = e.throttling {
        parts.push(format!(
            "throttled in {} of {} periods, {:.2} s spent waiting for the next one",
            t.throttled_periods,
            t.periods,
            t.throttled_ns as f64 / 1e9
        ));
    }
    if let Some(database) = &e.database {
        parts.push(database.clone());
    }
    if let Some(network) = &e.network {
        parts.push(network.clone());
    }
    if let Some(seam) = &e.seam {
        parts.push(seam.clone());
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn endpoints_list(endpoints: &[crate::record::Endpoint]) -> String {
    if endpoints.is_empty() { "none".into() } else { endpoints.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ") }
}

fn markdown(report: &FaultReport) -> String {
    let mut md = format!("# splitbench fault report `{}`\n\n", report.run_id);
    let _ = writeln!(md, "Produced by `{}`.\n", report.command_line.join(" "));
    md.push_str("## Environment\n\n");
    md.push_str(&crate::report::environment_rows(&report.fingerprint, &report.fingerprint.build_profile));
    let t = &report.timing;
    let _ = writeln!(
        md,
        "| took | {:.0} s (systems started, faults, checks and stops; building not) |\n| core layout | {} |\n| database | {} |\n| load | open loop at {} req/s, mix `{}`; after the warm-up, {:.1} s before the fault, the fault held as the matrix says, {:.1} s after it; every request's latency from its due time, in 100 ms slices; at most {} requests in flight, timeout {} ms |\n| objective | p99 of every request ≤ {}, failed{} requests ≤ {:.3}% |\n| shop settings (every process) | `{}` |\n",
        report.measuring_secs,
        report.core_layout,
        report.database,
        report.rate,
        report.mix,
        t.before.as_secs_f64(),
        t.after.as_secs_f64(),
        report.max_in_flight,
        report.request_timeout_ms,
        human_micros(report.objective.p99_us),
        if report.degraded_ok { "" } else { " and degraded" },
        report.objective.error_budget * 100.0,
        report.shop_settings.join(" ")
    );
    // Every quota the starve runs had (one unless the run varied --starve-share).
    let period = report.parameters.cpu_period_us;
    let mut quotas: Vec<u64> = report
        .runs
        .iter()
        .filter(|r| r.scenario.fault == super::FaultKind::Starve)
        .map(|r| r.parameters.unwrap_or(report.parameters).cpu_quota_us)
        .collect();
    quotas.sort_unstable();
    quotas.dedup();
    let quota = if quotas.is_empty() {
        report.parameters.cpu_quota_us.to_string()
    } else {
        quotas.iter().map(|q| q.to_string()).collect::<Vec<_>>().join(", ")
    };
    let recovered = super::analysis::RECOVERED_SHARE * 100.0;
    let drop = super::run::percent(report.parameters.drop_share);
    let degraded = if report.degraded_ok { " (degraded ones counted as complete, `--degraded-ok`)" } else { "" };
    md.push_str(&format!(
        "A **crash** kills the process hosting the module (SIGKILL) and starts it again on the same port and database when the fault's time is up; the fault ends as the restart begins, so the restart's time is part of the recovery. A **hang** freezes it (SIGSTOP) and thaws it (SIGCONT). **starve** puts it in a cgroup (v1 `cpu` controller) allowed {quota} µs of CPU in every {period} µs period, then lifts the quota. **db-outage** makes the module's database unavailable: on SQLite a connection of the harness holds the write lock (`BEGIN EXCLUSIVE`), so the module's writes wait out their busy timeout (5 s) and fail; its reads need no lock in WAL mode, but they still wait for a pooled connection while writers hold them (`--db-pool-size` per process); on PostgreSQL the database refuses connections (`ALLOW_CONNECTIONS false`) and its open ones are terminated. **latency**, **bandwidth**, **slicer**, **partition** and **reset-peer** apply Toxiproxy's toxics in a proxy in front of the module's service (present for the whole run; the microservices only: the monolith's modules share one process); **drop** loses {drop} of the TCP packets to and from that proxy in the kernel (an nftables table of the run's own; TCP retransmits, a lone lost segment typically after Linux's minimum retransmission timeout, 200 ms). **slow** and **failing** act at the product page's seam of the module, in the process composing the page (the monolith's, the gateway's), through the same fault layer: calls 200 ms later, or half of them failing as a 503 would. In the microservices the process is the module's service; in the monolith it is the one process (every module in it starves on the same quota, every module loses the one database), so every endpoint shares the fault. Requests count in the 100 ms slice they were due in; the fault's phase runs from the slice holding its start to the slice holding its end (up to a slice of healthy time at each edge), and a request due just before the fault and caught in it counts before it. *Blast radius*: endpoints that missed the objective during the fault although they do not need the faulted module (the table of each scenario says which endpoints need it). *First success*: from the fault's end to the first slice (by due time) holding a complete answer of an endpoint that needs the module. *Recovered*: from the fault's end to the first 100 ms slice from which every second-long run of slices, all endpoints together, had its p99 within the objective and at least {recovered:.0}% complete answers{degraded}; a crash's restart is inside this time. Both are read in 100 ms slices: *within 0.1 s* means the first slice after the fault already qualified. The microservices run once per resilience profile (`--resilience`): *none* (one attempt per call), *naive-retries* (a failed GET tried again at once, up to 3 more times, no limit), *full* (a circuit breaker per upstream: 5 calls in a row without an answer open it for 500 ms, then one probe; GETs retried with jittered backoff under a retry budget of 10% of calls plus 10 a second; a bulkhead per upstream: a call that finds 64 calls to it in flight waits at most 10 ms for a slot, then fails without being sent, so it counts neither against the breaker nor as a call; load shedding at the gateway: at most `--gateway-max-in-flight` public requests handled at once (the shop settings above), a request waits for a slot at most 100 ms, or 10 ms while the queue stands (even the shortest wait of the last 100 ms above 5 ms, CoDel's test), and is otherwise answered `503 overloaded` at once; the requests shed are given per phase); the monolith makes no calls between processes, so it runs once. *Calls between processes per offered user request*: the calls every process counted as it sent them (when each ended, answered or not, so calls to a dead or frozen process count; calls given up before they were sent do not) between the phase's edges (for a crash, the fault's edge is when the restarted process was ready), over the user requests the schedule made due in the phase; the monolith makes none; `-` where a process could not be read at a phase's edge.\n\n",
    ));
    md.push_str("## Matrix\n\n| scenario | fault held | architecture | complete answers during the fault | p99 during | blast radius | first success after | recovered after | calls between processes per offered user request (before, during, after) | books |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for run in &report.runs {
        let p99 = run.outcome.phases.values().filter_map(|phases| phases.get(&Phase::During)?.p99_us).max();
        let share = complete_during(run).map_or_else(|| "-".into(), |share| format!("{share:.1}%"));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {share} | {} | {} | {} | {} | {} | {} |",
            run.scenario,
            run.trigger(&report.parameters).describe(),
            run_name(report, run),
            p99.map_or_else(|| "-".into(), |p| format!("{} (worst endpoint)", human_micros(p))),
            endpoints_list(&run.outcome.blast_radius),
            first_success(run),
            ms(run.outcome.recovered_ms),
            calls_cell(run),
            books(run)
        );
    }
    for not_run in &report.not_run {
        let _ = writeln!(
            md,
            "| {} | - | {} | not run: {} | | | | | | |",
            not_run.scenario, not_run.architecture, not_run.error
        );
    }
    if report.repeat > 1 {
        repetitions_section(&mut md, report);
    }
    for scenario in scenarios(report) {
        if triggers(report, &scenario).len() > 1 {
            phase_section(&mut md, report, &scenario);
        }
    }
    for scenario in scenarios(report) {
        for trigger in triggers(report, &scenario) {
            scenario_section(&mut md, report, &scenario, &trigger);
        }
    }
    if !report.failed.is_empty() {
        md.push_str("\n## Runs that failed\n\n");
        for f in &report.failed {
            let _ = writeln!(md, "- {} on the {}: {}", f.scenario, f.architecture, f.error);
        }
    }
    md.push_str("\n## Files\n\n- `faults.json`: everything above: each endpoint per phase, all endpoints per 100 ms slice.\n- `timelines/<scenario>[-<trigger>]-<architecture>[-<profile>].csv`: the 100 ms slices (the trigger's length and share in the name when a scenario ran with several).\n- `<scenario>[-<trigger>].svg`: the timeline plots; `phase-<scenario>.svg`: a phase diagram.\n- `logs/`: every process's output, a restarted process's in a log of its own.\n");
    md
}

/// With `--repeat`: per scenario, trigger and architecture, how the repetitions spread.
fn repetitions_section(md: &mut String, report: &FaultReport) {
    let _ = writeln!(
        md,
        "\n## Repetitions\n\nEach run was repeated {} times, each repetition on a schedule of its own (the architectures of one repetition on the same one). Median and range over the repetitions that finished.\n\n| scenario | fault held | architecture | runs | recovered | complete answers during the fault | blast radius (in how many runs) |\n|---|---|---|---|---|---|---|",
        report.repeat
    );
    for scenario in scenarios(report) {
        for trigger in triggers(report, &scenario) {
            for label in labels(report, &scenario) {
                let runs: Vec<&FaultRun> =
                    runs_of(report, &scenario, &trigger).into_iter().filter(|r| r.label() == label).collect();
                let shares: Vec<f64> = runs.iter().filter_map(|r| complete_during(r)).collect();
                let complete = match crate::analyse::Spread::of(&shares) {
                    Some(s) => format!("{:.1}% ({:.1}..{:.1}%)", s.median, s.min, s.max),
                    None => "-".into(),
                };
                let mut radius: Vec<(crate::record::Endpoint, usize)> = Vec::new();
                for endpoint in runs.iter().flat_map(|r| r.outcome.blast_radius.iter()) {
                    match radius.iter_mut().find(|(e, _)| e == endpoint) {
                        Some((_, n)) => *n += 1,
                        None => radius.push((*endpoint, 1)),
                    }
                }
                let radius = if radius.is_empty() {
                    "none".to_string()
                } else {
                    radius.iter().map(|(e, n)| format!("{} ({n})", e.name())).collect::<Vec<_>>().join(", ")
                };
                let _ = writeln!(
                    md,
                    "| {scenario} | {} | {label} | {} | {} | {complete} | {radius} |",
                    trigger.describe(),
                    runs.len(),
                    Recoveries::of(report, &runs).cell()
                );
            }
        }
    }
}

/// The share of complete answers, all endpoints, during the fault (percent).
fn complete_during(run: &FaultRun) -> Option<f64> {
    let (mut ok, mut requests) = (0, 0);
    for phases in run.outcome.phases.values() {
        if let Some(s) = phases.get(&Phase::During) {
            ok += s.ok;
            requests += s.requests;
        }
    }
    (requests > 0).then(|| 100.0 * ok as f64 / requests as f64)
}

/// A scenario's runs at one trigger: the timeline plot, then each run's phases per endpoint.
fn scenario_section(md: &mut String, report: &FaultReport, scenario: &Scenario, trigger: &Trigger) {
    let title = group_title(report, scenario, trigger);
    let _ = writeln!(md, "\n## {title}\n\n![{title}]({}.svg)\n", group_slug(report, scenario, trigger));
    for run in runs_of(report, scenario, trigger) {
        let _ = writeln!(
            md,
            "### {}: {} hit from {:.1} s to {:.1} s{}\n\nEndpoints that need {} and missed the objective during the fault: {}. Blast radius: {}. First complete answer needing it after the fault: {}; {}. Books: {}.\n",
            run_name(report, run),
            run.process,
            run.fault.started_ms / 1000.0,
            run.fault.ended_ms / 1000.0,
            run.fault.restart_ready_ms.map_or_else(String::new, |ms| format!(", ready again at {:.1} s", ms / 1000.0)),
            run.scenario.module,
            endpoints_list(&run.outcome.breached_needing),
            endpoints_list(&run.outcome.blast_radius),
            first_success(run),
            run.outcome.recovered_ms.map_or_else(|| "did not recover in the window".into(), recovered),
            books(run)
        );
        let _ = writeln!(
            md,
            "Calls between processes per offered user request (before, during, after the fault): {}.\n",
            calls_cell(run)
        );
        if run.resilience == Some(shop::resilience::Resilience::Full) {
            let _ = writeln!(
                md,
                "User requests the gateway shed, `503 overloaded` (before, during, after the fault): {}.\n",
                shed_cell(run)
            );
        }
        if !run.calls_per_second.is_empty() {
            let seconds: Vec<String> =
                run.calls_per_second.iter().map(|c| c.map_or_else(|| "-".to_string(), |c| format!("{c:.2}"))).collect();
            let _ = writeln!(
                md,
                "The same per second of the window (`-`: a process could not be read, as a frozen one cannot): {}.\n",
                seconds.join(", ")
            );
        }
        if let Some(evidence) = evidence(run) {
            let _ = writeln!(md, "Evidence the fault took hold: {evidence}.\n");
        }
        md.push_str("| endpoint | needs it | phase | requests | complete | degraded | failed | p50 | p99 | goodput req/s | missed |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (endpoint, phases) in &run.outcome.phases {
            let needs = super::modules_needed(*endpoint).contains(&run.scenario.module.as_str());
            for phase in Phase::ALL {
                let Some(s) = phases.get(&phase) else { continue };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {:.1}% | {} | {} | {} | {} | {:.1} | {} |",
                    endpoint.name(),
                    if needs { "yes" } else { "no" },
                    phase.name(),
                    s.requests,
                    s.availability * 100.0,
                    s.degraded,
                    failed_cell(s),
                    s.p50_us.map_or_else(|| "-".into(), human_micros),
                    s.p99_us.map_or_else(|| "-".into(), human_micros),
                    s.goodput,
                    if s.breached { "yes" } else { "no" }
                );
            }
        }
        md.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_of_repetitions_says_how_many_recovered_and_their_median() {
        let cell = |outcomes: &[Option<f64>]| {
            let r = Recoveries::of_outcomes(outcomes.len(), outcomes.iter().copied());
            (r.cell(), r.square())
        };
        assert_eq!(cell(&[Some(1200.0)]), ("recovered after 1.2 s".into(), ("#a1d99b", "1.2 s".into())));
        assert_eq!(cell(&[None]), ("**did not recover**".into(), ("#fb6a4a", "no".into())));
        assert_eq!(
            cell(&[Some(1000.0), None, Some(3000.0)]),
            ("**2 of 3 recovered** (median 2.0 s)".into(), ("#fdae6b", "2/3".into()))
        );
        assert_eq!(
            cell(&[Some(500.0), Some(700.0), Some(300.0)]),
            ("3 of 3 recovered (median 0.5 s)".into(), ("#a1d99b", "3/3".into()))
        );
        assert_eq!(cell(&[None, None]), ("**none of 2 recovered**".into(), ("#fb6a4a", "0/2".into())));
        assert_eq!(cell(&[]).0, "run failed");
        // Three planned, one failed: said beside the verdict of the two that finished.
        let two_of_three = Recoveries::of_outcomes(3, [Some(400.0), None].into_iter());
        assert_eq!(two_of_three.cell(), "**1 of 2 recovered** (median 0.4 s); 1 of 3 runs failed");
        assert_eq!(Recoveries::of_outcomes(3, std::iter::empty()).cell(), "all 3 runs failed");
    }
}
