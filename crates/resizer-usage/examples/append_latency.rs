//! The usage log's cost on the request path under concurrency: `THREADS`
//! threads (default 16) each append `PER_THREAD` records (default 10,000) as
//! fast as they can while the log fsyncs on its own schedule, into a directory
//! on the real disk (`APPEND_DIR`, default `./target/append-latency`).
//! Prints append latency percentiles and the rate; `PACE_US` sleeps between
//! one thread's appends, for a request rate rather than a flood. Run against two versions
//! of the log back to back to compare them (docs/benchmarks.md).
//!
//! `cargo run --release -p resizer-usage --example append_latency`

use std::sync::Arc;
use std::time::{Duration, Instant};

use resizer_core::ids::{KeyId, RecordId, RequestId, TenantId};
use resizer_usage::{UsageLog, UsageLogConfig, UsageRecord};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn record(tenant: &TenantId, key: &KeyId, i: u64) -> UsageRecord {
    UsageRecord {
        record_id: RecordId::random(),
        tenant_id: tenant.clone(),
        key_id: key.clone().into(),
        request_id: RequestId::random(),
        received_unix_ms: 1_767_225_600_000 + i,
        queued_unix_ms: Some(1_767_225_600_001 + i),
        started_unix_ms: Some(1_767_225_600_002 + i),
        finished_unix_ms: 1_767_225_600_015 + i,
        route: "POST /v1/resize".into(),
        params: "width=320".into(),
        input_format: Some("jpeg".into()),
        input_bytes: 250_000,
        input_width: Some(1600),
        input_height: Some(1200),
        output_format: Some("jpeg".into()),
        output_bytes: 20_000,
        output_width: Some(320),
        output_height: Some(240),
        cpu_micros: 9_000,
        queue_wait_ms: Some(1),
        processing_ms: Some(9),
        total_ms: 15,
        status: 200,
        api_node: "http://10.0.0.1:8082".into(),
        worker: Some("worker-1".into()),
        cache: None,
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let threads = env_or("THREADS", 16);
    let per_thread = env_or("PER_THREAD", 10_000);
    let dir = std::env::var("APPEND_DIR").unwrap_or_else(|_| "target/append-latency".into());
    let _ = std::fs::remove_dir_all(&dir);
    let log = UsageLog::open(UsageLogConfig::new(dir.clone().into())).unwrap();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let (tenant, key) = (TenantId::random(), KeyId::random());
                let records: Vec<UsageRecord> =
                    (0..per_thread as u64).map(|i| record(&tenant, &key, i)).collect();
                let mut lat = Vec::with_capacity(per_thread);
                // PACE_US between appends per thread: a request rate, not a flood.
                let pace = Duration::from_micros(env_or("PACE_US", 0) as u64);
                for r in &records {
                    let t0 = Instant::now();
                    log.append(r).unwrap();
                    lat.push(t0.elapsed());
                    if !pace.is_zero() {
                        std::thread::sleep(pace);
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let elapsed = started.elapsed();
    lat.sort();
    println!(
        "{threads} threads x {per_thread} appends: {:.0} appends/s; latency p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        lat.len() as f64 / elapsed.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
        pct(&lat, 1.0)
    );
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}
