//! Calls between processes per user request, per phase: how much work one user request
//! causes inside the system, and how a fault changes it (retries multiply it, a dependency no
//! longer called divides it). Read from every process's `/metrics` at the phases' edges: the
//! entry process's (the monolith's, the gateway's) `/api/...` answers are the users' requests
//! (`splitbench_http_requests_total`); `splitbench_upstream_calls_total` is what each process
//! counted as it called another, answered or not, so calls to a dead or frozen process count.
//! Both count when they end, so a phase holds what ended in it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::analysis::Phase;
use crate::launch::SystemUnderTest;

/// What one process had counted by one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Answers to `/api/...` routes (users' requests at the entry process).
    pub api_answers: u64,
    /// Calls it made to other processes.
    pub calls_made: u64,
    /// How many times the process had been restarted (its counts start again from 0).
    pub restarts: u32,
}

impl Counted {
    /// Reads the two counters from Prometheus text.
    pub fn from_metrics(text: &str, restarts: u32) -> Self {
        let mut counted = Self { restarts, ..Self::default() };
        for line in text.lines() {
            let Some(count) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
            if line.starts_with("splitbench_upstream_calls_total{") {
                counted.calls_made += count as u64;
            } else if line.starts_with("splitbench_http_requests_total{")
                && line.split("route=\"").nth(1).is_some_and(|route| route.starts_with("/api/"))
            {
                counted.api_answers += count as u64;
            }
        }
        counted
    }
}

/// Every process's counts at one moment (`None` for a process that did not answer).
pub type Snapshot = BTreeMap<String, Option<Counted>>;

/// Reads every process's `/metrics` at once (each within 2 s; a process that does not answer
/// has `None`). The reads run beside the load, so a slow one does not delay anything else.
pub async fn snapshot(sut: &SystemUnderTest) -> Snapshot {
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(2)).build() else {
        return Snapshot::new();
    };
    let mut reads = tokio::task::JoinSet::new();
    for process in &sut.processes {
        let (client, name, restarts) = (client.clone(), process.name.to_string(), process.restarts);
        let url = format!("http://127.0.0.1:{}/metrics", process.port);
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

/// One phase's users' requests and calls between processes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseCalls {
    pub phase: Phase,
    pub client_requests: u64,
    pub internal_calls: u64,
    /// internal calls / client requests (`None` without client requests).
    pub per_request: Option<f64>,
}

/// The counts between two snapshots, `entry` the process users call; `None` if a process was
/// not read at either edge.
pub fn between(phase: Phase, entry: &str, start: &Snapshot, end: &Snapshot) -> Option<PhaseCalls> {
    let (mut client_requests, mut internal_calls) = (0, 0);
    for (name, at_end) in end {
        let (at_start, at_end) = ((*start.get(name)?)?, (*at_end)?);
        // Restarted in between: its counts began again from 0.
        let restarted = at_end.restarts != at_start.restarts;
        let delta = |a: u64, b: u64| if restarted { b } else { b.saturating_sub(a) };
        if name == entry {
            client_requests += delta(at_start.api_answers, at_end.api_answers);
        }
        internal_calls += delta(at_start.calls_made, at_end.calls_made);
    }
    Some(PhaseCalls {
        phase,
        client_requests,
        internal_calls,
        per_request: (client_requests > 0).then(|| internal_calls as f64 / client_requests as f64),
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
splitbench_http_request_duration_seconds_count{method="GET",process="gateway",route="/api/products/{id}"} 120
"#;

    #[test]
    fn users_requests_and_calls_made_are_read_and_the_rest_left_out() {
        assert_eq!(Counted::from_metrics(METRICS, 0), Counted { api_answers: 127, calls_made: 312, restarts: 0 });
    }

    /// (process, (api answers, calls made, restarts) or not read).
    type Entry<'a> = (&'a str, Option<(u64, u64, u32)>);

    fn snapshot(entries: &[Entry]) -> Snapshot {
        entries
            .iter()
            .map(|(name, counts)| {
                let counted =
                    counts.map(|(api_answers, calls_made, restarts)| Counted { api_answers, calls_made, restarts });
                (name.to_string(), counted)
            })
            .collect()
    }

    #[test]
    fn calls_per_request_between_two_snapshots_survive_a_restart_and_need_every_process() {
        // The gateway calls the services; the orders service calls inventory and payments.
        let start = snapshot(&[("gateway", Some((100, 250, 0))), ("orders", Some((20, 40, 0)))]);
        let end = snapshot(&[("gateway", Some((300, 750, 0))), ("orders", Some((60, 140, 0)))]);
        let calls = between(Phase::After, "gateway", &start, &end).expect("both read");
        assert_eq!((calls.client_requests, calls.internal_calls, calls.per_request), (200, 600, Some(3.0)));
        // The orders service restarted in between: its counts began again from 0.
        let restarted = snapshot(&[("gateway", Some((300, 750, 0))), ("orders", Some((5, 30, 1)))]);
        assert_eq!(between(Phase::During, "gateway", &start, &restarted).map(|c| c.internal_calls), Some(530));
        // A frozen process could not be read: no figure rather than a wrong one.
        let frozen = snapshot(&[("gateway", Some((300, 750, 0))), ("orders", None)]);
        assert_eq!(between(Phase::During, "gateway", &start, &frozen), None);
        // The monolith: users' requests, no calls between processes.
        let (a, b) = (snapshot(&[("monolith", Some((0, 0, 0)))]), snapshot(&[("monolith", Some((80, 0, 0)))]));
        assert_eq!(between(Phase::Before, "monolith", &a, &b).and_then(|c| c.per_request), Some(0.0));
    }
}
