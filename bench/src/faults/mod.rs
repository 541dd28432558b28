//! Fault runs (`splitbench faults`): the same fault, aimed at the same module of both
//! architectures under the same steady open-loop load, and what the users saw.
//!
//! A scenario names a fault and a module (`crash:inventory`). The fault hits the process that
//! hosts the module: in the microservices that module's service, in the monolith the one
//! process that hosts everything, so the monolith's row shows what sharing a process costs.
//!
//! - **crash**: SIGKILL (no clean-up, as a crash), then the process is started again on the same
//!   port and database once the fault's time is up; its restart counts as recovery time.
//! - **hang**: SIGSTOP for the fault's time, then SIGCONT: the process keeps its connections
//!   and answers nothing, the way a stalled process (a long GC pause, a frozen VM) looks.
//! - **starve**: the process gets a CPU quota far below its need (cgroup v1, 1 ms per 50 ms
//!   period by default), the trigger Huang et al. (OSDI '22) used for metastable failures.
//! - **db-outage**: the module's database is unavailable: on SQLite another connection holds
//!   the write lock (writes wait out their busy timeout and fail, reads in WAL mode go on); on
//!   PostgreSQL the database refuses connections and its open ones are terminated.
//!
//! The window is recorded in 100 ms slices ([`crate::record::Recorder::with_slices`]) and split
//! into phases at the moments the fault began and ended ([`analysis`]); each run ends with the
//! consistency check of the books, so a fault that lost or created an order shows.
//! - **latency**, **bandwidth**, **slicer**, **partition**, **reset-peer**: network faults on
//!   every connection to the module's service, through a proxy with Toxiproxy's toxics
//!   ([`proxy`]), the microservices only: the monolith's modules share a process and no network.
//!   **drop** loses a share of the packets to and from that proxy in the kernel (nftables,
//!   [`drops`]), so TCP retransmits.
//!
//! - **slow**, **failing**: calls into the module at the product page's seam take 200 ms
//!   longer, or half of them fail as a 503 would (`shop::seam_faults`, set through the admin
//!   routes of the process composing the page: the monolith's, the gateway's).

pub mod analysis;
pub mod calls;
pub mod drops;
pub mod inject;
pub mod proxy;
pub mod report;
pub mod run;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use shop::topology::Module;

use crate::record::Endpoint;
use crate::topology::Architecture;

/// What happens to the process hosting the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL, then a restart on the same port and database.
    Crash,
    /// SIGSTOP, then SIGCONT.
    Hang,
    /// A CPU quota far below the process's need (cgroup v1, as root), then lifted.
    Starve,
    /// The module's database unavailable: SQLite's write lock held by another connection,
    /// or the PostgreSQL database closed to connections and its connections terminated.
    DbOutage,
    /// Network faults on every connection to the module's service, through a proxy with
    /// Toxiproxy's toxics ([`proxy`]); microservices only (the monolith's modules call each
    /// other in-process). Answers delayed by a latency with jitter:
    Latency,
    /// answers paced to a bandwidth;
    Bandwidth,
    /// answers cut into small, delayed segments;
    Slicer,
    /// nothing gets through either way, connections held open (Toxiproxy's `timeout` with no
    /// close): a partition, a blackhole;
    Partition,
    /// every connection reset (TCP RST), new ones too;
    ResetPeer,
    /// a share of the TCP packets to and from the proxy lost (nftables, [`drops`]; root), so
    /// TCP waits for retransmissions.
    Drop,
    /// Calls into the module at the product page's seam take longer (the fault layer of
    /// `shop::seam_faults`, in the monolith's one process and in the gateway alike).
    Slow,
    /// A share of those calls fail (as a 503 answer would).
    Failing,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Crash => "crash",
            Self::Hang => "hang",
            Self::Starve => "starve",
            Self::DbOutage => "db-outage",
            Self::Latency => "latency",
            Self::Bandwidth => "bandwidth",
            Self::Slicer => "slicer",
            Self::Partition => "partition",
            Self::ResetPeer => "reset-peer",
            Self::Drop => "drop",
            Self::Slow => "slow",
            Self::Failing => "failing",
        }
    }

    pub const ALL: [Self; 12] = [
        Self::Crash,
        Self::Hang,
        Self::Starve,
        Self::DbOutage,
        Self::Latency,
        Self::Bandwidth,
        Self::Slicer,
        Self::Partition,
        Self::ResetPeer,
        Self::Drop,
        Self::Slow,
        Self::Failing,
    ];

    /// A fault at the product page's module seam (the fault layer, `--faults-enabled`).
    pub fn is_seam(self) -> bool {
        matches!(self, Self::Slow | Self::Failing)
    }

    /// A fault of the network between processes (through the proxy): the monolith has none.
    pub fn is_network(self) -> bool {
        matches!(self, Self::Latency | Self::Bandwidth | Self::Slicer | Self::Partition | Self::ResetPeer | Self::Drop)
    }
}

/// One fault aimed at one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    pub fault: FaultKind,
    pub module: String,
}

impl Scenario {
    /// Parses `crash:inventory` or `hang:reviews`.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let (fault, module) = spec
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("a scenario is fault:module, e.g. crash:inventory; got '{spec}'"))?;
        let fault = FaultKind::ALL.into_iter().find(|k| k.name() == fault.trim()).ok_or_else(|| {
            let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            anyhow::anyhow!("unknown fault '{}' (known: {})", fault.trim(), known.join(", "))
        })?;
        let module = module.trim();
        anyhow::ensure!(Module::parse(module).is_some(), "unknown module '{module}' (known: {})", {
            Module::ALL.map(Module::name).join(", ")
        });
        anyhow::ensure!(
            !fault.is_seam() || shop::seam_faults::SEAMS.iter().any(|(seam, _)| *seam == module),
            "{} faults the product page's seams: catalog, inventory or reviews, not {module}",
            fault.name()
        );
        Ok(Self { fault, module: module.to_string() })
    }

    /// The scenarios `splitbench faults` runs without `--scenario`.
    pub fn defaults() -> Vec<Self> {
        ["crash:inventory", "hang:inventory", "starve:catalog", "db-outage:orders", "drop:inventory"]
            .iter()
            .map(|s| Self::parse(s).expect("the default scenarios parse"))
            .collect()
    }

    /// The process the fault hits in `architecture`: for a seam fault the one holding the
    /// seam (the caller: the gateway composes the product page), otherwise the module's.
    pub fn process(&self, architecture: Architecture) -> String {
        let Some(topology) = architecture.topology() else { return architecture.name().to_string() };
        let host = match shop::topology::Module::parse(&self.module) {
            Some(module) if !self.fault.is_seam() => topology.host(module),
            _ => &topology.processes[topology.edge()],
        };
        host.process_name()
    }

    /// `crash-inventory`, for file names.
    pub fn slug(&self) -> String {
        format!("{}-{}", self.fault.name(), self.module)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.fault.name(), self.module)
    }
}

/// The modules an endpoint needs for a complete answer. An endpoint that does not need the
/// faulted module and still missed its objective is in the fault's blast radius.
pub fn modules_needed(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        // Inventory and reviews are optional parts (a degraded page without them), but a
        // complete page needs them.
        Endpoint::ProductPage => &["catalog", "inventory", "reviews"],
        Endpoint::Search | Endpoint::CategoryListing => &["catalog"],
        // Listing a product's reviews first asks the catalog whether the product exists.
        Endpoint::ReviewsRead => &["reviews", "catalog"],
        // A review is accepted only for a product the catalog knows.
        Endpoint::ReviewWrite => &["reviews", "catalog"],
        Endpoint::Login => &["accounts"],
        Endpoint::Checkout => &["orders", "catalog", "inventory", "payments"],
        Endpoint::OrderHistory => &["orders"],
        Endpoint::Health => &[],
    }
}

/// When the fault starts and how long each phase lasts, from the start of the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaultTiming {
    /// Steady load before the fault.
    pub before: Duration,
    /// How long the fault is held (a crashed process is restarted after this).
    pub during: Duration,
    /// Load after the fault ends, to see whether and when the system recovers.
    pub after: Duration,
}

impl FaultTiming {
    /// The measured window: all three phases.
    pub fn window(&self) -> Duration {
        self.before + self.during + self.after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_and_bad_ones_are_clear_errors() {
        let s = Scenario::parse("crash:inventory").expect("valid");
        assert_eq!((s.fault, s.module.as_str()), (FaultKind::Crash, "inventory"));
        assert_eq!(s.to_string(), "crash:inventory");
        assert_eq!(Scenario::parse(" hang : reviews ").expect("valid").slug(), "hang-reviews");
        assert_eq!(Scenario::parse("db-outage:orders").expect("valid").fault, FaultKind::DbOutage);
        assert_eq!(Scenario::parse("starve:catalog").expect("valid").slug(), "starve-catalog");
        let no_colon = Scenario::parse("crash").expect_err("no colon").to_string();
        assert!(no_colon.contains("fault:module"), "{no_colon}");
        let seam = Scenario::parse("slow:inventory").expect("a seam fault");
        assert_eq!(seam.process(Architecture::Microservices), "gateway", "the seam is where the page composes");
        assert_eq!(seam.process(Architecture::Monolith), "monolith");
        let err = Scenario::parse("failing:payments").expect_err("no seam layer there").to_string();
        assert!(err.contains("catalog, inventory or reviews"), "{err}");
        let fault = Scenario::parse("melt:inventory").expect_err("unknown fault").to_string();
        assert!(fault.contains("unknown fault 'melt'"), "{fault}");
        let module = Scenario::parse("crash:gateway").expect_err("unknown module").to_string();
        assert!(module.contains("unknown module 'gateway'"), "{module}");
    }

    #[test]
    fn the_fault_hits_the_module_service_or_the_whole_monolith() {
        let s = Scenario::parse("hang:payments").expect("valid");
        assert_eq!(s.process(Architecture::Microservices), "payments");
        assert_eq!(s.process(Architecture::Monolith), "monolith");
    }

    #[test]
    fn every_module_is_needed_by_some_endpoint() {
        for module in Module::ALL.map(Module::name) {
            assert!(
                Endpoint::ALL.iter().any(|e| modules_needed(*e).contains(&module)),
                "{module} is needed by no endpoint"
            );
        }
        assert!(modules_needed(Endpoint::Search).contains(&"catalog"));
        assert!(!modules_needed(Endpoint::Search).contains(&"inventory"));
        // The review handlers check the product with the catalog before touching reviews.
        assert_eq!(modules_needed(Endpoint::ReviewsRead), ["reviews", "catalog"]);
        assert_eq!(modules_needed(Endpoint::ReviewWrite), ["reviews", "catalog"]);
    }
}
