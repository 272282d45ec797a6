//! A real nats-server (JetStream on) on a free loopback port, for tests of
//! every crate that talks to NATS; installed by `scripts/setup.sh`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/setup.sh` installed nats-server (`RESIZER_NATS_SERVER` overrides).
pub fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RESIZER_NATS_SERVER") {
        return p.into();
    }
    let tools = std::env::var_os("RESIZER_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
            cache.join("resizer-tools")
        });
    tools.join("venv/bin/nats-server")
}

/// A running nats-server, killed on drop.
pub struct Nats {
    child: Child,
    /// Its client URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Nats {
    /// The server's process id, to signal it (pause, resume).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a loopback port")
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// A single JetStream nats-server on a free loopback port, stopped on drop.
pub async fn start_nats() -> Nats {
    start_nats_with(&[]).await
}

/// Like [`start_nats`], with more server flags (users, TLS).
pub async fn start_nats_with(extra: &[&str]) -> Nats {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(nats_server_bin())
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nats-server (installed by scripts/setup.sh)");
    let url = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nats-server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Nats {
        child,
        url,
        _dir: dir,
    }
}

/// A JetStream cluster of `n` nats-servers on loopback (server names `s0`..),
/// each stopped when its [`Nats`] is dropped; for failover tests.
pub async fn start_nats_cluster(n: usize) -> Vec<Nats> {
    let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let route_urls = routes
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut servers = Vec::with_capacity(n);
    for (i, route) in routes.iter().enumerate() {
        let name = format!("s{i}");
        let listen = format!("nats://127.0.0.1:{route}");
        servers.push(
            start_nats_with(&[
                "--server_name",
                &name,
                "--cluster_name",
                "resizer-test",
                "--cluster",
                &listen,
                "--routes",
                &route_urls,
            ])
            .await,
        );
    }
    servers
}
