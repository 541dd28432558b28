//! Calls between processes per client request, per phase: how much work one user request
//! causes inside the system, and how a fault changes it (retries multiply it, a failing
//! dependency that is no longer called divides it). Read from every process's `/metrics`
//! (`splitbench_http_requests_total`, counted by route as each answer leaves) at the phases'
//! edges: the entry process's (the monolith's, the gateway's) `/api/...` answers are the users'
//! requests; every answer of another process (a forwarded `/api/...` route or an
//! `/internal/...` one) is a call between processes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::analysis::Phase;
use crate::launch::SystemUnderTest;

/// Answers a process had sent by one moment, by kind of route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    /// `/api/...` routes (from users at the entry process; forwarded by the gateway elsewhere).
    pub public: u64,
    /// `/internal/...` routes: calls from another process of the shop.
    pub internal: u64,
}

impl Answered {
    /// Sums the request counter of Prometheus text by route kind.
    pub fn from_metrics(text: &str) -> Self {
        let mut answered = Self::default();
        for line in text.lines().filter(|l| l.starts_with("splitbench_http_requests_total{")) {
            let Some(route) = line.split("route=\"").nth(1).and_then(|rest| rest.split('"').next()) else {
                continue;
            };
            let Some(count) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
            if route.starts_with("/api/") {
                answered.public += count as u64;
            } else if route.starts_with("/internal/") {
                answered.internal += count as u64;
            }
        }
        answered
    }
}

/// Every process's counts at one moment (`None` for a process that did not answer).
pub type Snapshot = BTreeMap<String, Option<Answered>>;

/// Reads every process's `/metrics`, one after the other, each with a short timeout (a
/// process that does not answer has `None`).
pub async fn snapshot(sut: &SystemUnderTest) -> Snapshot {
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(2)).build() else {
        return Snapshot::new();
    };
    let mut counts = Snapshot::new();
    for process in &sut.processes {
        let url = format!("http://127.0.0.1:{}/metrics", process.port);
        let text = async { client.get(url).send().await?.text().await }.await;
        counts.insert(process.name.to_string(), text.ok().map(|t| Answered::from_metrics(&t)));
    }
    counts
}

/// One phase's users' requests and calls between processes, as the processes answered them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseCalls {
    pub phase: Phase,
    pub client_requests: u64,
    pub internal_calls: u64,
    /// internal calls / client requests (`None` without client requests).
    pub per_request: Option<f64>,
}

/// The counts between two snapshots, `entry` the process users call; `None` if a process was
/// not read at either edge. A process whose count went down was restarted in between: its
/// count starts from 0.
pub fn between(phase: Phase, entry: &str, start: &Snapshot, end: &Snapshot) -> Option<PhaseCalls> {
    let (mut client_requests, mut internal_calls) = (0, 0);
    for (name, at_end) in end {
        let (at_start, at_end) = ((*start.get(name)?)?, (*at_end)?);
        let delta = |a: u64, b: u64| if b >= a { b - a } else { b };
        if name == entry {
            client_requests += delta(at_start.public, at_end.public);
        } else {
            internal_calls += delta(at_start.public + at_start.internal, at_end.public + at_end.internal);
        }
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
splitbench_http_requests_total{method="GET",process="catalog",route="/internal/products/{id}",status="200"} 300
splitbench_http_request_duration_seconds_count{method="GET",process="catalog",route="/internal/products/{id}"} 300
"#;

    #[test]
    fn public_and_internal_answers_are_summed_by_route_and_the_rest_left_out() {
        assert_eq!(Answered::from_metrics(METRICS), Answered { public: 127, internal: 300 });
    }

    fn snapshot(entries: &[(&str, Option<(u64, u64)>)]) -> Snapshot {
        entries
            .iter()
            .map(|(name, counts)| (name.to_string(), counts.map(|(public, internal)| Answered { public, internal })))
            .collect()
    }

    #[test]
    fn calls_per_request_between_two_snapshots_survive_a_restart_and_need_every_process() {
        // The catalog answers internal calls (product pages) and forwarded searches.
        let start = snapshot(&[("gateway", Some((100, 0))), ("catalog", Some((50, 250)))]);
        let end = snapshot(&[("gateway", Some((300, 0))), ("catalog", Some((150, 750)))]);
        let calls = between(Phase::After, "gateway", &start, &end).expect("both read");
        assert_eq!((calls.client_requests, calls.internal_calls, calls.per_request), (200, 600, Some(3.0)));
        // The catalog restarted in between: its count began again from 0.
        let restarted = snapshot(&[("gateway", Some((300, 0))), ("catalog", Some((10, 30)))]);
        assert_eq!(between(Phase::During, "gateway", &start, &restarted).map(|c| c.internal_calls), Some(40));
        // A frozen process could not be read: no figure rather than a wrong one.
        let frozen = snapshot(&[("gateway", Some((300, 0))), ("catalog", None)]);
        assert_eq!(between(Phase::During, "gateway", &start, &frozen), None);
        // The monolith: users' requests, no calls between processes.
        let (a, b) = (snapshot(&[("monolith", Some((0, 0)))]), snapshot(&[("monolith", Some((80, 0)))]));
        assert_eq!(between(Phase::Before, "monolith", &a, &b).and_then(|c| c.per_request), Some(0.0));
    }
}
