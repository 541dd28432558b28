//! `splitbench scale`: capacity against CPU budget, for several topologies.
//!
//! For each total budget of the system under test (one cgroup v1 quota over all its
//! processes, the load balancer included: [`crate::launch::Launcher::system_budget`]) and each
//! scenario (a topology whose replica count may grow with the budget), the saturation stage of
//! the measurement-integrity work measures the service rate: rounds of one closed-loop window
//! per scenario on freshly started systems, the scenarios of a budget back to back in each
//! round (their order reversed every other round), so the scenarios compared at one budget
//! meet the same minutes of the machine. Each point is the median over the rounds with its
//! distribution-free 95% interval.
//!
//! From the points: capacity per core, scaling efficiency against the smallest budget, CPU
//! per request, memory, the balancer's share of the CPU, and a Universal Scalability Law fit
//! ([`UslFit`]) per scenario. Everything derived is rebuilt from `scale.json` alone
//! (`splitbench report <dir>`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use shop::topology::Topology;

use crate::report::data::{Fingerprint, Measurement};
use crate::report::svg::{self, Figure, Panel, Scale, Series, Style};

/// The scenarios `scale` runs unless told otherwise.
pub const DEFAULT_SCENARIOS: [&str; 6] = [
    "monolith",
    "monolith-replicated",
    "microservices",
    "microservices-hottest",
    "microservices-even",
    "catalog-reviews",
];

/// One scenario: how its topology looks at a replica count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSpec {
    pub name: String,
    /// The topology, `{n}` standing for the replica count.
    pub template: String,
    pub what: String,
}

impl ScenarioSpec {
    /// A named scenario, or `name=template` (a topology description, `{n}` for the replica
    /// count). `hottest` is the microservices' hottest process (for `microservices-hottest`).
    pub fn parse(value: &str, hottest: Option<&str>) -> anyhow::Result<Self> {
        let named = |template: String, what: &str| Self { name: value.to_string(), template, what: what.to_string() };
        let spec = match value {
            "monolith" => named("edge+rest".into(), "the monolith, one process given the whole budget"),
            "monolith-replicated" => named("edge+rest*{n}".into(), "the monolith replicated behind HAProxy"),
            "microservices" => named(Topology::microservices().to_string(), "the seven processes, one replica each"),
            "microservices-even" => {
                let template =
                    Topology::microservices().to_string().split('|').map(|p| format!("{p}*{{n}}")).collect::<Vec<_>>();
                named(template.join("|"), "the microservices, every process replicated alike")
            }
            "microservices-hottest" => {
                let hottest = hottest.context("microservices-hottest needs the hottest process (calibration)")?;
                let members = if hottest == "gateway" { "edge" } else { hottest };
                let template = Topology::microservices()
                    .to_string()
                    .split('|')
                    .map(|p| if p == members { format!("{p}*{{n}}") } else { p.to_string() })
                    .collect::<Vec<_>>();
                let spec =
                    named(template.join("|"), "the microservices, only the process with the most CPU replicated");
                anyhow::ensure!(spec.replicated(), "the hottest process '{hottest}' is none of the microservices'");
                spec
            }
            "catalog-reviews" | "all-but-orders" => {
                let topology = Topology::parse(value)?;
                named(topology.to_string(), "an intermediate grouping, one replica per process")
            }
            other => {
                let (name, template) =
                    other.split_once('=').with_context(|| format!("unknown scenario '{other}' (or name=topology)"))?;
                Self {
                    name: name.to_string(),
                    template: template.to_string(),
                    what: "given on the command line".into(),
                }
            }
        };
        spec.topology(1)?;
        Ok(spec)
    }

    /// The topology at `replicas` replicas.
    pub fn topology(&self, replicas: u32) -> anyhow::Result<Topology> {
        let description = self.template.replace("{n}", &replicas.to_string());
        Topology::parse(&description).with_context(|| format!("scenario {}: {description}", self.name))
    }

    pub fn replicated(&self) -> bool {
        self.template.contains("{n}")
    }
}

/// Replicas of a replicated scenario at `budget`: one per `replica_cores`, at least one.
pub fn replicas_at(budget: f64, replica_cores: f64) -> u32 {
    ((budget / replica_cores).round() as u32).max(1)
}

/// One scenario at one budget: every round's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalePoint {
    pub scenario: String,
    pub budget_cores: f64,
    pub replicas: u32,
    pub topology: String,
    /// Answered requests per second, each round.
    pub throughput: Vec<f64>,
    /// CPU of the system under test per answered request, µs, each round.
    pub cpu_us_per_request: Vec<f64>,
    /// Mean PSS of the system under test over the window, bytes, each round.
    pub pss_bytes: Vec<u64>,
    /// The balancer's share of the system's CPU, each round (none without a balancer).
    pub balancer_cpu_share: Vec<f64>,
    /// Every round's books were checked and clean.
    pub books_clean: bool,
}

impl ScalePoint {
    /// From the windows of one scenario at one budget.
    pub fn of(scenario: &ScenarioSpec, budget: f64, replicas: u32, windows: &[&Measurement]) -> Self {
        // Only where a balancer ran.
        let balancer_share = |m: &Measurement| {
            let balancer = m.processes.iter().find(|p| p.name == crate::launch::balancer::PROCESS)?.cpu_seconds;
            let total: f64 = m.processes.iter().map(|p| p.cpu_seconds).sum();
            (total > 0.0).then(|| balancer / total)
        };
        Self {
            scenario: scenario.name.clone(),
            budget_cores: budget,
            replicas,
            topology: scenario.topology(replicas).map(|t| t.to_string()).unwrap_or_default(),
            throughput: windows.iter().map(|m| m.achieved_rate(false)).collect(),
            cpu_us_per_request: windows.iter().map(|m| m.cpu_ms_per_request() * 1000.0).collect(),
            pss_bytes: windows
                .iter()
                .filter_map(|m| m.memory.as_ref().and_then(|mem| mem.system_under_test_stats()).map(|s| s.mean_bytes))
                .collect(),
            balancer_cpu_share: windows.iter().filter_map(|m| balancer_share(m)).collect(),
            books_clean: !windows.is_empty()
                && windows
                    .iter()
                    .all(|m| m.consistency.as_ref().and_then(|c| c.report.as_ref()).is_some_and(|r| r.is_clean())),
        }
    }

    pub fn capacity(&self) -> Option<Median> {
        Median::of(&self.throughput)
    }
}

/// A median with its distribution-free 95% interval (order statistics; `None` when the rounds
/// are too few to bound it, under 6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Median {
    pub median: f64,
    pub interval: Option<(f64, f64)>,
    pub n: usize,
}

impl Median {
    pub fn of(values: &[f64]) -> Option<Self> {
        let spread = crate::analyse::Spread::of(values)?;
        Some(Self { median: spread.median, interval: crate::analyse::median_interval(values), n: spread.n })
    }

    pub fn describe(&self, digits: usize) -> String {
        match self.interval {
            Some((low, high)) => format!("{:.digits$} [{low:.digits$}, {high:.digits$}]", self.median),
            None => format!("{:.digits$} (no 95% interval from {} rounds)", self.median, self.n),
        }
    }
}

/// The Universal Scalability Law fitted to one scenario's capacities (Gunther):
/// `X(N) = X(1) N / (1 + sigma (N - 1) + kappa N (N - 1))`, N the budget in units of the
/// smallest. sigma is contention (the part that does not scale), kappa coherency (the cost
/// that grows with every pair of units). With X(1) the smallest budget's capacity,
/// `N / C(N) - 1 = sigma (N - 1) + kappa N (N - 1)` (C the relative capacity) is linear in
/// sigma and kappa: least squares over the larger budgets, no intercept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UslFit {
    pub sigma: f64,
    pub kappa: f64,
    /// Where capacity would peak, in units of the smallest budget (only with 0 <= sigma < 1 and
    /// kappa > 0: otherwise the points lie outside the law).
    pub peak_units: Option<f64>,
}

impl UslFit {
    /// `points`: (units N, relative capacity C(N)), N = 1 included or not. Needs two points
    /// above N = 1 (two unknowns).
    pub fn fit(points: &[(f64, f64)]) -> Option<Self> {
        let rows: Vec<(f64, f64, f64)> = points
            .iter()
            .filter(|(n, c)| *n > 1.0 + 1e-9 && *c > 0.0)
            .map(|&(n, c)| (n - 1.0, n * (n - 1.0), n / c - 1.0))
            .collect();
        if rows.len() < 2 {
            return None;
        }
        let (mut aa, mut ab, mut bb, mut ay, mut by) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (a, b, y) in &rows {
            aa += a * a;
            ab += a * b;
            bb += b * b;
            ay += a * y;
            by += b * y;
        }
        let det = aa * bb - ab * ab;
        if det.abs() < 1e-12 {
            return None;
        }
        let sigma = (ay * bb - by * ab) / det;
        let kappa = (aa * by - ab * ay) / det;
        // A peak only where the law applies (sigma in [0, 1), kappa > 0).
        let peak_units = (kappa > 0.0 && (0.0..1.0).contains(&sigma)).then(|| ((1.0 - sigma) / kappa).sqrt());
        Some(Self { sigma, kappa, peak_units })
    }
}

/// What the calibration found: every microservice's share of the CPU in one saturation
/// window (the hottest is replicated in `microservices-hottest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub budget_cores: f64,
    /// (process, CPU seconds over the window).
    pub cpu_seconds: Vec<(String, f64)>,
    pub hottest: String,
}

impl Calibration {
    pub fn of(budget: f64, window: &Measurement) -> Option<Self> {
        let cpu_seconds: Vec<(String, f64)> = window
            .processes
            .iter()
            .filter(|p| p.name != crate::launch::balancer::PROCESS)
            .map(|p| (p.name.clone(), p.cpu_seconds))
            .collect();
        let hottest = cpu_seconds.iter().max_by(|a, b| a.1.total_cmp(&b.1))?.0.clone();
        Some(Self { budget_cores: budget, cpu_seconds, hottest })
    }
}

/// Everything `scale` measured: the raw data its report is derived from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleRun {
    pub fingerprint: Fingerprint,
    pub command: String,
    pub budgets: Vec<f64>,
    pub scenarios: Vec<ScenarioSpec>,
    pub replica_cores: f64,
    pub rounds: u32,
    pub users: usize,
    pub warmup_secs: f64,
    pub window_secs: f64,
    pub budget_period_us: u64,
    /// Whether the budgets were enforced (root and cgroup v1); if not, every point ran
    /// without one and the report says so.
    pub budgets_enforced: bool,
    pub mix: String,
    pub database: String,
    /// Which cores the generator and the system under test had.
    pub core_layout: String,
    pub calibration: Option<Calibration>,
    pub points: Vec<ScalePoint>,
    /// How long the measuring took, seconds.
    pub took_secs: f64,
}

impl ScaleRun {
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("scale.json"), json).context("writing scale.json")?;
        self.write_report(dir)
    }

    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(dir.join("scale.json")).context("reading scale.json")?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The points of `scenario`, by budget.
    fn points_of<'a>(&'a self, scenario: &'a str) -> impl Iterator<Item = &'a ScalePoint> + 'a {
        let mut points: Vec<&ScalePoint> = self.points.iter().filter(|p| p.scenario == scenario).collect();
        points.sort_by(|a, b| a.budget_cores.total_cmp(&b.budget_cores));
        points.into_iter()
    }

    /// (units of the smallest budget, capacity relative to it) for `scenario`.
    pub fn relative_capacities(&self, scenario: &str) -> Vec<(f64, f64)> {
        let points: Vec<(f64, f64)> =
            self.points_of(scenario).filter_map(|p| Some((p.budget_cores, p.capacity()?.median))).collect();
        let Some(&(b0, x0)) = points.first() else { return Vec::new() };
        if x0 <= 0.0 {
            return Vec::new();
        }
        points.iter().map(|&(b, x)| (b / b0, x / x0)).collect()
    }

    pub fn usl(&self, scenario: &str) -> Option<UslFit> {
        UslFit::fit(&self.relative_capacities(scenario))
    }

    /// scale.md and scale.svg, from the data alone.
    pub fn write_report(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::write(dir.join("scale.svg"), self.plot()).context("writing scale.svg")?;
        std::fs::write(dir.join("scale.md"), self.markdown()).context("writing scale.md")?;
        Ok(())
    }

    fn plot(&self) -> String {
        // The two architectures in their usual colours, every other scenario its own.
        const OTHERS: [&str; 8] =
            ["#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#2ca02c", "#e377c2", "#7f7f7f", "#bcbd22"];
        let mut others = OTHERS.iter().cycle();
        let series = self
            .scenarios
            .iter()
            .map(|s| Series {
                name: s.name.clone(),
                colour: match s.name.as_str() {
                    "monolith" | "microservices" => svg::architecture_colour(&s.name),
                    _ => others.next().expect("a cycle never ends"),
                },
                style: if s.replicated() { Style::Solid } else { Style::Dashed },
                values: self.points_of(&s.name).filter_map(|p| Some((p.budget_cores, p.capacity()?.median))).collect(),
            })
            .collect();
        Figure {
            title: "Capacity (closed-loop service rate, median over rounds) against the CPU budget".into(),
            x_label: "CPU budget of the system under test (cores)".into(),
            x_scale: Scale::Linear,
            panels: vec![Panel { y_label: "answered req/s".into(), y_scale: Scale::Linear, series, rules: vec![] }],
        }
        .render()
    }

    fn markdown(&self) -> String {
        let f = &self.fingerprint;
        let mut md = String::new();
        let _ = writeln!(md, "# splitbench scaling report\n\nProduced by `{}`.\n", self.command);
        let _ = writeln!(md, "## Environment\n\n| | |\n|---|---|");
        let _ = writeln!(md, "| commit | `{}`{} |", f.commit, if f.dirty { " (uncommitted changes)" } else { "" });
        let _ = writeln!(md, "| build | {} ({}) |", f.build_profile, f.rustc);
        let _ = writeln!(md, "| machine | {} × {} |", f.cpu_count, f.cpu_model);
        let _ = writeln!(md, "| OS | {} (kernel {}) |", f.os, f.kernel);
        let binaries: Vec<String> =
            f.binaries.iter().map(|b| format!("{} `{}`", b.name, &b.sha256[..12.min(b.sha256.len())])).collect();
        let _ = writeln!(md, "| binaries (SHA-256, first 12) | {} |", binaries.join(", "));
        let _ = writeln!(md, "| started | {} |", f.started_at);
        let _ = writeln!(md, "| took | {:.0} s |", self.took_secs);
        let _ = writeln!(md, "| database | {} |", self.database);
        let _ = writeln!(md, "| core layout | {} |", self.core_layout);
        let _ = writeln!(
            md,
            "| load | closed loop, {} users, no think time, mix `{}`; each window: warm-up {} s, measured {} s |",
            self.users, self.mix, self.warmup_secs, self.window_secs
        );
        let enforced = if self.budgets_enforced {
            format!(
                "one cgroup v1 quota over every process of the system under test (the balancer included): \
                 `cpu.cfs_quota_us` = budget × {} µs per `cpu.cfs_period_us` = {} µs",
                self.budget_period_us, self.budget_period_us
            )
        } else {
            "**NOT enforced** (no root or no cgroup v1 cpu controller): every point ran without a budget, so the \
             points differ only by their replica counts"
                .to_string()
        };
        let _ = writeln!(md, "| CPU budget | {enforced} |");
        let _ = writeln!(
            md,
            "| rounds | {} per point, every scenario of a budget started afresh in each round |\n",
            self.rounds
        );

        let _ = writeln!(
            md,
            "## Scenarios\n\n| scenario | topology (`{{n}}` = replicas) | replicas at each budget | what |\n|---|---|---|---|"
        );
        for s in &self.scenarios {
            let replicas: Vec<String> = self
                .budgets
                .iter()
                .map(|&b| if s.replicated() { replicas_at(b, self.replica_cores).to_string() } else { "1".into() })
                .collect();
            let _ = writeln!(md, "| {} | `{}` | {} | {} |", s.name, cell(&s.template), replicas.join(", "), s.what);
        }
        if let Some(c) = &self.calibration {
            let total: f64 = c.cpu_seconds.iter().map(|(_, s)| s).sum();
            let shares: Vec<String> = c
                .cpu_seconds
                .iter()
                .map(|(name, s)| format!("{name} {:.0}%", if total > 0.0 { 100.0 * s / total } else { 0.0 }))
                .collect();
            let _ = writeln!(
                md,
                "\nThe hottest process, replicated in `microservices-hottest`, was found from one saturation window of \
                 the microservices at {} cores: **{}** (CPU shares: {}).",
                c.budget_cores,
                c.hottest,
                shares.join(", ")
            );
        }
        let replicated_note = format!(
            "Replicated scenarios run one replica per {} core of budget (at least one). Every budget is a share of \
             the cores the system under test is pinned to (see the core layout of the run: on a 2-core machine one \
             core, the other being the load generator's), so replicas add processes, not cores: with every process \
             single-threaded (one worker), this measures what a topology and its replication cost at equal CPU, not \
             the speed-up of running on more cores.",
            self.replica_cores
        );
        let _ = writeln!(md, "\n{replicated_note}\n");

        let _ = writeln!(md, "## Capacity against the CPU budget\n\n![capacity](scale.svg)\n");
        let _ = writeln!(
            md,
            "Capacity is the closed-loop service rate (complete answers per second, degraded ones not counted, with {} \
             users always waiting), \
             the median over the rounds with its distribution-free 95% interval (order statistics over independent \
             rounds). Per core: capacity over the budget. Efficiency: capacity per core relative to the scenario's \
             own at the smallest budget (1.00 = linear scaling). CPU per request: the system under test's, the \
             balancer's included. Budget used: that CPU per request times the capacity, over the budget (near 100%: \
             the point was bound by its budget, not by latency or the load). Memory: the system under test's mean \
             PSS. The budgets run one after another (the scenarios of one budget side by side), so comparing a \
             scenario across budgets, as efficiency and the fit do, compares minutes of the machine that may differ; \
             a scenario's smallest-budget point sets its efficiency, so its noise moves the whole column.\n",
            self.users
        );
        let _ = writeln!(
            md,
            "| scenario | budget (cores) | replicas | capacity req/s | per core | efficiency | CPU µs/request (median) | budget used | memory MiB (median) | balancer's CPU share | books |\n|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for s in &self.scenarios {
            let base = self.points_of(&s.name).next().and_then(|p| Some(p.capacity()?.median / p.budget_cores));
            for p in self.points_of(&s.name) {
                let Some(capacity) = p.capacity() else { continue };
                let per_core = capacity.median / p.budget_cores;
                let efficiency = base.filter(|b| *b > 0.0).map_or("-".into(), |b| format!("{:.2}", per_core / b));
                let cpu = crate::analyse::Spread::of(&p.cpu_us_per_request)
                    .map_or("-".into(), |s| format!("{:.0}", s.median));
                let pss: Vec<f64> = p.pss_bytes.iter().map(|&b| b as f64 / (1024.0 * 1024.0)).collect();
                let memory = crate::analyse::Spread::of(&pss).map_or("-".into(), |s| format!("{:.0}", s.median));
                let balancer = crate::analyse::Spread::of(&p.balancer_cpu_share)
                    .map_or("-".into(), |s| format!("{:.0}%", 100.0 * s.median));
                // CPU-bound at the budget when the CPU it used is the budget: throughput times
                // CPU per request, each round, against the quota.
                let used: Vec<f64> = p
                    .throughput
                    .iter()
                    .zip(&p.cpu_us_per_request)
                    .map(|(x, cpu)| x * cpu / 1e6 / p.budget_cores)
                    .collect();
                let used =
                    crate::analyse::Spread::of(&used).map_or("-".into(), |s| format!("{:.0}%", 100.0 * s.median));
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {per_core:.0} | {efficiency} | {cpu} | {used} | {memory} | {balancer} | {} |",
                    p.scenario,
                    p.budget_cores,
                    p.replicas,
                    capacity.describe(0),
                    if p.books_clean { "clean" } else { "**NOT clean**" }
                );
            }
        }

        let _ = writeln!(md, "\n## Universal Scalability Law\n");
        let _ = writeln!(
            md,
            "Fitted per scenario to its median capacities, N = budget / smallest budget: \
             X(N) = X(1) N / (1 + σ (N − 1) + κ N (N − 1)). σ is contention (the share that does not scale), κ \
             coherency (a cost growing with every pair of units); negative values mean the points scaled better \
             than linearly (then the law does not describe them). Fitted to few points: a description of this run, \
             not a forecast.\n"
        );
        let _ = writeln!(md, "| scenario | σ | κ | peak at N | relative capacities C(N) |\n|---|---|---|---|---|");
        for s in &self.scenarios {
            let relative: Vec<String> =
                self.relative_capacities(&s.name).iter().map(|(n, c)| format!("C({n:.1}) = {c:.2}")).collect();
            match self.usl(&s.name) {
                Some(fit) => {
                    let peak = fit.peak_units.map_or("-".into(), |n| format!("{n:.1}"));
                    let _ = writeln!(
                        md,
                        "| {} | {:.3} | {:.4} | {peak} | {} |",
                        s.name,
                        fit.sigma,
                        fit.kappa,
                        relative.join(", ")
                    );
                }
                None => {
                    let _ =
                        writeln!(md, "| {} | - | - | - | {} (too few points to fit) |", s.name, relative.join(", "));
                }
            }
        }
        let _ = writeln!(
            md,
            "\n## Each round\n\n| scenario | budget | topology | throughput req/s, each round | CPU µs/request, each round |\n|---|---|---|---|---|"
        );
        for p in &self.points {
            let each = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} | {} |",
                p.scenario,
                p.budget_cores,
                cell(&p.topology),
                each(&p.throughput),
                each(&p.cpu_us_per_request)
            );
        }
        md
    }
}

/// `text` for a Markdown table cell: its `|` escaped, or they would split the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_law_fitted_to_its_own_curve_gives_its_parameters_back() {
        let (sigma, kappa) = (0.05, 0.002);
        let curve: Vec<(f64, f64)> = [1.0, 2.0, 3.0, 4.0, 8.0]
            .iter()
            .map(|&n| (n, n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))))
            .collect();
        let fit = UslFit::fit(&curve).expect("fits");
        assert!((fit.sigma - sigma).abs() < 1e-9 && (fit.kappa - kappa).abs() < 1e-9, "{fit:?}");
        let peak = fit.peak_units.expect("a peak");
        assert!((peak - ((1.0 - sigma) / kappa).sqrt()).abs() < 1e-6);
        // Linear scaling: nothing to contend for.
        let linear = UslFit::fit(&[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]).expect("fits");
        assert!(linear.sigma.abs() < 1e-9 && linear.kappa.abs() < 1e-9 && linear.peak_units.is_none());
        // One point above N = 1 cannot fix two parameters.
        assert_eq!(UslFit::fit(&[(1.0, 1.0), (2.0, 1.8)]), None);
    }

    #[test]
    fn the_median_interval_needs_six_rounds() {
        let five = Median::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).expect("values");
        assert_eq!((five.median, five.interval), (3.0, None));
        let six = Median::of(&[6.0, 1.0, 5.0, 2.0, 4.0, 3.0]).expect("values");
        assert_eq!((six.median, six.interval), (3.5, Some((1.0, 6.0))));
        assert!(six.describe(0).contains("[1, 6]"));
    }

    #[test]
    fn scenarios_grow_their_replicas_with_the_budget() {
        assert_eq!([0.2, 0.4, 0.6, 0.8].map(|b| replicas_at(b, 0.2)), [1, 2, 3, 4]);
        assert_eq!(replicas_at(0.1, 0.2), 1);
        let replicated = ScenarioSpec::parse("monolith-replicated", None).expect("known");
        assert_eq!(
            replicated.topology(3).expect("parses").to_string(),
            "edge+accounts+catalog+inventory+reviews+payments+orders*3"
        );
        let even = ScenarioSpec::parse("microservices-even", None).expect("known");
        assert!(even.topology(2).expect("parses").processes.iter().all(|p| p.replicas == 2));
        let hottest = ScenarioSpec::parse("microservices-hottest", Some("catalog")).expect("known");
        let topology = hottest.topology(4).expect("parses");
        let replicas: Vec<u32> = topology.processes.iter().map(|p| p.replicas).collect();
        assert_eq!(replicas, [1, 1, 4, 1, 1, 1, 1], "{topology}");
        let gateway = ScenarioSpec::parse("microservices-hottest", Some("gateway")).expect("known");
        assert_eq!(gateway.topology(2).expect("parses").processes[0].replicas, 2, "the edge");
        assert!(ScenarioSpec::parse("microservices-hottest", None).is_err(), "needs a calibration");
        let custom = ScenarioSpec::parse("cat=catalog*{n}|rest", None).expect("named");
        assert_eq!((custom.name.as_str(), custom.topology(2).expect("parses").processes[0].replicas), ("cat", 2));
        assert!(ScenarioSpec::parse("nonsense", None).is_err());
        assert!(!ScenarioSpec::parse("monolith", None).expect("known").replicated());
    }
}
