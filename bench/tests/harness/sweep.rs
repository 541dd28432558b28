//! The sweep's search end to end: the grid, a re-tested failing step, a refinement step
//! between the highest passing and the lowest failing rate, and the capacity interval in
//! run.json and report.md. Which steps pass is arranged, not measured: at most one request in
//! flight makes a step whose Poisson arrivals come microseconds apart overflow (far beyond the
//! error budget), while 20 requests/s against a server that does no work do not.

use splitbench::analyse::{CapacityInterval, Resolution, SweepStage};

use crate::stand_ins::run_against_stand_ins;

#[test]
fn the_sweep_retests_a_failing_step_refines_between_pass_and_fail_and_stores_the_interval() {
    // One refinement step: [20, 20,000) is wider than 15,000 req/s, either half is not.
    let refined = run_against_stand_ins(
        concat!(
            "sweep --arch monolith --mix health --no-pin --max-in-flight 1 --saturation-rounds 0 ",
            "--sweep-rates 20,20000 --sweep-warmup 0s --sweep-duration 1s ",
            "--sweep-resolution 15000 --p99-objective 10s"
        ),
        "refined",
    );
    let run = &refined.run;
    assert_eq!(run.config.sweep_attempts, Some(3));
    assert_eq!(run.config.sweep_resolution, Some(Resolution::Absolute(15_000.0)));

    let attempts_at = |rate: f64| -> Vec<(SweepStage, u32)> {
        run.sweep_measurements()
            .filter(|m| m.offered_rate == Some(rate))
            .map(|m| {
                let step = m.sweep_step.expect("every sweep window says which step it was");
                (step.stage, step.attempt)
            })
            .collect()
    };
    assert_eq!(attempts_at(20.0), vec![(SweepStage::Grid, 1)], "a passing first attempt passes at once");
    let overflowing = attempts_at(20_000.0);
    assert!(
        overflowing == [(SweepStage::Grid, 1), (SweepStage::Grid, 2)]
            || overflowing == [(SweepStage::Grid, 1), (SweepStage::Grid, 2), (SweepStage::Grid, 3)],
        "a failing step is re-tested, every attempt recorded: {overflowing:?}"
    );
    let refinement = attempts_at(10_010.0);
    assert!(
        !refinement.is_empty() && refinement.iter().all(|(stage, _)| *stage == SweepStage::Refinement),
        "the midpoint is tried as a refinement step: {refinement:?}"
    );
    assert_eq!(run.sweep_measurements().count(), 1 + overflowing.len() + refinement.len(), "nothing else");
    assert!(
        run.sweep_measurements().all(|m| m.p99_interval.is_some_and(|i| i.n == m.attempted())),
        "each window's p99 has its interval, over every request"
    );

    let capacity = run.capacity.as_ref().expect("the capacity is stored");
    assert_eq!(capacity.architectures.len(), 1);
    let interval = capacity.architectures[0].interval;
    assert!(
        interval == CapacityInterval { low: 20.0, high: Some(10_010.0) }
            || interval == CapacityInterval { low: 10_010.0, high: Some(20_000.0) },
        "the bracket after refinement: {interval:?}"
    );
    assert_eq!(run.capacity_summary().expect("recomputed").as_ref(), Some(capacity), "derived from the data");
    let report = refined.report();
    assert!(report.contains(&format!("| monolith | {} | 1 |", interval.describe())), "{report}");
    assert!(report.contains("| 20000 | grid | 2 |") && report.contains("| 10010 | refinement | 1 |"), "{report}");
}

#[test]
fn the_architectures_sweeps_advance_in_turns() {
    let both = run_against_stand_ins(
        concat!(
            "sweep --arch both --mix health --no-pin --p99-objective 10s --saturation-rounds 0 ",
            "--sweep-rates 20,40 --sweep-warmup 0s --sweep-duration 1s"
        ),
        "turns",
    );
    let order: Vec<(String, Option<f64>)> =
        both.run.sweep_measurements().map(|m| (m.architecture.clone(), m.offered_rate)).collect();
    let expected: Vec<(String, Option<f64>)> =
        [("monolith", 20.0), ("microservices", 20.0), ("monolith", 40.0), ("microservices", 40.0)]
            .map(|(a, r)| (a.to_string(), Some(r)))
            .into();
    assert_eq!(order, expected, "a step of each in turn, not one sweep after the other");
    // The report still lists each architecture's steps together (the step table's rows name
    // their stage).
    let report = both.report();
    let step_rows: Vec<&str> = report
        .lines()
        .filter(|l| l.contains(" | grid | "))
        .map(|l| l.split(" | ").next().unwrap_or_default().trim_start_matches("| "))
        .collect();
    assert_eq!(step_rows, ["monolith", "monolith", "microservices", "microservices"], "{report}");
}

#[test]
fn the_saturation_stage_alternates_fresh_systems_and_places_each_sweep_grid() {
    let stand_in = run_against_stand_ins(
        concat!(
            "sweep --arch both --mix health --no-pin --p99-objective 10s ",
            "--saturation-rounds 2 --saturation-users 2 --saturation-warmup 0s --saturation-duration 1s ",
            "--sweep-warmup 0s --sweep-duration 1s --sweep-attempts 1 --sweep-resolution 100%"
        ),
        "saturation",
    );
    let run = &stand_in.run;
    let windows: Vec<(String, u32, Option<f64>)> =
        run.saturation_measurements().map(|m| (m.architecture.clone(), m.repetition, m.offered_rate)).collect();
    let expected: Vec<(String, u32, Option<f64>)> =
        [("monolith", 1), ("microservices", 1), ("microservices", 2), ("monolith", 2)]
            .map(|(a, round)| (a.to_string(), round, None))
            .into();
    assert_eq!(windows, expected, "closed loop, a window of each per round, the order reversed every other round");
    assert!(
        run.saturation_measurements().all(|m| m.consistency.is_some()),
        "every round's systems are checked (stand-ins keep no books, so the check reports an error)"
    );

    let saturation = run.saturation.as_ref().expect("the saturation summary is stored");
    // run.json's floats come back within an ulp, hence the comparison to 9 decimals.
    assert_eq!(
        format!("{:.9?}", run.saturation_summary().expect("recomputed")),
        format!("{:.9?}", Some(saturation)),
        "derived from the data"
    );
    let throughput = |architecture: &str, round: u32| {
        run.saturation_measurements()
            .find(|m| m.architecture == architecture && m.repetition == round)
            .map(|m| m.achieved_rate(false))
            .expect("a window")
    };
    let ratio = saturation.throughput_ratio.as_ref().expect("both architectures");
    for round in 1..=2u32 {
        let expected = throughput("monolith", round) / throughput("microservices", round);
        assert!((ratio.each[round as usize - 1] - expected).abs() < 1e-9, "round {round}: within the round");
    }

    let cpu = |architecture: &str, round: u32| {
        run.saturation_measurements()
            .find(|m| m.architecture == architecture && m.repetition == round)
            .map(|m| m.cpu_ms_per_request())
            .expect("a window")
    };
    let cpu_ratio = saturation.cpu_ratio.as_ref().expect("both architectures");
    for round in 1..=2u32 {
        let expected = cpu("microservices", round) / cpu("monolith", round);
        assert!((cpu_ratio.each[round as usize - 1] - expected).abs() < 1e-9, "round {round}: micro / mono");
    }

    for architecture in ["monolith", "microservices"] {
        let rates: Vec<f64> = (1..=2).map(|round| throughput(architecture, round)).collect();
        let median = (rates[0] + rates[1]) / 2.0;
        let grid = splitbench::experiment::grid_from_saturation(median);
        assert_eq!(run.config.sweep_grids.get(architecture), Some(&grid), "{architecture}'s grid as run");
        let first = run.sweep_measurements().find(|m| m.architecture == architecture).and_then(|m| m.offered_rate);
        assert_eq!(first, grid.first().copied(), "{architecture}'s sweep starts on its own grid");
    }
    assert!(run.config.sweep_rates.is_empty(), "no rates were given");
    let report = stand_in.report();
    assert!(report.contains("## Saturation throughput"), "{report}");
    assert!(report.contains("**Saturation throughput, monolith / microservices: median"), "{report}");
}
