//! A topology planned for starting: what both runners share.
//!
//! [`Deployment::plan`] turns one [`Topology`] into the processes to start, each replica with
//! its name, the modules it hosts, its port and its settings (every upstream module's URL
//! pointing at the process that hosts it). The in-process runner ([`crate::topology::RunningShop`])
//! and the process runner ([`crate::launch::Launcher`]) start exactly these and differ only in
//! how: a server in this process, or a child process. Neither knows which module lives where.
//!
//! Ports are chosen before anything starts, because processes may call each other both ways
//! (no start order would let each learn its upstreams' ports from the ones started before).

use shop::Settings;
use shop::topology::{Module, ProcessSpec, Topology};

/// One process to start (one replica of a topology's process).
#[derive(Debug, Clone)]
pub struct PlannedProcess {
    /// `catalog`, `gateway`, `monolith`, `catalog+reviews`; replicas get `-1`, `-2`, ...
    pub name: String,
    /// Index of its process in the topology.
    pub process: usize,
    pub replica: u32,
    pub spec: ProcessSpec,
    /// Where it listens.
    pub port: u16,
    /// Its settings: port and upstream URLs set; the database is the runner's to add.
    pub settings: Settings,
}

impl PlannedProcess {
    /// The name of this process's database (replicas share their process's database):
    /// the process's name, a grouping's members cut to three letters (`cat_rev`), so that
    /// PostgreSQL's 63-byte names hold it with a run's prefix and suffix.
    pub fn database_name(&self) -> String {
        let name = self.spec.process_name();
        if name.contains('+') {
            name.split('+').map(|member| &member[..member.len().min(3)]).collect::<Vec<_>>().join("_")
        } else {
            name
        }
    }
}

/// Every process of a topology, planned.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub topology: Topology,
    pub processes: Vec<PlannedProcess>,
}

impl Deployment {
    /// Plans `topology` with `settings` (host 127.0.0.1): every replica listens on the port
    /// `listen` gives it; callers reach the process hosting a module at the ports `reach`
    /// gives (the same ports, or a fault proxy's in front of them).
    pub fn plan(
        topology: &Topology,
        settings: &Settings,
        mut listen: impl FnMut(usize, u32) -> u16,
        reach: impl Fn(usize, u16) -> u16,
    ) -> anyhow::Result<Self> {
        let mut settings = settings.clone();
        settings.server.host = "127.0.0.1".into();
        settings.database.database_url = None;
        let ports: Vec<Vec<u16>> = topology
            .processes
            .iter()
            .enumerate()
            .map(|(index, spec)| (0..spec.replicas).map(|replica| listen(index, replica)).collect())
            .collect();
        for module in Module::ALL {
            // Every replica of the host: the callers' clients balance over them.
            let host = topology.host_of(module);
            let urls: Vec<String> = (0..topology.processes[host].replicas)
                .map(|replica| {
                    let port = reach(host, ports[host][replica as usize]);
                    format!("http://127.0.0.1:{port}")
                })
                .collect();
            settings.upstreams.set_url_of(module, urls.join(","));
        }
        let mut processes = Vec::new();
        for (index, spec) in topology.processes.iter().enumerate() {
            for replica in 0..spec.replicas {
                let port = ports[index][replica as usize];
                let mut settings = settings.clone();
                settings.server.port = Some(port);
                let name = match spec.replicas {
                    1 => spec.process_name(),
                    _ => format!("{}-{}", spec.process_name(), replica + 1),
                };
                processes.push(PlannedProcess { name, process: index, replica, spec: spec.clone(), port, settings });
            }
        }
        Ok(Self { topology: topology.clone(), processes })
    }

    /// The process public requests go to (its first replica).
    pub fn edge(&self) -> &PlannedProcess {
        self.edge_replicas().next().expect("a planned topology has its edge")
    }

    /// Every replica of the edge: more than one needs a load balancer in front of them.
    pub fn edge_replicas(&self) -> impl Iterator<Item = &PlannedProcess> {
        let edge = self.topology.edge();
        self.processes.iter().filter(move |p| p.process == edge)
    }

    /// The process hosting `module`.
    pub fn host_of(&self, module: Module) -> &PlannedProcess {
        let host = self.topology.host_of(module);
        self.processes.iter().find(|p| p.process == host).expect("a planned topology hosts every module")
    }
}

/// A free loopback port for every replica of every process of `topology`, by process and
/// replica: what [`Deployment::plan`]'s `listen` reads.
pub fn free_ports_for(topology: &Topology) -> anyhow::Result<Vec<Vec<u16>>> {
    let mut ports = free_ports(topology.processes.iter().map(|p| p.replicas as usize).sum())?.into_iter();
    Ok(topology.processes.iter().map(|p| ports.by_ref().take(p.replicas as usize).collect()).collect())
}

/// `count` free loopback ports, all held at once while chosen (so they differ) and then
/// released for the processes to bind. Another program could take one in between; the
/// process would then fail to bind, loudly.
pub fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..count).map(|_| std::net::TcpListener::bind(("127.0.0.1", 0))).collect::<Result<Vec<_>, _>>()?;
    Ok(listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(spec: &str) -> Deployment {
        let topology = Topology::parse(spec).expect(spec);
        let mut next = 9000;
        Deployment::plan(
            &topology,
            &Settings::defaults(),
            |_, _| {
                next += 1;
                next
            },
            |_, port| port,
        )
        .expect("planned")
    }

    #[test]
    fn every_process_reaches_each_module_at_its_hosts_port() {
        let deployment = planned("all-but-orders");
        let names: Vec<&str> = deployment.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["orders", "edge+accounts+catalog+inventory+reviews+payments"]);
        // Both ways: orders calls the edge's catalog, the edge forwards to orders.
        let (orders, edge) = (&deployment.processes[0], &deployment.processes[1]);
        assert_eq!(orders.settings.upstreams.catalog_url, format!("http://127.0.0.1:{}", edge.port));
        assert_eq!(edge.settings.upstreams.orders_url, format!("http://127.0.0.1:{}", orders.port));
        assert_eq!(deployment.edge().name, edge.name);
        assert_eq!(deployment.host_of(Module::Payments).name, edge.name);
        assert_eq!(edge.database_name(), "edg_acc_cat_inv_rev_pay");
    }

    #[test]
    fn the_presets_keep_their_process_names() {
        let micro = planned("microservices");
        let names: Vec<&str> = micro.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["gateway", "accounts", "catalog", "inventory", "reviews", "payments", "orders"]);
        assert_eq!(planned("monolith").processes[0].name, "monolith");
    }

    #[test]
    fn calls_can_be_routed_through_something_in_front_of_a_process() {
        let topology = Topology::microservices();
        let inventory = topology.host_of(Module::Inventory);
        let deployment = Deployment::plan(
            &topology,
            &Settings::defaults(),
            |index, _| 9000 + index as u16,
            |index, port| if index == inventory { 7777 } else { port },
        )
        .expect("planned");
        let gateway = deployment.edge();
        assert_eq!(gateway.settings.upstreams.inventory_url, "http://127.0.0.1:7777");
        assert_eq!(gateway.settings.upstreams.catalog_url, format!("http://127.0.0.1:{}", 9000 + 2));
        assert_eq!(deployment.host_of(Module::Inventory).port, 9000 + inventory as u16);
    }

    #[test]
    fn callers_get_every_replica_of_a_host_and_replicas_share_a_database() {
        let deployment = planned("catalog*3|rest");
        let names: Vec<&str> = deployment.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["catalog-1", "catalog-2", "catalog-3", "edge+accounts+inventory+reviews+payments+orders"]);
        let replicas: Vec<String> =
            deployment.processes[..3].iter().map(|p| format!("http://127.0.0.1:{}", p.port)).collect();
        let edge = deployment.edge();
        assert_eq!(edge.settings.upstreams.catalog_url, replicas.join(","));
        let databases: std::collections::BTreeSet<String> =
            deployment.processes[..3].iter().map(PlannedProcess::database_name).collect();
        assert_eq!(databases.into_iter().collect::<Vec<_>>(), ["catalog"]);
        // The edge's replicas are listed for the balancer in front of them.
        let monoliths = planned("edge+rest*3");
        assert_eq!(monoliths.edge_replicas().count(), 3);
        assert_eq!(monoliths.edge().name, "monolith-1");
    }

    #[test]
    fn free_ports_differ() {
        let ports = free_ports(8).expect("ports");
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 8);
    }
}
