//! Random packet drops on one loopback port, with nftables (the `drop` fault).
//!
//! A user-space proxy cannot drop a TCP segment: the kernel below it retransmits and delivers
//! in order, so losing data has to happen in the kernel. While a [`PacketDrops`] lives, an
//! nftables table of its own drops a share of the TCP packets to and from one port (the proxy
//! the launcher put in front of the faulted service) at the output hook, which every loopback
//! packet passes once. TCP then does what it does on a lossy link: a lost segment waits for a
//! retransmission (Linux's minimum retransmission timeout is 200 ms; a lost SYN waits 1 s).
//!
//! The table is named after this process (its pid and start time, so a reused pid is not
//! mistaken for it) and the port (`splitbench_<pid>_<start>_drop_<port>`), holds only these
//! rules, and is deleted when the fault ends or the value is dropped (an error, Ctrl-C). A
//! harness killed outright cannot delete it: [`remove_orphaned_tables`], which every
//! `splitbench` command that measures calls first, deletes the tables of processes that no
//! longer run, so a left-over table cannot slow a later run's connections on a reused port. Needs root and the `nft`
//! command (Debian's `nftables` package). nftables' `numgen random` takes no seed: which
//! packets are lost differs from run to run, their share does not.

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::launch::procstat::start_time;

/// Table names start with this, then the owning process's pid.
const TABLE_PREFIX: &str = "splitbench_";
/// Shares are set in steps of 1/RESOLUTION.
const RESOLUTION: u32 = 10_000;

/// Whether this process can set drops: `nft` is installed and may read the ruleset (which
/// takes root, CAP_NET_ADMIN).
pub fn available() -> bool {
    nft(&["list", "tables"]).is_ok()
}

/// Drops in force on one port, until [`PacketDrops::remove`] or drop.
#[derive(Debug)]
pub struct PacketDrops {
    table: String,
    port: u16,
    share: f64,
    removed: bool,
}

/// What the table's counters saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropCounts {
    /// TCP packets to or from the port.
    pub packets: u64,
    /// Of those, dropped.
    pub dropped: u64,
}

impl PacketDrops {
    /// Starts dropping `share` (0..=1) of the TCP packets to and from `port`.
    pub fn start(port: u16, share: f64) -> anyhow::Result<Self> {
        anyhow::ensure!((0.0..=1.0).contains(&share), "a drop share is between 0% and 100%, not {share}");
        let pid = std::process::id();
        let started = start_time(pid).context("reading this process's start time")?;
        let table = format!("{TABLE_PREFIX}{pid}_{started}_drop_{port}");
        let threshold = (share * f64::from(RESOLUTION)).round() as u32;
        // nftables takes no `< 10000` on a `mod 10000` value: every packet needs no draw.
        let draw = if threshold >= RESOLUTION {
            String::new()
        } else {
            format!("numgen random mod {RESOLUTION} < {threshold} ")
        };
        // Counting rules first (every packet of the port), then the drops: the counters give
        // the share actually dropped.
        // Added and deleted first, so a table of the same name is replaced, not appended to.
        let ruleset = format!(
            "add table inet {table}\n\
             delete table inet {table}\n\
             table inet {table} {{\n\
             \tchain output {{\n\
             \t\ttype filter hook output priority 0; policy accept;\n\
             \t\ttcp dport {port} counter\n\
             \t\ttcp sport {port} counter\n\
             \t\ttcp dport {port} {draw}counter drop\n\
             \t\ttcp sport {port} {draw}counter drop\n\
             \t}}\n\
             }}\n"
        );
        nft_with_input(&ruleset).with_context(|| format!("adding the nftables table {table}"))?;
        Ok(Self { table, port, share, removed: false })
    }

    /// The packets seen and dropped so far.
    pub fn counts(&self) -> anyhow::Result<DropCounts> {
        let listed = nft(&["list", "table", "inet", &self.table])?;
        Ok(counts_of(&listed))
    }

    /// Stops the drops; what they did.
    pub fn remove(mut self) -> anyhow::Result<String> {
        let counts = self.counts();
        nft(&["delete", "table", "inet", &self.table])?;
        self.removed = true;
        let DropCounts { packets, dropped } = counts?;
        Ok(format!(
            "nftables table {} dropped {} of {} TCP packets to and from port {} ({:.1}%; set: {:.1}%)",
            self.table,
            dropped,
            packets,
            self.port,
            if packets == 0 { 0.0 } else { dropped as f64 * 100.0 / packets as f64 },
            self.share * 100.0
        ))
    }
}

impl Drop for PacketDrops {
    fn drop(&mut self) {
        if !self.removed {
            let _ = nft(&["delete", "table", "inet", &self.table]);
        }
    }
}

/// Deletes the drop tables of splitbench processes that no longer run (killed before they
/// could delete their own); the names of those deleted. Nothing where nft cannot be used here
/// (not installed, not root): no table can have been made there either.
pub fn remove_orphaned_tables() -> anyhow::Result<Vec<String>> {
    let Ok(listed) = nft(&["list", "tables"]) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for table in orphaned_tables(&listed, |pid, started| start_time(pid).ok() == Some(started)) {
        nft(&["delete", "table", "inet", &table])?;
        removed.push(table);
    }
    Ok(removed)
}

/// The tables in `nft list tables` output that belong to a splitbench process not running
/// (`is_running(pid, start time)`).
fn orphaned_tables(listed: &str, is_running: impl Fn(u32, u64) -> bool) -> Vec<String> {
    listed
        .lines()
        .filter_map(|line| line.trim().strip_prefix("table inet "))
        .filter(|name| {
            let mut parts = name.strip_prefix(TABLE_PREFIX).unwrap_or_default().split('_');
            let (pid, started) = (parts.next().and_then(|p| p.parse().ok()), parts.next().and_then(|s| s.parse().ok()));
            matches!((pid, started, parts.next()), (Some(pid), Some(started), Some("drop")) if !is_running(pid, started))
        })
        .map(str::to_string)
        .collect()
}

/// Adds up the counters of a listed drop table: the counting rules' and the dropping rules'.
fn counts_of(listed: &str) -> DropCounts {
    let mut counts = DropCounts { packets: 0, dropped: 0 };
    for line in listed.lines() {
        let Some(packets) = line
            .split_once("counter packets ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if line.trim_end().ends_with("drop") {
            counts.dropped += packets;
        } else {
            counts.packets += packets;
        }
    }
    counts
}

fn nft(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("nft").args(args).output().context("running nft (Debian package nftables)")?;
    anyhow::ensure!(
        output.status.success(),
        "nft {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn nft_with_input(ruleset: &str) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (Debian package nftables)")?;
    child.stdin.take().context("nft's stdin")?.write_all(ruleset.as_bytes())?;
    let output = child.wait_with_output()?;
    anyhow::ensure!(output.status.success(), "nft -f failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counters_split_into_seen_and_dropped() {
        let listed = "table inet splitbench_1_drop_80 {\n\tchain output {\n\
            \t\ttype filter hook output priority filter; policy accept;\n\
            \t\ttcp dport 80 counter packets 120 bytes 9000\n\
            \t\ttcp sport 80 counter packets 80 bytes 7000\n\
            \t\ttcp dport 80 numgen random mod 10000 < 500 counter packets 7 bytes 500 drop\n\
            \t\ttcp sport 80 numgen random mod 10000 < 500 counter packets 3 bytes 200 drop\n\t}\n}\n";
        assert_eq!(counts_of(listed), DropCounts { packets: 200, dropped: 10 });
    }

    #[test]
    fn only_tables_of_splitbench_processes_that_are_gone_are_orphans() {
        let listed = "table inet filter\ntable inet splitbench_41_900_drop_8080\ntable inet splitbench_42_7_drop_8081\n\
                      table inet splitbench_44_5_drop_8082\ntable ip splitbench_43_1_drop_1\n\
                      table inet splitbench_x_1_drop_1\ntable inet splitbench_45_drop_1\n";
        // 42 runs as the process that made its table; 44 is a reused pid (another start time).
        let running = |pid, started| (pid, started) == (42, 7) || (pid, started) == (44, 6);
        assert_eq!(
            orphaned_tables(listed, running),
            vec!["splitbench_41_900_drop_8080".to_string(), "splitbench_44_5_drop_8082".to_string()]
        );
    }

    /// Needs root and `nft` (CI installs nftables and sets SPLITBENCH_REQUIRE_NFT, so there it
    /// cannot be skipped); elsewhere it says it was skipped.
    #[tokio::test]
    async fn dropping_every_packet_blocks_a_port_and_removing_the_table_opens_it_again() {
        if !available() {
            assert!(
                std::env::var_os("SPLITBENCH_REQUIRE_NFT").is_none(),
                "SPLITBENCH_REQUIRE_NFT is set, but nft is not usable"
            );
            eprintln!("skipped: needs root and nft");
            return;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let connect =
            || tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(("127.0.0.1", port)));
        assert!(matches!(connect().await, Ok(Ok(_))), "the port answers before");
        let drops = PacketDrops::start(port, 1.0).expect("drops set");
        assert!(connect().await.is_err(), "every SYN is lost: no connection within 500 ms");
        let table = drops.table.clone();
        let said = drops.remove().expect("removed");
        assert!(said.contains("dropped") && !said.contains("dropped 0 of"), "{said}");
        assert!(!nft(&["list", "tables"]).expect("listed").contains(&table), "the table is gone");
        assert!(matches!(connect().await, Ok(Ok(_))), "the port answers again");
    }
}
