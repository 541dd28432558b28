//! The report's plots, rebuilt from committed runs: latency vs offered rate with every
//! repetition and the objective, a percentile spectrum per endpoint, a per-second timeline per
//! sweep step, and one colour per architecture in all of them.

use std::path::Path;
use std::process::Command;

use splitbench::report::data::RunData;
use splitbench::report::svg::architecture_colour;

/// A copy of the committed run `name` (results/ stays untouched), its report rebuilt.
fn rebuilt(name: &str) -> (tempfile::TempDir, RunData) {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results").join(name).join("run.json");
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::copy(committed, dir.path().join("run.json")).expect("copied");
    let output = Command::new(env!("CARGO_BIN_EXE_splitbench"))
        .arg("report")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("runs");
    assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
    let run = RunData::read(&dir.path().join("run.json")).expect("readable");
    (dir, run)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn a_committed_compare_run_gets_spectra_step_timelines_and_latency_vs_offered_rate() {
    let (dir, run) = rebuilt("20261127T110408Z-compare");
    let report = read(dir.path(), "report.md");
    let plots = report.split("## Plots").nth(1).expect("a Plots section");

    // Latency vs offered rate: one point per repetition of every step, the objective as a line.
    let latency = read(dir.path(), "latency_vs_throughput.svg");
    assert!(plots.contains("(latency_vs_throughput.svg)"));
    assert!(latency.contains("offered requests per second") && latency.contains("log scale"));
    for architecture in ["monolith", "microservices"] {
        let steps = run.sweep_measurements().filter(|m| m.architecture == architecture).count();
        let points = format!(
            r#"fill="{}" fill-opacity="0.7"><title>{architecture} p99, each"#,
            architecture_colour(architecture)
        );
        assert_eq!(latency.matches(&points).count(), steps, "{architecture}: every repetition's point");
    }
    assert_eq!(latency.matches(r#"class="rule""#).count(), 1);
    assert!(latency.contains("objective: p99 ≤ 100.0 ms"), "{latency}");

    // A spectrum per endpoint of the head-to-head run, one curve per architecture.
    let endpoints: Vec<&String> = run.main_measurements().flat_map(|m| m.endpoints.keys()).collect();
    assert!(!endpoints.is_empty());
    for endpoint in endpoints.iter().map(|e| e.as_str()).chain(["all"]) {
        let file = format!("spectrum_{endpoint}.svg");
        assert!(plots.contains(&format!("({file})")), "{file} listed");
        let spectrum = read(dir.path(), &file);
        for label in ["0%", "90%", "99%", "99.9%"] {
            assert!(spectrum.contains(&format!(">{label}</text>")), "{file}: {label} tick");
        }
        for architecture in ["monolith", "microservices"] {
            let curve = format!(
                r#"stroke="{}" stroke-width="2"><title>{architecture}</title>"#,
                architecture_colour(architecture)
            );
            assert_eq!(spectrum.matches(&curve).count(), 1, "{file}: one {architecture} curve");
        }
    }

    // A per-second timeline of every sweep rate, with lag where the run kept it per second.
    let mut rates: Vec<f64> = run.sweep_measurements().filter_map(|m| m.offered_rate).collect();
    rates.dedup();
    for rate in rates {
        let file = format!("sweep_timeline_{rate:.0}rps.svg");
        assert!(plots.contains(&format!("({file})")), "{file} listed");
        let timeline = read(dir.path(), &file);
        for panel in ["answers/s", "failed/s", "degraded/s", "lag p99"] {
            assert!(timeline.contains(panel), "{file}: {panel}");
        }
    }
}

#[test]
fn every_plot_draws_an_architecture_in_the_same_colour() {
    let (dir, _) = rebuilt("20261127T110408Z-compare");
    let report = read(dir.path(), "report.md");
    let files: Vec<&str> =
        report.split("](").skip(1).filter_map(|s| s.split(')').next()).filter(|f| f.ends_with(".svg")).collect();
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let svg = read(dir.path(), file);
        // Every drawn series (a path, a point or a bar, titled with what it shows) of an
        // architecture has that architecture's colour.
        let chunks: Vec<&str> = svg.split("<title>").collect();
        let mut drawn = 0;
        for pair in chunks.windows(2) {
            let element = pair[0].rsplit('<').next().unwrap_or_default();
            for architecture in ["monolith", "microservices"] {
                if pair[1].starts_with(architecture) {
                    drawn += 1;
                    let colour = architecture_colour(architecture);
                    assert!(element.contains(colour), "{file}: {architecture} drawn as {element}");
                }
            }
        }
        assert!(drawn > 0, "{file}: an architecture drawn");
    }
}

#[test]
fn an_old_run_without_per_second_lag_or_degraded_answers_plots_what_it_has() {
    let (dir, run) = rebuilt("20261127T095639Z-compare");
    assert_eq!(run.schema_version, 2);
    let timeline = read(dir.path(), "sweep_timeline_1000rps.svg");
    assert!(timeline.contains("answers/s") && timeline.contains("failed/s"));
    assert!(!timeline.contains("degraded/s") && !timeline.contains("lag p99"), "not recorded then");
    assert!(read(dir.path(), "spectrum_product_page.svg").contains(">99.9%</text>"));
}
