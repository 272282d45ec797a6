//! The chaos suite's cluster: the shared one (`common::cluster`) on its own
//! port base and directory, with network faults required.

use std::path::PathBuf;

pub use crate::common::cluster::{Cluster, StreamState};

/// Ports base+1..base+91: `RESIZER_CHAOS_PORT_BASE`, default 25000, far from
/// the other tests' (cluster.rs uses 24000); two runs on one machine need two bases.
fn port_base() -> u16 {
    std::env::var("RESIZER_CHAOS_PORT_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25000)
}

/// Starts the cluster in a fixed directory (`RESIZER_CHAOS_DIR`, else under the
/// target dir), so an interrupted run's leftovers are stopped by the next.
pub fn up() -> Cluster {
    let dir = std::env::var_os("RESIZER_CHAOS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chaos-cluster"));
    let cluster = Cluster::up(
        dir,
        port_base(),
        &[
            ("RESIZER_API__MAX_IN_FLIGHT_PER_TENANT", "1000"),
            ("RESIZER_CLUSTER_DISK_MB", "64"),
        ],
    );
    assert!(
        cluster.faults,
        "the chaos suite needs root, nftables and cgroup v2 for its network faults \
         (RESIZER_CHAOS_SCHEDULE=off skips it)"
    );
    cluster
}
