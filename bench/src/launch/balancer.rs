//! HAProxy in front of the edge's replicas: the load balancer a user would deploy (Debian's
//! `haproxy` package), started by the launcher as one more process of the system under test,
//! so its CPU and memory are measured and reported like any process's.
//!
//! One thread (as every shop process has one worker), HTTP mode with keep-alive on both
//! sides (the generator's connections stay open; connections to the replicas are reused),
//! `leastconn` (a new request goes to the replica with the fewest open requests; with
//! requests of unequal cost it balances better than round robin), timeouts above the shop's
//! own (the request deadline decides, not the balancer), each replica's `/health` checked once
//! a second (a replica that stops answering is taken out).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The balancer's name among the system's processes (in results, logs and the fingerprint).
pub const PROCESS: &str = "haproxy";

/// Where HAProxy is, or how to get it.
pub fn haproxy_path() -> anyhow::Result<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()]);
    for dir in candidates {
        let path = dir.join("haproxy");
        if path.is_file() {
            return Ok(path);
        }
    }
    anyhow::bail!("replicas of the edge need HAProxy in front of them: install it (apt-get install haproxy)")
}

/// The configuration: listen on `port` (loopback), balance over the edge replicas at `replicas`.
pub fn config(port: u16, replicas: &[u16]) -> String {
    let mut text = format!(
        "# Written by splitbench: HAProxy in front of the edge's replicas.
global
    nbthread 1
    maxconn 8192

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 75s
    timeout server 75s
    timeout http-keep-alive 75s

frontend public
    bind 127.0.0.1:{port}
    default_backend edge

backend edge
    balance leastconn
    option httpchk GET /health
"
    );
    // Checked once a second: a replica that stops answering gets no more requests.
    for (index, replica) in replicas.iter().enumerate() {
        let _ = writeln!(text, "    server edge{} 127.0.0.1:{replica} check inter 1s", index + 1);
    }
    text
}

/// Writes [`config`] to `path`.
pub fn write_config(path: &Path, port: u16, replicas: &[u16]) -> anyhow::Result<()> {
    std::fs::write(path, config(port, replicas)).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_lists_every_replica_behind_one_loopback_frontend() {
        let text = config(8080, &[9001, 9002, 9003]);
        assert!(text.contains("bind 127.0.0.1:8080"));
        assert!(text.contains("balance leastconn"));
        assert!(text.contains("nbthread 1"));
        assert!(text.contains("option httpchk GET /health"));
        for (n, port) in [(1, 9001), (2, 9002), (3, 9003)] {
            assert!(text.contains(&format!("server edge{n} 127.0.0.1:{port} check inter 1s\n")), "{text}");
        }
    }
}
