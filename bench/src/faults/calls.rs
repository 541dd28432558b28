//! Calls between processes per offered user request, per phase: how much work the users' load
//! causes inside the system, and how a fault changes it (retries multiply it, a dependency no
//! longer called divides it). The calls are read from every process's `/metrics` at the
//! phases' edges (`splitbench_upstream_calls_total`: what each process counted as it called
//! another, when the call ended, answered or not, so calls to a dead or frozen process count;
//! calls given up before they were sent do not);
//! the users' requests are those the generator's schedule made due in the phase, so a fault
//! that delays answers does not shrink the denominator.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::analysis::Phase;
use crate::launch::SystemUnderTest;

/// What one process had counted by one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Calls it made to other processes.
    pub calls_made: u64,
    /// Public requests it shed (the gateway's admission control, `full` only).
    #[serde(default)]
    pub shed: u64,
    /// How many times the process had been restarted (its counts start again from 0).
    pub restarts: u32,
}

impl Counted {
    /// Sums the calls counter (every upstream and outcome) and reads the shed counter from
    /// Prometheus text.
    pub fn from_metrics(text: &str, restarts: u32) -> Self {
        let sum = |metric: &str| {
            text.lines()
                .filter(|line| line.strip_prefix(metric).is_some_and(|rest| rest.starts_with(['{', ' '])))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        };
        Self {
            calls_made: sum("splitbench_upstream_calls_total"),
            shed: sum("splitbench_shed_requests_total"),
            restarts,
        }
    }
}

/// Every process's counts at one moment (`None` for a process that did not answer).
pub type Snapshot = BTreeMap<String, Option<Counted>>;

/// Reads every process's `/metrics` at once (each within 2 s; a process that does not answer
/// has `None`). The reads run beside the load, so a slow one does not delay anything else.
pub async fn snapshot(sut: &SystemUnderTest) -> Snapshot {
    let processes: Vec<(String, u16, u32)> =
        sut.processes.iter().map(|p| (p.name.to_string(), p.port, p.restarts)).collect();
    read_all(&processes, Duration::from_secs(2)).await
}

/// [`snapshot`] by ports alone (restart counts unknown: 0), each read within `timeout`, for the
/// once-a-second sampler, which runs while the injector holds the system.
pub async fn snapshot_ports(processes: &[(String, u16)], timeout: Duration) -> Snapshot {
    let processes: Vec<(String, u16, u32)> = processes.iter().map(|(name, port)| (name.clone(), *port, 0)).collect();
    read_all(&processes, timeout).await
}

async fn read_all(processes: &[(String, u16, u32)], timeout: Duration) -> Snapshot {
    let Ok(client) = reqwest::Client::builder().timeout(timeout).build() else {
        return Snapshot::new();
    };
    let mut reads = tokio::task::JoinSet::new();
    for (name, port, restarts) in processes {
        let (client, name, restarts) = (client.clone(), name.clone(), *restarts);
        let url = format!("http://127.0.0.1:{port}/metrics");
        reads.spawn(async move {
            let text = async { client.get(url).send().await?.text().await }.await;
            (name, text.ok().map(|t| Counted::from_metrics(&t, restarts)))
        });
    }
    let mut counts = Snapshot::new();
    while let Some(read) = reads.join_next().await {
        if let Ok((name, counted)) = read {
            counts.insert(name, counted);
        }
    }
    counts
}

/// Calls made between two snapshots taken by ports alone ([`snapshot_ports`]): a count that
/// went down belongs to a process restarted in between, counted from 0 (the calls it made
/// before it was killed are lost). `None` if a process was not read at either edge.
pub fn calls_between(start: &Snapshot, end: &Snapshot) -> Option<u64> {
    let mut calls = 0;
    for (name, at_end) in end {
        let (at_start, at_end) = ((*start.get(name)?)?, (*at_end)?);
        calls += if at_end.calls_made < at_start.calls_made {
            at_end.calls_made
        } else {
            at_end.calls_made - at_start.calls_made
        };
    }
    Some(calls)
}

/// Calls between processes per offered user request in each second of the window, from a
/// snapshot at every second's edge and the requests due per second (`None` for a second
/// with a process unread at an edge, or no request due).
pub fn per_second(snapshots: &[Snapshot], due: &[u64]) -> Vec<Option<f64>> {
    snapshots
        .windows(2)
        .zip(due)
        .map(|(edges, &due)| {
            let calls = calls_between(&edges[0], &edges[1])?;
            (due > 0).then(|| calls as f64 / due as f64)
        })
        .collect()
}

/// One phase's offered user requests and calls between processes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseCalls {
    pub phase: Phase,
    /// User requests the schedule made due in the phase.
    pub offered_requests: u64,
    pub internal_calls: u64,
    /// internal calls / offered requests (`None` without offered requests).
    pub per_request: Option<f64>,
    /// User requests the gateway shed in the phase (load shedding, `full` only).
    #[serde(default)]
    pub shed: u64,
}

/// The calls between two snapshots over `offered` user requests; `None` if a process was not
/// read at either edge.
pub fn between(phase: Phase, offered: u64, start: &Snapshot, end: &Snapshot) -> Option<PhaseCalls> {
    let (mut internal_calls, mut shed) = (0, 0);
    for (name, at_end) in end {
        let (at_start, at_end) = ((*start.get(name)?)?, (*at_end)?);
        // Restarted in between: its counts began again from 0.
        let restarted = at_end.restarts != at_start.restarts;
        let since = |at_start: u64, at_end: u64| if restarted { at_end } else { at_end.saturating_sub(at_start) };
        internal_calls += since(at_start.calls_made, at_end.calls_made);
        shed += since(at_start.shed, at_end.shed);
    }
    Some(PhaseCalls {
        phase,
        offered_requests: offered,
        internal_calls,
        per_request: (offered > 0).then(|| internal_calls as f64 / offered as f64),
        shed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = r#"# HELP splitbench_http_requests_total HTTP requests answered
# TYPE splitbench_http_requests_total counter
splitbench_http_requests_total{method="GET",process="gateway",route="/api/products/{id}",status="200"} 120
splitbench_http_requests_total{method="POST",process="gateway",route="/api/orders",status="201"} 7
splitbench_http_requests_total{method="GET",process="gateway",route="/health",status="200"} 3
splitbench_upstream_calls_total{outcome="answered",upstream="catalog"} 300
splitbench_upstream_calls_total{outcome="failed",upstream="inventory"} 12
splitbench_shed_requests_total 9
splitbench_http_request_duration_seconds_count{method="GET",process="gateway",route="/api/products/{id}"} 120
"#;

    #[test]
    fn calls_made_are_summed_over_upstreams_and_outcomes_and_the_rest_left_out() {
        assert_eq!(Counted::from_metrics(METRICS, 2), Counted { calls_made: 312, shed: 9, restarts: 2 });
    }

    #[test]
    fn requests_shed_in_a_phase_are_the_gateways_count_between_its_edges() {
        let at = |calls_made, shed| -> Snapshot {
            [("gateway".to_string(), Some(Counted { calls_made, shed, restarts: 0 }))].into_iter().collect()
        };
        let phase = between(Phase::During, 100, &at(10, 4), &at(40, 29)).expect("read");
        assert_eq!((phase.internal_calls, phase.shed), (30, 25));
    }

    /// (process, (calls made, restarts) or not read).
    type Entry<'a> = (&'a str, Option<(u64, u32)>);

    fn snapshot(entries: &[Entry]) -> Snapshot {
        entries
            .iter()
            .map(|(name, counts)| {
                (name.to_string(), counts.map(|(calls_made, restarts)| Counted { calls_made, shed: 0, restarts }))
            })
            .collect()
    }

    #[test]
    fn calls_per_second_divide_each_seconds_calls_by_its_due_requests() {
        let edges = [
            snapshot(&[("gateway", Some((100, 0))), ("orders", Some((10, 0)))]),
            snapshot(&[("gateway", Some((300, 0))), ("orders", Some((30, 0)))]),
            // orders restarted: its count fell, so the 5 are all since the restart.
            snapshot(&[("gateway", Some((500, 0))), ("orders", Some((5, 0)))]),
            snapshot(&[("gateway", Some((600, 0))), ("orders", None)]),
        ];
        assert_eq!(per_second(&edges, &[100, 41, 50]), vec![Some(2.2), Some(5.0), None]);
        assert_eq!(per_second(&edges[..2], &[0]), vec![None], "nothing due, no ratio");
    }

    #[test]
    fn calls_per_offered_request_between_two_snapshots_survive_a_restart_and_need_every_process() {
        // The gateway calls the services; the orders service calls inventory and payments.
        let start = snapshot(&[("gateway", Some((250, 0))), ("orders", Some((40, 0)))]);
        let end = snapshot(&[("gateway", Some((750, 0))), ("orders", Some((140, 0)))]);
        let calls = between(Phase::After, 200, &start, &end).expect("both read");
        assert_eq!((calls.offered_requests, calls.internal_calls, calls.per_request), (200, 600, Some(3.0)));
        // The orders service restarted in between: its count began again from 0.
        let restarted = snapshot(&[("gateway", Some((750, 0))), ("orders", Some((30, 1)))]);
        assert_eq!(between(Phase::During, 200, &start, &restarted).map(|c| c.internal_calls), Some(530));
        // A frozen process could not be read: no figure rather than a wrong one.
        let frozen = snapshot(&[("gateway", Some((750, 0))), ("orders", None)]);
        assert_eq!(between(Phase::During, 200, &start, &frozen), None);
        // The monolith: no calls between processes.
        let (a, b) = (snapshot(&[("monolith", Some((0, 0)))]), snapshot(&[("monolith", Some((0, 0)))]));
        assert_eq!(between(Phase::Before, 80, &a, &b).and_then(|c| c.per_request), Some(0.0));
        assert_eq!(between(Phase::Before, 0, &a, &b).and_then(|c| c.per_request), None);
    }
}
