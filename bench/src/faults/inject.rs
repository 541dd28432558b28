//! The injectors: how each fault begins and ends on a started system, and what each leaves as
//! evidence that it took hold.

use anyhow::Context;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use sqlx::Connection;

use super::FaultKind;
use super::drops::PacketDrops;
use super::proxy::{Proxy, ProxyCounts, Stream, StreamToxic, Toxic};
use crate::launch::cgroup::{CpuQuota, Throttling};
use crate::launch::{Launcher, SystemUnderTest};

/// Settings of the faults that take one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaultParameters {
    /// `starve`: the CPU period, microseconds: 50 ms, short (container runtimes default to
    /// 100 ms) so the process runs in bursts rather than stopping for long stretches, and long
    /// enough for the kernel's smallest quota (1 ms) to be 2% of a core.
    pub cpu_period_us: u64,
    /// `starve`: the CPU time allowed in each period, microseconds.
    pub cpu_quota_us: u64,
    /// `drop`: the share of packets lost (0..=1).
    #[serde(default = "default_drop_share")]
    pub drop_share: f64,
}

fn default_drop_share() -> f64 {
    0.05
}

impl Default for FaultParameters {
    fn default() -> Self {
        Self { cpu_period_us: 50_000, cpu_quota_us: 1_000, drop_share: default_drop_share() }
    }
}

/// What an injector found while the fault was on: evidence it took hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultEvidence {
    /// `starve`: the period and quota read back from the cgroup.
    pub cpu_limit: Option<(u64, Option<u64>)>,
    /// `starve`: the cgroup's throttling over the fault.
    pub throttling: Option<Throttling>,
    /// `db-outage`: what was done to the database.
    pub database: Option<String>,
    /// Network faults: the toxics the proxy applied and what it counted meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Seam faults: the faults the process's admin route answered it had set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seam: Option<String>,
}

/// The delay of `slow` and the share of calls `failing` fails (as a 503).
pub const SEAM_DELAY_MS: u64 = 200;
pub const SEAM_FAILURE_SHARE: f64 = 0.5;

/// The body `POST /admin/faults` gets for a seam fault on `module`.
pub fn seam_faults_body(fault: FaultKind, module: &str) -> serde_json::Value {
    match fault {
        FaultKind::Slow => serde_json::json!({"faults": [{"module": module, "delay_ms": SEAM_DELAY_MS}]}),
        _ => {
            serde_json::json!({"faults": [{"module": module, "failure_share": SEAM_FAILURE_SHARE, "failure": "status503"}]})
        }
    }
}

/// Sets (or with `body` `None`, clears) the seam faults of the process listening on `port`,
/// through its admin route and the service credential; what the route answered.
async fn admin_faults(port: u16, credential: &str, body: Option<serde_json::Value>) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build()?;
    let url = format!("http://127.0.0.1:{port}/admin/faults");
    let request = match body {
        Some(body) => client.post(&url).json(&body),
        None => client.delete(&url),
    };
    let answer = request.header(shop::auth::SERVICE_TOKEN_HEADER, credential).send().await?;
    let status = answer.status();
    let text = answer.text().await?;
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {text}");
    Ok(text)
}

/// The toxics of a network fault, Toxiproxy's names and defaults where it has them: answers
/// 100 ms late ± 20 ms; answers at 100 kB/s; answers in slices of 64 ± 16 bytes 200 µs apart;
/// nothing through either way, connections held (a partition); every connection reset.
/// Answers (`downstream`) is Toxiproxy's default direction; a partition and a reset cut both.
fn network_toxics(fault: FaultKind) -> Vec<StreamToxic> {
    use std::time::Duration;
    let downstream = |toxic| vec![StreamToxic { stream: Stream::Downstream, toxic }];
    let both = |toxic| {
        vec![StreamToxic { stream: Stream::Upstream, toxic }, StreamToxic { stream: Stream::Downstream, toxic }]
    };
    match fault {
        FaultKind::Latency => {
            downstream(Toxic::Latency { latency: Duration::from_millis(100), jitter: Duration::from_millis(20) })
        }
        FaultKind::Bandwidth => downstream(Toxic::Bandwidth { bytes_per_second: 100_000 }),
        FaultKind::Slicer => {
            downstream(Toxic::Slicer { average_size: 64, size_variation: 16, delay: Duration::from_micros(200) })
        }
        FaultKind::Partition => both(Toxic::Timeout { after: None }),
        FaultKind::ResetPeer => both(Toxic::ResetPeer { after: Duration::ZERO }),
        _ => Vec::new(),
    }
}

/// A network fault's evidence: the toxics, and the proxy's counts over the fault.
fn network_evidence(toxics: &[StreamToxic], before: ProxyCounts, proxy: &Proxy) -> String {
    let during = proxy.counts().since(before);
    let described: Vec<String> = toxics.iter().map(|t| format!("{:?} {:?}", t.stream, t.toxic)).collect();
    format!(
        "proxy on port {} applied {}; during the fault it accepted {} connections, wrote {} chunks, dropped {} bytes and reset {} connections",
        proxy.port,
        described.join(", "),
        during.connections,
        during.writes,
        during.dropped_bytes,
        during.resets
    )
}

/// A fault in force, until [`end`]. Dropped without `end` (an error, Ctrl-C), each undoes
/// itself as far as it can: the cgroup hands its process back, the SQLite connection closes
/// and so releases its lock; a closed PostgreSQL database stays closed until the run drops
/// it, as it drops every database it created.
pub enum Active {
    Killed,
    Frozen,
    Starved(CpuQuota),
    /// SQLite: a connection holding the write lock.
    SqliteLocked(sqlx::AnyConnection, String),
    /// PostgreSQL: the database closed to connections.
    PostgresClosed(String),
    /// Seam faults set in the process on this port (with this credential; what it answered).
    Seam(u16, String, String),
    /// The proxy in front of the process applying these toxics (its counts when they began).
    Toxics(Vec<StreamToxic>, ProxyCounts),
    /// Packets to and from the proxy in front of the process being lost.
    Dropping(super::drops::PacketDrops),
}

/// Begins `fault` on `sut`'s process `process` (a network fault at `proxy`, the one in front
/// of it).
pub async fn begin(
    fault: FaultKind,
    module: &str,
    parameters: &FaultParameters,
    sut: &mut SystemUnderTest,
    process: &str,
    proxy: Option<&Proxy>,
) -> anyhow::Result<Active> {
    let proxy = || proxy.with_context(|| format!("{} needs the proxy in front of {process}", fault.name()));
    Ok(match fault {
        FaultKind::Crash => {
            sut.kill_process(process).await?;
            Active::Killed
        }
        FaultKind::Hang => {
            sut.signal(process, Signal::SIGSTOP)?;
            Active::Frozen
        }
        FaultKind::Starve => {
            let (pid, name, parameters) = (sut.pid_of(process)?, process.to_string(), *parameters);
            // File writes to the cgroup hierarchy can block: off the generator's thread.
            let group = tokio::task::spawn_blocking(move || {
                let mut group = CpuQuota::create(&name)?;
                group.add_process(pid)?;
                group.limit(parameters.cpu_period_us, Some(parameters.cpu_quota_us))?;
                anyhow::Ok(group)
            })
            .await??;
            Active::Starved(group)
        }
        FaultKind::DbOutage => {
            let url = sut.database_urls.get(process).with_context(|| format!("{process} has no database"))?;
            take_database(url).await?
        }
        FaultKind::Slow | FaultKind::Failing => {
            let (port, credential) = sut.admin_of(process)?;
            let set = admin_faults(port, &credential, Some(seam_faults_body(fault, module))).await?;
            Active::Seam(port, credential, set)
        }
        FaultKind::Drop => {
            let (port, share) = (proxy()?.port, parameters.drop_share);
            // nft runs as a child process: off the generator's thread.
            Active::Dropping(tokio::task::spawn_blocking(move || PacketDrops::start(port, share)).await??)
        }
        FaultKind::Latency | FaultKind::Bandwidth | FaultKind::Slicer | FaultKind::Partition | FaultKind::ResetPeer => {
            let (proxy, toxics) = (proxy()?, network_toxics(fault));
            let before = proxy.counts();
            proxy.set(toxics.clone());
            Active::Toxics(toxics, before)
        }
    })
}

/// Ends the fault: restarts, thaws, lifts the quota, reopens the database or clears the
/// proxy.
pub async fn end(
    active: Active,
    launcher: &Launcher,
    sut: &mut SystemUnderTest,
    process: &str,
    proxy: Option<&Proxy>,
) -> anyhow::Result<FaultEvidence> {
    let mut evidence = FaultEvidence::default();
    match active {
        Active::Killed => launcher.restart(sut, process).await?,
        Active::Frozen => sut.signal(process, Signal::SIGCONT)?,
        Active::Starved(group) => {
            let (limit, throttling) = tokio::task::spawn_blocking(move || {
                let read = (group.read_limit(), group.throttling());
                // Dropping the group lifts the quota and hands the process back.
                drop(group);
                read
            })
            .await?;
            evidence.cpu_limit = Some(limit?);
            evidence.throttling = Some(throttling?);
        }
        Active::Seam(port, credential, set) => {
            admin_faults(port, &credential, None).await?;
            evidence.seam = Some(format!("the admin route on port {port} answered {set}, and cleared them after"));
        }
        Active::Toxics(toxics, before) => {
            let proxy = proxy.with_context(|| format!("the toxics were set at a proxy in front of {process}"))?;
            proxy.set(Vec::new());
            evidence.network = Some(network_evidence(&toxics, before, proxy));
        }
        Active::Dropping(drops) => {
            evidence.network = Some(tokio::task::spawn_blocking(move || drops.remove()).await??);
        }
        database @ (Active::SqliteLocked(..) | Active::PostgresClosed(_)) => {
            evidence.database = Some(give_back_database(database).await?);
        }
    }
    Ok(evidence)
}

/// Makes the database at `url` unavailable to its module: SQLite's write lock taken by a
/// connection of the harness, or the PostgreSQL database closed to connections.
pub async fn take_database(url: &str) -> anyhow::Result<Active> {
    if url.starts_with("sqlite:") {
        let mut conn = crate::topology::admin_connection(url).await?;
        // Waits (up to 5 s) for a write in progress, then holds the write lock: every write of
        // the module waits on its busy timeout and fails; in WAL mode its reads go on.
        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut conn).await?;
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await.context("taking the write lock")?;
        Ok(Active::SqliteLocked(conn, url.to_string()))
    } else {
        crate::topology::set_postgres_database_open(url, false).await?;
        Ok(Active::PostgresClosed(url.to_string()))
    }
}

/// Ends [`take_database`]'s outage; says what it was.
pub async fn give_back_database(active: Active) -> anyhow::Result<String> {
    match active {
        Active::SqliteLocked(mut conn, url) => {
            sqlx::query("ROLLBACK").execute(&mut conn).await?;
            conn.close().await?;
            Ok(format!("SQLite write lock held (BEGIN EXCLUSIVE) on {}", url.trim_start_matches("sqlite:")))
        }
        Active::PostgresClosed(url) => {
            crate::topology::set_postgres_database_open(&url, true).await?;
            Ok(format!(
                "PostgreSQL database {} closed to connections (ALLOW_CONNECTIONS false), its connections terminated",
                url.rsplit('/').next().unwrap_or_default()
            ))
        }
        _ => anyhow::bail!("not a database outage"),
    }
}

#[cfg(test)]
mod tests {
    use shop::db::{Database, DatabaseSettings, Schema};

    use super::*;

    async fn write(db: &Database) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO outage_probe (n) VALUES (1)").execute(&db.pool).await.map(|_| ())
    }

    async fn read(db: &Database) -> Result<i64, sqlx::Error> {
        use sqlx::Row as _;
        sqlx::query("SELECT COUNT(*) AS n FROM outage_probe").fetch_one(&db.pool).await?.try_get("n")
    }

    async fn probe_database(url: &str) -> Database {
        let db = Database::connect(&DatabaseSettings { url: url.to_string(), pool_size: 2 }, &[Schema::Catalog])
            .await
            .expect("a database");
        sqlx::query("CREATE TABLE IF NOT EXISTS outage_probe (n INTEGER NOT NULL)")
            .execute(&db.pool)
            .await
            .expect("a table");
        db
    }

    #[tokio::test]
    async fn a_sqlite_outage_blocks_writes_until_it_ends_and_leaves_reads_alone() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite:{}", dir.path().join("module.db").display());
        let db = probe_database(&url).await;
        write(&db).await.expect("writes before");
        let outage = take_database(&url).await.expect("locked");
        // The shop's connections wait 5 s for the lock (busy_timeout), then fail.
        let blocked = tokio::time::timeout(std::time::Duration::from_secs(20), write(&db)).await.expect("gives up");
        let err = blocked.expect_err("a write fails while the lock is held").to_string();
        assert!(err.contains("locked"), "{err}");
        assert_eq!(read(&db).await.expect("reads go on"), 1);
        let said = give_back_database(outage).await.expect("unlocked");
        assert!(said.contains("BEGIN EXCLUSIVE"), "{said}");
        write(&db).await.expect("writes after");
        assert_eq!(read(&db).await.expect("read"), 2);
    }

    /// With `SPLITBENCH_TEST_POSTGRES` (as CI sets it).
    #[tokio::test]
    async fn a_postgres_outage_refuses_and_cuts_connections_until_it_ends() {
        let Ok(server) = std::env::var("SPLITBENCH_TEST_POSTGRES") else {
            eprintln!("skipped: SPLITBENCH_TEST_POSTGRES is not set");
            return;
        };
        let name = format!("splitbench_outage_test_{:x}", rand::random::<u32>());
        crate::topology::create_postgres_database(&server, &name).await.expect("created");
        let url = crate::topology::with_database(&server, &name).expect("a url");
        let db = probe_database(&url).await;
        write(&db).await.expect("writes before");
        let outage = take_database(&url).await.expect("closed");
        assert!(write(&db).await.is_err(), "its connections were terminated, new ones refused");
        let fresh = sqlx::AnyConnection::connect(&url).await;
        assert!(fresh.is_err(), "a new connection is refused");
        give_back_database(outage).await.expect("reopened");
        // The pool replaces its dead connections.
        let mut ok = false;
        for _ in 0..5 {
            if write(&db).await.is_ok() {
                ok = true;
                break;
            }
        }
        assert!(ok, "writes work again once the database is back");
        db.pool.close().await;
        crate::topology::drop_postgres_database(&server, &name).await.expect("dropped");
    }
}
