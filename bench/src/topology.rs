//! Starting and stopping a shop in this process, with fresh databases: the in-process runner.
//!
//! [`RunningShop::start_topology`] builds every process of a topology inside this process
//! (each a real actix-web server on its own loopback port, with its own worker threads and its
//! own database), as [`crate::deployment::Deployment::plan`] plans them, and returns the public
//! base URL; [`RunningShop::start`] starts an architecture's topology.
//!
//! Databases: SQLite files in a temporary directory (removed on drop), or, with a PostgreSQL
//! server URL, one freshly created database per process, dropped by [`RunningShop::stop`].

use std::collections::BTreeMap;

use actix_web::dev::ServerHandle;
use anyhow::Context;
use shop::Settings;
use shop::topology::Topology;
use sqlx::{ConnectOptions, Connection};

use crate::deployment::{Deployment, PlannedProcess, free_ports_for};

const NOT_IN_PROCESS: &str = "the null server runs only as a process (splitbench --arch null-server)";

/// Which build of the shop to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Architecture {
    Monolith,
    Microservices,
    /// Not a shop: `null-server`, the harness's yardstick for its own generator. Started only
    /// as a process by the launcher, never in-process.
    NullServer,
    /// Any other topology ([`Architecture::topology_named`]): its name in results, and its
    /// description (`shop::topology` syntax), leaked as `'static` so an architecture stays
    /// `Copy` (a few per command).
    Topology {
        name: &'static str,
        description: &'static str,
    },
}

impl Architecture {
    pub const ALL: [Architecture; 2] = [Self::Monolith, Self::Microservices];

    pub fn name(self) -> &'static str {
        match self {
            Self::Monolith => "monolith",
            Self::Microservices => "microservices",
            Self::NullServer => "null-server",
            Self::Topology { name, .. } => name,
        }
    }

    /// The architecture's topology (`None` for the null server, which is not a shop).
    pub fn topology(self) -> Option<Topology> {
        match self {
            Self::Monolith => Some(Topology::monolith()),
            Self::Microservices => Some(Topology::microservices()),
            Self::NullServer => None,
            Self::Topology { description, .. } => {
                Some(Topology::parse(description).expect("validated by Architecture::topology_named"))
            }
        }
    }

    /// A topology to measure under `name`: a preset's name or a description. The two
    /// architectures' own presets give [`Architecture::Monolith`] and
    /// [`Architecture::Microservices`] (same name, same topology).
    pub fn topology_named(name: &str, description: &str) -> Result<Self, shop::topology::TopologyError> {
        let topology = Topology::parse(description)?;
        if topology == Topology::monolith() && name == "monolith" {
            return Ok(Self::Monolith);
        }
        if topology == Topology::microservices() && name == "microservices" {
            return Ok(Self::Microservices);
        }
        // A handful per run, kept for the run's life: leaking them keeps `Architecture` `Copy`.
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        let description: &'static str = Box::leak(topology.to_string().into_boxed_str());
        Ok(Self::Topology { name, description })
    }
}

/// Where the databases live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file per process in a fresh temporary directory.
    Sqlite,
    /// A fresh database per process on this PostgreSQL server (URL of any existing database,
    /// used to create and drop the fresh ones).
    Postgres { server_url: String },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    /// SQLite always; PostgreSQL too when `SPLITBENCH_TEST_POSTGRES` holds a server URL.
    pub fn for_tests() -> Vec<Backend> {
        let mut backends = vec![Backend::Sqlite];
        if let Ok(url) = std::env::var("SPLITBENCH_TEST_POSTGRES")
            && !url.trim().is_empty()
        {
            backends.push(Backend::Postgres { server_url: url.trim().to_string() });
        }
        backends
    }
}

/// A started shop. Stop it with [`RunningShop::stop`]; dropping it stops the servers too but
/// cannot drop PostgreSQL databases.
pub struct RunningShop {
    /// The architecture's or preset's name (`monolith`, `catalog-reviews`), for messages.
    pub name: String,
    pub topology: Topology,
    pub backend: Backend,
    /// Base URL of the public API (the edge: the monolith, or the gateway).
    pub base_url: String,
    /// Every process's port, by process name.
    pub ports: BTreeMap<String, u16>,
    /// Every process's database URL, by the topology's process name (replicas share their
    /// process's; the gateway has none).
    pub database_urls: BTreeMap<String, String>,
    handles: BTreeMap<String, ServerHandle>,
    /// Every process as planned, its database URL set: what a restart starts again.
    planned: BTreeMap<String, PlannedProcess>,
    postgres_databases: Vec<String>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

impl RunningShop {
    /// Starts `architecture` with `settings` (ports and database URLs are chosen here).
    pub async fn start(architecture: Architecture, backend: &Backend, settings: &Settings) -> anyhow::Result<Self> {
        let topology = architecture.topology().with_context(|| NOT_IN_PROCESS.to_string())?;
        Self::start_topology(architecture.name(), &topology, backend, settings).await
    }

    /// Starts every process of `topology`, as [`Deployment::plan`] plans them.
    pub async fn start_topology(
        name: &str,
        topology: &Topology,
        backend: &Backend,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let sqlite_dir = match backend {
            Backend::Sqlite => Some(tempfile::tempdir().context("creating a directory for SQLite files")?),
            Backend::Postgres { .. } => None,
        };
        let mut shop = RunningShop {
            name: name.to_string(),
            topology: topology.clone(),
            backend: backend.clone(),
            base_url: String::new(),
            ports: BTreeMap::new(),
            database_urls: BTreeMap::new(),
            handles: BTreeMap::new(),
            planned: BTreeMap::new(),
            postgres_databases: Vec::new(),
            _sqlite_dir: None,
        };
        let result = shop.start_processes(settings, sqlite_dir.as_ref().map(|d| d.path())).await;
        shop._sqlite_dir = sqlite_dir;
        match result {
            Ok(()) => Ok(shop),
            Err(err) => {
                shop.stop().await;
                Err(err)
            }
        }
    }

    async fn start_processes(
        &mut self,
        settings: &Settings,
        sqlite_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<()> {
        let edge = &self.topology.processes[self.topology.edge()];
        anyhow::ensure!(
            edge.replicas == 1,
            "replicas of the edge need HAProxy in front of them: start {} as processes (the launcher)",
            edge.process_name()
        );
        let listen = free_ports_for(&self.topology)?;
        let deployment = Deployment::plan(
            &self.topology,
            settings,
            |index, replica| listen[index][replica as usize],
            |_, port| port,
        )?;
        self.base_url = format!("http://127.0.0.1:{}", deployment.edge().port);
        for mut process in deployment.processes.clone() {
            if !process.spec.modules.is_empty() {
                // One database per process of the topology, its replicas' shared one.
                let key = process.spec.process_name();
                let url = match self.database_urls.get(&key) {
                    Some(url) => url.clone(),
                    None => self.fresh_database(&process.database_name(), sqlite_dir).await?,
                };
                self.database_urls.insert(key, url.clone());
                process.settings.database.database_url = Some(url);
            }
            self.planned.insert(process.name.clone(), process.clone());
            self.launch(&process.name).await?;
        }
        Ok(())
    }

    /// Builds and starts the planned process `name`.
    async fn launch(&mut self, name: &str) -> anyhow::Result<()> {
        let process = self.planned.get(name).with_context(|| format!("no process {name}"))?;
        let app =
            shop::process::build(&process.spec, &process.settings).await.with_context(|| format!("starting {name}"))?;
        self.ports.insert(name.to_string(), app.port());
        self.handles.insert(name.to_string(), app.handle());
        tokio::spawn(app.run_until_stopped());
        Ok(())
    }

    async fn fresh_database(&mut self, process: &str, sqlite_dir: Option<&std::path::Path>) -> anyhow::Result<String> {
        match (&self.backend, sqlite_dir) {
            (Backend::Sqlite, Some(dir)) => Ok(format!("sqlite:{}", dir.join(format!("{process}.db")).display())),
            (Backend::Postgres { server_url }, _) => {
                let name = format!("splitbench_{}_{}_{}", process, std::process::id(), rand::random::<u32>());
                let server_url = server_url.clone();
                create_postgres_database(&server_url, &name).await?;
                self.postgres_databases.push(name.clone());
                with_database(&server_url, &name)
            }
            (Backend::Sqlite, None) => anyhow::bail!("no directory for SQLite files"),
        }
    }

    /// Every process as planned and started (its settings: port, upstreams, database).
    pub fn planned(&self) -> impl Iterator<Item = &PlannedProcess> {
        self.planned.values()
    }

    /// The name of the process hosting `module`.
    pub fn process_hosting(&self, module: shop::Schema) -> String {
        self.topology.host(module).process_name()
    }

    /// The URL of the database that holds `module`'s tables.
    pub fn database_of(&self, module: shop::Schema) -> Option<&str> {
        self.database_urls.get(&self.process_hosting(module)).map(String::as_str)
    }

    /// Stops one process (tests use it to watch the others cope).
    pub async fn stop_process(&self, name: &str) {
        if let Some(handle) = self.handles.get(name) {
            handle.stop(false).await;
        }
    }

    /// Starts a stopped process again on its old port with its old database, as a supervisor
    /// would restart a crashed service.
    pub async fn restart_process(&mut self, name: &str) -> anyhow::Result<()> {
        self.launch(name).await
    }

    /// Stops every process and drops the PostgreSQL databases created for this run.
    pub async fn stop(mut self) {
        for handle in self.handles.values() {
            handle.stop(false).await;
        }
        self.handles.clear();
        if let Backend::Postgres { server_url } = &self.backend {
            for name in std::mem::take(&mut self.postgres_databases) {
                if let Err(err) = drop_postgres_database(server_url, &name).await {
                    tracing::warn!(database = name, error = %err, "could not drop a test database");
                }
            }
        }
    }
}

impl Drop for RunningShop {
    fn drop(&mut self) {
        for handle in self.handles.values() {
            // Not awaited: the servers stop in the background.
            drop(handle.stop(false));
        }
    }
}

/// The URL of database `name` on the server of `server_url`.
pub(crate) fn with_database(server_url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(server_url).context("parsing the PostgreSQL URL")?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// A quiet administrative connection to a database, SQLite or PostgreSQL (CREATE/DROP DATABASE
/// and a held lock are slow statements by sqlx's standard and would be logged as warnings).
pub(crate) async fn admin_connection(url: &str) -> anyhow::Result<sqlx::AnyConnection> {
    use std::str::FromStr;
    sqlx::any::install_default_drivers();
    let options = sqlx::any::AnyConnectOptions::from_str(url)?.disable_statement_logging();
    sqlx::AnyConnection::connect_with(&options).await.context("connecting to the database")
}

pub(crate) async fn create_postgres_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = admin_connection(server_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating {name}"))?;
    conn.close().await?;
    Ok(())
}

pub(crate) async fn drop_postgres_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = admin_connection(server_url).await?;
    // FORCE: pools of stopped servers may still hold connections for a moment.
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Opens or closes the PostgreSQL database of `database_url` to connections (a fault run's
/// database outage): closed, it refuses new connections, superusers' too, and its open ones
/// are terminated, as when its server goes away.
pub(crate) async fn set_postgres_database_open(database_url: &str, open: bool) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(database_url).context("parsing the PostgreSQL URL")?;
    let name = url.path().trim_start_matches('/').to_string();
    anyhow::ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "not a database this run created: '{name}'"
    );
    let mut conn = admin_connection(&with_database(database_url, "postgres")?).await?;
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {open}")).execute(&mut conn).await?;
    if !open {
        sqlx::query(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .execute(&mut conn)
        .await?;
    }
    conn.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_path_of_the_server_url() {
        assert_eq!(
            with_database("postgres://u:p@localhost:5432/postgres", "fresh").ok().as_deref(),
            Some("postgres://u:p@localhost:5432/fresh")
        );
    }
}
