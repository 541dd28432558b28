//! A deployment's shape, described once: which of the shop's six modules each process hosts,
//! which process is the public entry point (the *edge*: token checks, the product page,
//! forwarding), how many replicas each process runs, and its CPU budget.
//!
//! Written as a preset (`monolith`, `microservices`, ...) or in a compact syntax: processes
//! separated by `|`, the members of one process by `+`, `rest` for every module (and the edge)
//! named nowhere else, and after a process's members `*N` replicas and `@C` cores each:
//!
//! ```text
//! edge+accounts+catalog+inventory+reviews+payments+orders    the monolith
//! edge|accounts|catalog|inventory|reviews|payments|orders    today's seven processes
//! catalog+reviews|inventory|rest                             catalog and reviews together
//! edge*2@0.2|catalog*4@0.1|rest@0.3                          replicas and CPU budgets
//! ```
//!
//! Validation is done once, here: every module hosted exactly once, one edge. The description
//! also knows which processes call which (a module's calls to a module in another process go
//! over HTTP). Processes may call each other both ways (in `all-but-orders` the orders process
//! calls the catalog in the edge's process, and the edge forwards checkouts to orders), so no
//! start order gives every process its upstreams' addresses: a runner assigns every process
//! its port before it starts any.
//!
//! [`crate::process::build`] builds any process of a topology; the harness plans one
//! (`bench::deployment`) and starts it as processes or in-process. Replicas of the edge (which
//! need a load balancer in front) are refused there for now.

use std::collections::BTreeSet;
use std::fmt;

/// One of the shop's modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Module {
    Accounts,
    Catalog,
    Inventory,
    Reviews,
    Payments,
    Orders,
}

impl Module {
    pub const ALL: [Module; 6] =
        [Self::Accounts, Self::Catalog, Self::Inventory, Self::Reviews, Self::Payments, Self::Orders];

    pub fn name(self) -> &'static str {
        match self {
            Self::Accounts => "accounts",
            Self::Catalog => "catalog",
            Self::Inventory => "inventory",
            Self::Reviews => "reviews",
            Self::Payments => "payments",
            Self::Orders => "orders",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The modules this one calls: a review needs the catalog to know the product; a checkout
    /// needs the catalog's prices, inventory's reservations and a payment.
    pub fn calls(self) -> &'static [Module] {
        match self {
            Self::Reviews => &[Self::Catalog],
            Self::Orders => &[Self::Catalog, Self::Inventory, Self::Payments],
            Self::Accounts | Self::Catalog | Self::Inventory | Self::Payments => &[],
        }
    }
}

/// One process of a deployment (run `replicas` times).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    pub modules: BTreeSet<Module>,
    /// The public entry point: it serves the public API, composes the product page and
    /// forwards what its own modules do not serve.
    pub edge: bool,
    pub replicas: u32,
    /// Cores each replica may use (a CPU quota); `None`: no budget.
    pub cores: Option<f64>,
}

impl ProcessSpec {
    /// `edge+accounts+orders`: its members in a fixed order (the edge first).
    pub fn name(&self) -> String {
        let mut members: Vec<&str> = self.modules.iter().map(|m| m.name()).collect();
        if self.edge {
            members.insert(0, EDGE);
        }
        members.join("+")
    }

    /// What the process is called in logs, metrics and reports: `monolith` (the edge with
    /// every module), `gateway` (the edge alone), a module's name when it is alone, otherwise
    /// its members (`catalog+reviews`).
    pub fn process_name(&self) -> String {
        match (self.edge, self.modules.len()) {
            (true, _) if self.hosts_everything() => "monolith".into(),
            (true, 0) => "gateway".into(),
            _ => self.name(),
        }
    }

    pub fn hosts(&self, module: Module) -> bool {
        self.modules.contains(&module)
    }

    /// Hosts all six modules: calls nobody, and nobody calls it.
    pub fn hosts_everything(&self) -> bool {
        self.modules.len() == Module::ALL.len()
    }

    /// Parses a process's members (`edge+catalog`, `orders`, no `rest`, replicas or budget):
    /// the `--hosts` flag of a shop process.
    pub fn parse_members(members: &str) -> Result<Self, TopologyError> {
        let mut process = ProcessSpec { modules: BTreeSet::new(), edge: false, replicas: 1, cores: None };
        for member in members.split('+').map(str::trim) {
            match member {
                "" => return Err(TopologyError::EmptyProcess),
                EDGE if process.edge => return Err(TopologyError::EdgeTwice),
                EDGE => process.edge = true,
                "all" => process.modules.extend(Module::ALL),
                name => {
                    let module = Module::parse(name).ok_or_else(|| TopologyError::UnknownMember(name.to_string()))?;
                    if !process.modules.insert(module) {
                        return Err(TopologyError::HostedTwice(module.name()));
                    }
                }
            }
        }
        Ok(process)
    }
}

/// What a topology description got wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopologyError {
    #[error("a topology needs at least one process")]
    Empty,
    #[error("unknown member '{0}' (a module: accounts, catalog, inventory, reviews, payments, orders; or edge, rest)")]
    UnknownMember(String),
    #[error("{0} is hosted by more than one process")]
    HostedTwice(&'static str),
    #[error("no process hosts {0} (name it, or put `rest` in a process)")]
    NotHosted(String),
    #[error("the edge (the public entry point) is in more than one process")]
    EdgeTwice,
    #[error("`rest` may stand in one process only")]
    RestTwice,
    #[error("a process needs at least one member")]
    EmptyProcess,
    #[error("bad replica count '{0}': a whole number from 1")]
    BadReplicas(String),
    #[error("bad CPU budget '{0}': cores per replica, above 0")]
    BadCores(String),
}

/// Which modules each process hosts: the whole deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub processes: Vec<ProcessSpec>,
}

const EDGE: &str = "edge";
const REST: &str = "rest";

/// The named topologies: name, description, what it is.
pub const PRESETS: [(&str, &str, &str); 4] = [
    ("monolith", "edge+rest", "every module in one process"),
    (
        "microservices",
        "edge|accounts|catalog|inventory|reviews|payments|orders",
        "a gateway and one process per module",
    ),
    ("all-but-orders", "orders|rest", "orders split off, everything else in one process"),
    (
        "catalog-reviews",
        "catalog+reviews|inventory|rest",
        "catalog and reviews together, inventory alone, the rest with the edge",
    ),
];

impl Topology {
    pub fn monolith() -> Self {
        Self::parse("monolith").expect("the preset parses")
    }

    pub fn microservices() -> Self {
        Self::parse("microservices").expect("the preset parses")
    }

    /// A preset's name or a description in the syntax of this module's documentation.
    pub fn parse(spec: &str) -> Result<Self, TopologyError> {
        let spec = spec.trim();
        let spec = PRESETS.iter().find(|(name, _, _)| *name == spec).map_or(spec, |(_, description, _)| description);
        if spec.is_empty() {
            return Err(TopologyError::Empty);
        }
        let mut processes = Vec::new();
        let mut rest_in = None;
        for (index, group) in spec.split('|').enumerate() {
            let (members, replicas, cores) = split_budget(group.trim())?;
            let mut process = ProcessSpec { modules: BTreeSet::new(), edge: false, replicas, cores };
            for member in members.split('+').map(str::trim) {
                match member {
                    "" => return Err(TopologyError::EmptyProcess),
                    EDGE if process.edge => return Err(TopologyError::EdgeTwice),
                    EDGE => process.edge = true,
                    REST if rest_in.is_some() => return Err(TopologyError::RestTwice),
                    REST => rest_in = Some(index),
                    name => {
                        let module =
                            Module::parse(name).ok_or_else(|| TopologyError::UnknownMember(name.to_string()))?;
                        if !process.modules.insert(module) {
                            return Err(TopologyError::HostedTwice(module.name()));
                        }
                    }
                }
            }
            processes.push(process);
        }
        // Every module and the edge once, `rest` taking whatever no other process named.
        let mut edges = processes.iter().filter(|p| p.edge).count();
        let mut unhosted = Vec::new();
        for module in Module::ALL {
            match processes.iter().filter(|p| p.hosts(module)).count() {
                0 => unhosted.push(module),
                1 => {}
                _ => return Err(TopologyError::HostedTwice(module.name())),
            }
        }
        if edges > 1 {
            return Err(TopologyError::EdgeTwice);
        }
        if let Some(index) = rest_in {
            processes[index].modules.extend(unhosted.drain(..));
            if edges == 0 {
                processes[index].edge = true;
                edges = 1;
            }
        }
        let mut missing: Vec<&str> = unhosted.iter().map(|m| m.name()).collect();
        if edges == 0 {
            missing.push("the edge (the public entry point)");
        }
        if !missing.is_empty() {
            return Err(TopologyError::NotHosted(missing.join(", ")));
        }
        if processes.iter().any(|p| p.modules.is_empty() && !p.edge) {
            return Err(TopologyError::EmptyProcess);
        }
        Ok(Self { processes })
    }

    /// The process hosting `module`.
    pub fn host_of(&self, module: Module) -> usize {
        self.processes.iter().position(|p| p.hosts(module)).expect("a validated topology hosts every module")
    }

    /// The process hosting `module`, described.
    pub fn host(&self, module: Module) -> &ProcessSpec {
        &self.processes[self.host_of(module)]
    }

    /// The process that is the public entry point.
    pub fn edge(&self) -> usize {
        self.processes.iter().position(|p| p.edge).expect("a validated topology has an edge")
    }

    /// The other processes `process` calls over HTTP: those hosting a module one of its modules
    /// calls, and for the edge every process with a module it does not host.
    pub fn upstreams_of(&self, process: usize) -> BTreeSet<usize> {
        let spec = &self.processes[process];
        let called: Vec<Module> = if spec.edge {
            Module::ALL.to_vec()
        } else {
            spec.modules.iter().flat_map(|m| m.calls().iter().copied()).collect()
        };
        called.into_iter().map(|m| self.host_of(m)).filter(|&host| host != process).collect()
    }

    /// The CPU budget of the whole deployment (replicas times cores), if every process has one.
    pub fn total_cores(&self) -> Option<f64> {
        self.processes.iter().map(|p| p.cores.map(|c| c * f64::from(p.replicas))).sum()
    }
}

impl fmt::Display for Topology {
    /// The description in full (no `rest`, no preset name): parsing it gives the same topology.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self
            .processes
            .iter()
            .map(|p| {
                let mut group = p.name();
                if p.replicas != 1 {
                    group.push_str(&format!("*{}", p.replicas));
                }
                if let Some(cores) = p.cores {
                    group.push_str(&format!("@{cores}"));
                }
                group
            })
            .collect();
        f.write_str(&groups.join("|"))
    }
}

/// `catalog+reviews*2@0.25` -> (`catalog+reviews`, 2, Some(0.25)).
fn split_budget(group: &str) -> Result<(&str, u32, Option<f64>), TopologyError> {
    let (rest, cores) = match group.split_once('@') {
        Some((rest, cores)) => {
            let parsed: f64 = cores.trim().parse().map_err(|_| TopologyError::BadCores(cores.to_string()))?;
            if !(parsed > 0.0 && parsed.is_finite()) {
                return Err(TopologyError::BadCores(cores.to_string()));
            }
            (rest, Some(parsed))
        }
        None => (group, None),
    };
    let (members, replicas) = match rest.split_once('*') {
        Some((members, replicas)) => {
            let parsed: u32 = replicas.trim().parse().map_err(|_| TopologyError::BadReplicas(replicas.to_string()))?;
            if parsed == 0 {
                return Err(TopologyError::BadReplicas(replicas.to_string()));
            }
            (members, parsed)
        }
        None => (rest, 1),
    };
    Ok((members.trim(), replicas, cores))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(topology: &Topology) -> Vec<String> {
        topology.processes.iter().map(ProcessSpec::name).collect()
    }

    #[test]
    fn the_presets_are_the_two_ends_and_two_groupings_between_them() {
        assert_eq!(names(&Topology::monolith()), ["edge+accounts+catalog+inventory+reviews+payments+orders"]);
        assert_eq!(
            names(&Topology::microservices()),
            ["edge", "accounts", "catalog", "inventory", "reviews", "payments", "orders"]
        );
        let between = Topology::parse("catalog-reviews").expect("a preset");
        assert_eq!(names(&between), ["catalog+reviews", "inventory", "edge+accounts+payments+orders"]);
        assert_eq!(names(&Topology::parse("all-but-orders").expect("a preset")).len(), 2);
    }

    #[test]
    fn a_module_hosted_twice_or_nowhere_and_a_second_edge_are_clear_errors() {
        let err = |spec: &str| Topology::parse(spec).expect_err(spec);
        assert_eq!(err("catalog|catalog+reviews|rest"), TopologyError::HostedTwice("catalog"));
        assert_eq!(err("catalog+catalog|rest"), TopologyError::HostedTwice("catalog"));
        assert_eq!(
            err("edge|catalog|inventory"),
            TopologyError::NotHosted("accounts, reviews, payments, orders".into())
        );
        assert_eq!(
            err("accounts|catalog|inventory|reviews|payments|orders"),
            TopologyError::NotHosted("the edge (the public entry point)".into())
        );
        assert_eq!(err("edge|edge+rest"), TopologyError::EdgeTwice);
        assert_eq!(err("rest|catalog+rest"), TopologyError::RestTwice);
        assert_eq!(err("shipping|rest"), TopologyError::UnknownMember("shipping".into()));
        assert_eq!(err("catalog||rest"), TopologyError::EmptyProcess);
        assert_eq!(err(""), TopologyError::Empty);
        assert_eq!(err("catalog*0|rest"), TopologyError::BadReplicas("0".into()));
        assert_eq!(err("catalog*two|rest"), TopologyError::BadReplicas("two".into()));
        assert_eq!(err("catalog@0|rest"), TopologyError::BadCores("0".into()));
        assert_eq!(err("catalog@-1|rest"), TopologyError::BadCores("-1".into()));
        // The message names the problem.
        assert!(err("catalog|catalog|rest").to_string().contains("catalog is hosted by more than one process"));
    }

    #[test]
    fn replicas_and_budgets_are_per_process_and_add_up() {
        let topology = Topology::parse("edge*2@0.2|catalog*4@0.1|rest@0.3").expect("parses");
        let budgets: Vec<(u32, Option<f64>)> = topology.processes.iter().map(|p| (p.replicas, p.cores)).collect();
        assert_eq!(budgets, [(2, Some(0.2)), (4, Some(0.1)), (1, Some(0.3))]);
        let total = topology.total_cores().expect("every process has a budget");
        assert!((total - 1.1).abs() < 1e-9, "{total}");
        assert_eq!(Topology::microservices().total_cores(), None);
    }

    #[test]
    fn a_process_calls_the_processes_hosting_the_modules_its_modules_call() {
        let names_of = |topology: &Topology, process: usize| -> Vec<String> {
            topology.upstreams_of(process).into_iter().map(|p| topology.processes[p].name()).collect()
        };
        // In the microservices, orders calls three services, reviews one, the edge all six.
        let micro = Topology::microservices();
        assert_eq!(names_of(&micro, micro.host_of(Module::Orders)), ["catalog", "inventory", "payments"]);
        assert_eq!(names_of(&micro, micro.host_of(Module::Reviews)), ["catalog"]);
        assert_eq!(names_of(&micro, micro.edge()).len(), 6);
        assert!(names_of(&micro, micro.host_of(Module::Catalog)).is_empty());
        // One process calls nobody.
        assert!(Topology::monolith().upstreams_of(0).is_empty());
        // Co-hosted calls stay in-process: reviews next to the catalog calls no other process.
        let between = Topology::parse("catalog-reviews").expect("a preset");
        assert!(between.upstreams_of(between.host_of(Module::Reviews)).is_empty());
        assert_eq!(names_of(&between, between.edge()), ["catalog+reviews", "inventory"]);
        // Both ways: orders calls the catalog in the edge's process, the edge forwards to orders.
        let split = Topology::parse("all-but-orders").expect("a preset");
        let (orders, edge) = (split.host_of(Module::Orders), split.edge());
        assert!(split.upstreams_of(orders).contains(&edge) && split.upstreams_of(edge).contains(&orders));
    }

    #[test]
    fn a_topology_written_out_parses_back_to_itself() {
        for spec in ["monolith", "microservices", "catalog-reviews", "edge*2@0.2|catalog*4@0.1|rest@0.3"] {
            let topology = Topology::parse(spec).expect(spec);
            assert_eq!(Topology::parse(&topology.to_string()).expect("its own text"), topology, "{spec}");
        }
        assert_eq!(Topology::monolith().to_string(), "edge+accounts+catalog+inventory+reviews+payments+orders");
    }

    #[test]
    fn every_module_parses_from_its_name() {
        for module in Module::ALL {
            assert_eq!(Module::parse(module.name()), Some(module));
        }
        assert_eq!(Module::parse("gateway"), None);
    }
}
