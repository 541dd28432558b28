//! A fault run's results directory: `faults.json` (everything measured), `faults.md` (the
//! matrix, then per scenario the phases per endpoint, blast radius, recovery and the books),
//! `timelines/<scenario>-<architecture>[-<profile>].csv` (100 ms slices) and `<scenario>.svg` (both
//! architectures over time, the fault's window marked).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::analysis::Phase;
use super::inject::FaultParameters;
use super::run::FaultRun;
use super::{FaultTiming, Scenario};
use crate::analyse::{Objective, human_micros};
use crate::report::data::Fingerprint;
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
    pub measuring_secs: f64,
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
    std::fs::create_dir_all(dir.join("timelines"))?;
    for run in &report.runs {
        let file = dir.join("timelines").join(format!("{}-{}.csv", run.scenario.slug(), run.slug()));
        std::fs::write(&file, timeline_csv(run)).with_context(|| format!("writing {}", file.display()))?;
    }
    for scenario in scenarios(report) {
        let runs: Vec<&FaultRun> = report.runs.iter().filter(|r| r.scenario == scenario).collect();
        std::fs::write(dir.join(format!("{}.svg", scenario.slug())), timeline_svg(&scenario, &runs))?;
    }
    std::fs::write(dir.join("faults.md"), markdown(report)).context("writing faults.md")?;
    Ok(())
}

/// The scenarios in the order run.
fn scenarios(report: &FaultReport) -> Vec<Scenario> {
    let mut seen: Vec<Scenario> = Vec::new();
    for run in &report.runs {
        if !seen.contains(&run.scenario) {
            seen.push(run.scenario.clone());
        }
    }
    seen
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
fn timeline_svg(scenario: &Scenario, runs: &[&FaultRun]) -> String {
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
        let series = |values: Vec<(f64, f64)>| svg::Series { name: run.label(), colour, style, values };
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
        title: format!("{scenario}: complete answers and p99 per 100 ms"),
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

fn first_success(run: &FaultRun) -> String {
    match (run.outcome.module_in_mix, run.outcome.first_success_ms) {
        (false, _) => "not measured (no endpoint of the mix needs the module)".into(),
        (true, None) => "none in the window".into(),
        (true, Some(ms)) => after_fault(ms),
    }
}

/// A time after the fault's end as read in 100 ms slices.
fn after_fault(ms: f64) -> String {
    if ms < super::run::SLICE.as_secs_f64() * 1000.0 { "within 0.1 s".into() } else { format!("{:.1} s", ms / 1000.0) }
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
        "| took | {:.0} s (systems started, faults, checks and stops; building not) |\n| core layout | {} |\n| database | {} |\n| load | open loop at {} req/s, mix `{}`; after the warm-up, {:.1} s before the fault, {:.1} s of fault, {:.1} s after it; every request's latency from its due time, in 100 ms slices; at most {} requests in flight, timeout {} ms |\n| objective | p99 of every request ≤ {}, failed{} requests ≤ {:.3}% |\n| shop settings (every process) | `{}` |\n",
        report.measuring_secs,
        report.core_layout,
        report.database,
        report.rate,
        report.mix,
        t.before.as_secs_f64(),
        t.during.as_secs_f64(),
        t.after.as_secs_f64(),
        report.max_in_flight,
        report.request_timeout_ms,
        human_micros(report.objective.p99_us),
        if report.degraded_ok { "" } else { " and degraded" },
        report.objective.error_budget * 100.0,
        report.shop_settings.join(" ")
    );
    let (quota, period) = (report.parameters.cpu_quota_us, report.parameters.cpu_period_us);
    let recovered = super::analysis::RECOVERED_SHARE * 100.0;
    let degraded = if report.degraded_ok { " (degraded ones counted as complete, `--degraded-ok`)" } else { "" };
    md.push_str(&format!(
        "A **crash** kills the process hosting the module (SIGKILL) and starts it again on the same port and database when the fault's time is up; the fault ends as the restart begins, so the restart's time is part of the recovery. A **hang** freezes it (SIGSTOP) and thaws it (SIGCONT). **starve** puts it in a cgroup (v1 `cpu` controller) allowed {quota} µs of CPU in every {period} µs period, then lifts the quota. **db-outage** makes the module's database unavailable: on SQLite a connection of the harness holds the write lock (`BEGIN EXCLUSIVE`), so the module's writes wait out their busy timeout (5 s) and fail; its reads need no lock in WAL mode, but they still wait for a pooled connection while writers hold them (`--db-pool-size` per process); on PostgreSQL the database refuses connections (`ALLOW_CONNECTIONS false`) and its open ones are terminated. In the microservices the process is the module's service; in the monolith it is the one process (every module in it starves on the same quota, every module loses the one database), so every endpoint shares the fault. Requests count in the 100 ms slice they were due in; the fault's phase runs from the slice holding its start to the slice holding its end (up to a slice of healthy time at each edge), and a request due just before the fault and caught in it counts before it. *Blast radius*: endpoints that missed the objective during the fault although they do not need the faulted module (the table of each scenario says which endpoints need it). *First success*: from the fault's end to the first slice (by due time) holding a complete answer of an endpoint that needs the module. *Recovered*: from the fault's end to the first 100 ms slice from which every second-long run of slices, all endpoints together, had its p99 within the objective and at least {recovered:.0}% complete answers{degraded}; a crash's restart is inside this time. Both are read in 100 ms slices: *within 0.1 s* means the first slice after the fault already qualified. The microservices run once per resilience profile (`--resilience`): *none* (one attempt per call), *naive-retries* (a failed GET tried again at once, up to 3 more times, no limit), *full* (a circuit breaker per upstream: 5 calls in a row without an answer open it for 500 ms, then one probe; GETs retried with jittered backoff under a retry budget of 10% of calls plus 10 a second); the monolith makes no calls between processes, so it runs once. *Calls between processes per offered user request*: the calls every process counted as it made them (when each ended, answered or not, so calls to a dead or frozen process count) between the phase's edges (for a crash, the fault's edge is when the restarted process was ready), over the user requests the schedule made due in the phase; the monolith makes none; `-` where a process could not be read at a phase's edge.\n\n",
    ));
    md.push_str("## Matrix\n\n| scenario | architecture | complete answers during the fault | p99 during | blast radius | first success after | recovered after | calls between processes per offered user request (before, during, after) | books |\n|---|---|---|---|---|---|---|---|---|\n");
    for run in &report.runs {
        let (mut ok, mut requests) = (0, 0);
        let mut p99 = None::<u64>;
        for phases in run.outcome.phases.values() {
            if let Some(s) = phases.get(&Phase::During) {
                ok += s.ok;
                requests += s.requests;
                p99 = p99.max(s.p99_us);
            }
        }
        let share = if requests == 0 { "-".into() } else { format!("{:.1}%", 100.0 * ok as f64 / requests as f64) };
        let _ = writeln!(
            md,
            "| {} | {} | {share} | {} | {} | {} | {} | {} | {} |",
            run.scenario,
            run.label(),
            p99.map_or_else(|| "-".into(), |p| format!("{} (worst endpoint)", human_micros(p))),
            endpoints_list(&run.outcome.blast_radius),
            first_success(run),
            ms(run.outcome.recovered_ms),
            calls_cell(run),
            books(run)
        );
    }
    for scenario in scenarios(report) {
        let _ = writeln!(md, "\n## {scenario}\n\n![{scenario}]({}.svg)\n", scenario.slug());
        for run in report.runs.iter().filter(|r| r.scenario == scenario) {
            let _ = writeln!(
                md,
                "### {}: {} hit from {:.1} s to {:.1} s{}\n\nEndpoints that need {} and missed the objective during the fault: {}. Blast radius: {}. First complete answer needing it after the fault: {}; recovered after {}. Books: {}.\n",
                run.label(),
                run.process,
                run.fault.started_ms / 1000.0,
                run.fault.ended_ms / 1000.0,
                run.fault
                    .restart_ready_ms
                    .map_or_else(String::new, |ms| format!(", ready again at {:.1} s", ms / 1000.0)),
                run.scenario.module,
                endpoints_list(&run.outcome.breached_needing),
                endpoints_list(&run.outcome.blast_radius),
                first_success(run),
                ms(run.outcome.recovered_ms),
                books(run)
            );
            let _ = writeln!(
                md,
                "Calls between processes per offered user request (before, during, after the fault): {}.\n",
                calls_cell(run)
            );
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
    if !report.failed.is_empty() {
        md.push_str("\n## Runs that failed\n\n");
        for f in &report.failed {
            let _ = writeln!(md, "- {} on the {}: {}", f.scenario, f.architecture, f.error);
        }
    }
    md.push_str("\n## Files\n\n- `faults.json`: everything above: each endpoint per phase, all endpoints per 100 ms slice.\n- `timelines/<scenario>-<architecture>[-<profile>].csv`: the 100 ms slices.\n- `<scenario>.svg`: the timeline plots.\n- `logs/`: every process's output, a restarted process's in a log of its own.\n");
    md
}
