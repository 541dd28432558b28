//! Starting and stopping an architecture with fresh databases.
//!
//! [`RunningShop::start`] builds every process of an architecture inside this process (each
//! a real actix-web server on its own free loopback port, with its own worker threads and its
//! own database) and returns the public base URL. Microservices start in dependency order so
//! that each service learns its upstreams' ports; the gateway comes last.
//!
//! Databases: SQLite files in a temporary directory (removed on drop), or, with a PostgreSQL
//! server URL, one freshly created database per process, dropped by [`RunningShop::stop`].

use std::collections::BTreeMap;

use actix_web::dev::ServerHandle;
use anyhow::Context;
use microservices::Service;
use shop::Settings;
use sqlx::{ConnectOptions, Connection};

const NOT_IN_PROCESS: &str = "the null server runs only as a process (splitbench --arch null-server)";

/// Which build of the shop to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Architecture {
    Monolith,
    Microservices,
    /// Not a shop: `null-server`, the harness's yardstick for its own generator. Started only
    /// as a process by the launcher, never in-process.
    NullServer,
}

impl Architecture {
    pub const ALL: [Architecture; 2] = [Self::Monolith, Self::Microservices];

    pub fn name(self) -> &'static str {
        match self {
            Self::Monolith => "monolith",
            Self::Microservices => "microservices",
            Self::NullServer => "null-server",
        }
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

/// A started architecture. Stop it with [`RunningShop::stop`]; dropping it stops the servers
/// too but cannot drop PostgreSQL databases.
pub struct RunningShop {
    pub architecture: Architecture,
    pub backend: Backend,
    /// Base URL of the public API (the monolith, or the gateway).
    pub base_url: String,
    /// Every process's port, by process name.
    pub ports: BTreeMap<&'static str, u16>,
    /// Every process's database URL, by process name (the gateway has none).
    pub database_urls: BTreeMap<&'static str, String>,
    handles: BTreeMap<&'static str, ServerHandle>,
    /// The settings each process was started with (its real port included), to restart it.
    process_settings: BTreeMap<&'static str, Settings>,
    postgres_databases: Vec<String>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

impl RunningShop {
    /// Starts `architecture` with `settings` (ports and database URLs are chosen here).
    pub async fn start(architecture: Architecture, backend: &Backend, settings: &Settings) -> anyhow::Result<Self> {
        let sqlite_dir = match backend {
            Backend::Sqlite => Some(tempfile::tempdir().context("creating a directory for SQLite files")?),
            Backend::Postgres { .. } => None,
        };
        let mut shop = RunningShop {
            architecture,
            backend: backend.clone(),
            base_url: String::new(),
            ports: BTreeMap::new(),
            database_urls: BTreeMap::new(),
            handles: BTreeMap::new(),
            process_settings: BTreeMap::new(),
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
        let mut settings = settings.clone();
        settings.server.host = "127.0.0.1".into();
        settings.server.port = Some(0);
        match self.architecture {
            Architecture::Monolith => {
                settings.database.database_url = Some(self.database_url("monolith", sqlite_dir).await?);
                let app = monolith::build(&settings).await?;
                self.launch("monolith", app, &settings);
            }
            Architecture::Microservices => {
                for service in Service::MODULES {
                    settings.database.database_url = Some(self.database_url(service.name(), sqlite_dir).await?);
                    let app = microservices::build(service, &settings).await?;
                    let url = format!("http://127.0.0.1:{}", app.port());
                    service.point_upstream(&mut settings.upstreams, url);
                    self.launch(service.name(), app, &settings);
                }
                settings.database.database_url = None;
                let gateway = microservices::build(Service::Gateway, &settings).await?;
                self.launch("gateway", gateway, &settings);
            }
            Architecture::NullServer => anyhow::bail!("{NOT_IN_PROCESS}"),
        }
        let public = match self.architecture {
            Architecture::Monolith => "monolith",
            Architecture::Microservices => "gateway",
            Architecture::NullServer => anyhow::bail!("{NOT_IN_PROCESS}"),
        };
        self.base_url = format!("http://127.0.0.1:{}", self.ports[public]);
        Ok(())
    }

    fn launch(&mut self, name: &'static str, app: shop::Application, settings: &Settings) {
        let mut settings = settings.clone();
        settings.server.port = Some(app.port());
        self.process_settings.insert(name, settings);
        self.ports.insert(name, app.port());
        self.handles.insert(name, app.handle());
        tokio::spawn(app.run_until_stopped());
    }

    async fn database_url(
        &mut self,
        process: &'static str,
        sqlite_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<String> {
        let url = self.fresh_database(process, sqlite_dir).await?;
        self.database_urls.insert(process, url.clone());
        Ok(url)
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

    /// The URL of the database that holds `module`'s tables in this architecture.
    pub fn database_of(&self, module: shop::Schema) -> Option<&str> {
        let process = match self.architecture {
            Architecture::Monolith => "monolith",
            Architecture::Microservices => match module {
                shop::Schema::Accounts => "accounts",
                shop::Schema::Catalog => "catalog",
                shop::Schema::Inventory => "inventory",
                shop::Schema::Reviews => "reviews",
                shop::Schema::Payments => "payments",
                shop::Schema::Orders => "orders",
            },
            Architecture::NullServer => return None,
        };
        self.database_urls.get(process).map(String::as_str)
    }

    /// Stops one process (tests use it to watch the others cope).
    pub async fn stop_process(&self, name: &str) {
        if let Some(handle) = self.handles.get(name) {
            handle.stop(false).await;
        }
    }

    /// Starts a stopped process again on its old port with its old database, as a supervisor
    /// would restart a crashed service.
    pub async fn restart_process(&mut self, name: &'static str) -> anyhow::Result<()> {
        let settings = self.process_settings.get(name).cloned().with_context(|| format!("no process {name}"))?;
        let app = match (self.architecture, Service::ALL.iter().find(|s| s.name() == name)) {
            (Architecture::Monolith, _) => monolith::build(&settings).await?,
            (Architecture::Microservices, Some(service)) => microservices::build(*service, &settings).await?,
            (Architecture::Microservices, None) => anyhow::bail!("no service {name}"),
            (Architecture::NullServer, _) => anyhow::bail!("{NOT_IN_PROCESS}"),
        };
        self.launch(name, app, &settings);
        Ok(())
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
