//! `splitbench criterion-report`: records a `cargo bench` run under `results/` with the
//! environment it ran in, so its numbers can be cited like any other result.
//!
//! Reads criterion's estimates (`target/criterion/**/new/estimates.json` and `benchmark.json`),
//! copies them into `results/<run-id>/criterion/` as the raw data, and writes `report.md`: one
//! row per benchmark with the median and the mean's confidence interval.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    median: Estimate,
}

fn find_estimates(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") && path.join("estimates.json").is_file() {
                found.push(path);
            } else {
                find_estimates(&path, found)?;
            }
        }
    }
    Ok(())
}

/// Formats nanoseconds for people.
fn human_nanos(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.3} ms", ns / 1_000_000.0)
    }
}

/// Estimates written this long before the newest one belong to an earlier `cargo bench` run (a
/// default run takes about six minutes here): a benchmark since renamed or filtered out.
const SAME_RUN: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Splits estimate directories into the last run's and older ones, by modification time.
fn last_run(found: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let modified = |dir: &PathBuf| {
        std::fs::metadata(dir.join("estimates.json")).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH)
    };
    let Some(newest) = found.iter().map(modified).max() else {
        return (found, Vec::new());
    };
    found.into_iter().partition(|dir| newest.duration_since(modified(dir)).unwrap_or_default() <= SAME_RUN)
}

/// Writes `<out>/<run_id>/` from criterion's output directory.
pub fn write(criterion_dir: &Path, run_dir: &Path, command: &str) -> anyhow::Result<usize> {
    let mut found = Vec::new();
    find_estimates(criterion_dir, &mut found).with_context(|| format!("reading {}", criterion_dir.display()))?;
    anyhow::ensure!(
        !found.is_empty(),
        "no criterion estimates under {} (run cargo bench first)",
        criterion_dir.display()
    );
    let (found, stale) = last_run(found);
    let mut rows = Vec::new();
    let raw = run_dir.join("criterion");
    for dir in &found {
        let benchmark: Benchmark = serde_json::from_str(&std::fs::read_to_string(dir.join("benchmark.json"))?)?;
        let estimates: Estimates = serde_json::from_str(&std::fs::read_to_string(dir.join("estimates.json"))?)?;
        let target = raw.join(benchmark.full_id.replace('/', "__"));
        std::fs::create_dir_all(&target)?;
        std::fs::copy(dir.join("benchmark.json"), target.join("benchmark.json"))?;
        std::fs::copy(dir.join("estimates.json"), target.join("estimates.json"))?;
        rows.push((benchmark.full_id, estimates));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let f = crate::fingerprint::collect();
    let mut md = String::new();
    let _ = writeln!(md, "# cargo bench: {}\n", run_dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let _ = writeln!(md, "Benchmarks run by `{command}`; recorded by `splitbench criterion-report`.\n");
    md.push_str(&crate::report::environment_rows(&f, "bench profile"));
    md.push('\n');
    let _ = writeln!(
        md,
        "Times are per call: wall time, except `cpu_*` groups (CPU time of the bench process, which hosts client and servers). Every thread of the bench process runs pinned to one core; only the far ends of `*_cross_core` run on another.\n"
    );
    let _ = writeln!(md, "| benchmark | median | mean | mean 95% interval |\n|---|---|---|---|");
    for (id, e) in &rows {
        let _ = writeln!(
            md,
            "| {id} | {} | {} | {} .. {} |",
            human_nanos(e.median.point_estimate),
            human_nanos(e.mean.point_estimate),
            human_nanos(e.mean.confidence_interval.lower_bound),
            human_nanos(e.mean.confidence_interval.upper_bound)
        );
    }
    if !stale.is_empty() {
        let names: Vec<String> = stale
            .iter()
            .filter_map(|dir| dir.parent()?.strip_prefix(criterion_dir).ok())
            .map(|name| format!("`{}`", name.display()))
            .collect();
        let _ = writeln!(
            md,
            "\nLeft out, as results of an earlier run (more than {} min older than the newest): {}.",
            SAME_RUN.as_secs() / 60,
            names.join(", ")
        );
    }
    std::fs::write(run_dir.join("report.md"), md)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_collected_and_tabulated() {
        let criterion = tempfile::tempdir().expect("a temp dir");
        let new = criterion.path().join("group").join("function").join("new");
        std::fs::create_dir_all(&new).expect("dirs");
        std::fs::write(new.join("benchmark.json"), r#"{"full_id": "group/function", "group_id": "group"}"#)
            .expect("written");
        let estimate = r#"{"point_estimate": 1500.0, "confidence_interval": {"lower_bound": 1400.0, "upper_bound": 1600.0, "confidence_level": 0.95}, "standard_error": 1.0}"#;
        std::fs::write(new.join("estimates.json"), format!(r#"{{"mean": {estimate}, "median": {estimate}}}"#))
            .expect("written");
        let run = tempfile::tempdir().expect("a temp dir");
        assert_eq!(write(criterion.path(), run.path(), "cargo bench").ok(), Some(1));
        let report = std::fs::read_to_string(run.path().join("report.md")).expect("a report");
        assert!(report.contains("| group/function | 1.50 µs | 1.50 µs | 1.40 µs .. 1.60 µs |"), "{report}");
        assert!(run.path().join("criterion/group__function/estimates.json").is_file());

        // A result from an earlier run (an hour older than the newest) is left out and named.
        let old = criterion.path().join("group").join("renamed").join("new");
        std::fs::create_dir_all(&old).expect("dirs");
        std::fs::copy(new.join("estimates.json"), old.join("estimates.json")).expect("copied");
        std::fs::write(old.join("benchmark.json"), r#"{"full_id": "group/renamed", "group_id": "group"}"#)
            .expect("written");
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(old.join("estimates.json"))
            .and_then(|f| f.set_modified(an_hour_ago))
            .expect("mtime set");
        let run = tempfile::tempdir().expect("a temp dir");
        assert_eq!(write(criterion.path(), run.path(), "cargo bench").ok(), Some(1));
        let report = std::fs::read_to_string(run.path().join("report.md")).expect("a report");
        assert!(!report.contains("| group/renamed |"), "{report}");
        assert!(
            report.contains("Left out, as results of an earlier run") && report.contains("`group/renamed`"),
            "{report}"
        );
        let empty = tempfile::tempdir().expect("a temp dir");
        assert!(write(empty.path(), run.path(), "x").is_err());
    }
}
