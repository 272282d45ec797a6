//! Test support (feature `testing`): real engines on loopback for the tests of
//! this crate and of the binary.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::s3::S3Config;

/// A one-node Garage on loopback (`scripts/garage.sh`), stopped on drop.
pub struct Garage {
    dir: tempfile::TempDir,
    /// How to reach its bucket `resizer-archive`.
    pub config: S3Config,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/garage.sh")
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Garage {
    /// Starts it in a fresh directory with a bucket and a key allowed on it.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .arg(free_port().to_string())
            .arg(free_port().to_string())
            .output()
            .expect("running scripts/garage.sh");
        assert!(
            out.status.success(),
            "garage did not start (installed by scripts/setup.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("garage.sh printed no {name}: {text}"))
                .to_string()
        };
        let config = S3Config {
            endpoint: field("endpoint"),
            bucket: field("bucket"),
            region: field("region"),
            access_key_id: field("access_key_id"),
            secret_access_key: field("secret_access_key"),
            virtual_host: false,
            timeout: Duration::from_secs(5),
        };
        Self { dir, config }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(self.dir.path()).status();
    }
}

/// What every [`crate::store::UsageStore`] keeps of storage samples: the
/// peak per tenant and hour, whatever the order or repetition of samples.
pub async fn storage_contract(store: &dyn crate::store::UsageStore) {
    use crate::rollup::StoredSample;
    use resizer_core::ids::TenantId;
    const HOUR: u64 = 3_600_000;
    let (a, b) = (TenantId::random(), TenantId::random());
    let sample = |t: &TenantId, bytes, originals| StoredSample {
        tenant_id: t.clone(),
        bytes,
        originals,
    };
    store
        .record_storage(0, &[sample(&a, 100, 1), sample(&b, 7, 1)])
        .await
        .unwrap();
    // A later, higher sample raises the hour's peak; a lower or repeated one does not.
    store.record_storage(0, &[sample(&a, 300, 3)]).await.unwrap();
    store.record_storage(0, &[sample(&a, 200, 2)]).await.unwrap();
    store.record_storage(HOUR, &[sample(&a, 50, 1)]).await.unwrap();
    store.record_storage(HOUR, &[sample(&a, 50, 1)]).await.unwrap();
    let hours = store.storage_hourly(&a, 0, 2 * HOUR).await.unwrap();
    assert_eq!(hours, vec![(0, 300, 3), (HOUR, 50, 1)]);
    assert_eq!(store.storage_hourly(&a, HOUR, 2 * HOUR).await.unwrap().len(), 1);
    assert_eq!(
        store.storage_hourly(&b, 0, 2 * HOUR).await.unwrap(),
        vec![(0, 7, 1)]
    );
    // Nothing crosses tenants.
    let c = TenantId::random();
    assert!(store.storage_hourly(&c, 0, 2 * HOUR).await.unwrap().is_empty());
}
