//! Measures the usage pipeline on a synthetic year: aggregation throughput on
//! one core, archive size and compression, query latency for one tenant's month,
//! and the cost of recording one request on the API node.
//!
//! cargo run --release -p resizer-usage --example usage_year -- [TENANTS] [DAYS] [RECORDS_PER_TENANT_DAY] [DIR]
//! (defaults 1000 365 10, a temporary directory)

use std::sync::Arc;
use std::time::{Duration, Instant};

use resizer_core::ids::{KeyId, RecordId, RequestId, TenantId};
use resizer_usage::archive::{Archive, LocalDirStore};
use resizer_usage::query::{LocalUsage, UsageQueries};
use resizer_usage::store::SqliteUsageStore;
use resizer_usage::{BucketSize, UsageLog, UsageLogConfig, UsageRecord};

const DAY: u64 = 86_400_000;
/// 2025-01-01T00:00:00Z.
const YEAR_START: u64 = 1_735_689_600_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn record(rng: &mut Rng, tenant: &TenantId, key: &KeyId, at: u64) -> UsageRecord {
    let ok = rng.below(50) != 0;
    let (w, h) = [(1200u32, 800u32), (1600, 1200), (4000, 3000), (800, 600)][rng.below(4) as usize];
    let out_w = [160u32, 320, 640, 1024][rng.below(4) as usize];
    let cpu = 2_000 + rng.below(20_000);
    UsageRecord {
        record_id: RecordId::random(),
        tenant_id: tenant.clone(),
        key_id: key.clone().into(),
        request_id: RequestId::random(),
        received_unix_ms: at,
        queued_unix_ms: ok.then_some(at + 1),
        started_unix_ms: ok.then_some(at + 2),
        finished_unix_ms: at + 15,
        route: "POST /v1/resize".into(),
        params: format!("width={out_w}"),
        input_format: Some("jpeg".into()),
        input_bytes: 100_000 + rng.below(900_000),
        input_width: Some(w),
        input_height: Some(h),
        output_format: ok.then(|| "jpeg".into()),
        output_bytes: if ok { 5_000 + rng.below(50_000) } else { 0 },
        output_width: ok.then_some(out_w),
        output_height: ok.then_some(out_w * h / w),
        cpu_micros: if ok { cpu } else { 0 },
        queue_wait_ms: ok.then_some(1),
        processing_ms: ok.then_some(cpu / 1000),
        total_ms: 15,
        status: if ok { 200 } else { 422 },
        api_node: format!("http://10.0.0.{}:8082", rng.below(8)),
        worker: ok.then(|| format!("worker-{}", rng.below(40))),
        cache: None,
    }
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                dir_size(&p)
            } else {
                p.metadata().map_or(0, |m| m.len())
            };
        }
    }
    total
}

fn pct(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[i].as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (tenants, days, per) = (arg(1, 1000), arg(2, 365), arg(3, 10));
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .get(4)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteUsageStore::open(&dir.join("rollup.sqlite")).unwrap());
    let archive = Arc::new(Archive::new(Arc::new(LocalDirStore::new(dir.join("archive")))));
    let mut ids: Vec<(TenantId, KeyId)> = (0..tenants)
        .map(|_| (TenantId::random(), KeyId::random()))
        .collect();
    ids.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    println!(
        "synthetic usage: {tenants} tenants × {days} days × {per} records per tenant-day, in {}",
        dir.display()
    );
    let (mut apply_time, mut archive_time) = (Duration::ZERO, Duration::ZERO);
    let (mut records_total, mut json_bytes) = (0u64, 0u64);
    for d in 0..days {
        let day = YEAR_START + d * DAY;
        let mut batch = Vec::with_capacity((tenants * per) as usize);
        for (t, k) in &ids {
            let mut times: Vec<u64> = (0..per).map(|_| day + rng.below(DAY)).collect();
            times.sort();
            for at in times {
                batch.push(record(&mut rng, t, k, at));
            }
        }
        json_bytes += batch
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap().len() as u64 + 1)
            .sum::<u64>();
        records_total += batch.len() as u64;
        let t0 = Instant::now();
        store.apply_blocking(&batch).unwrap();
        apply_time += t0.elapsed();
        let t0 = Instant::now();
        rt.block_on(archive.file_records(&batch)).unwrap();
        archive_time += t0.elapsed();
    }
    let agg = apply_time + archive_time;
    let archive_bytes = dir_size(&dir.join("archive"));
    println!("records: {records_total}");
    println!(
        "aggregation, one thread: {:.0} records/s (roll-up store {:.0}/s, Parquet archive {:.0}/s)",
        records_total as f64 / agg.as_secs_f64(),
        records_total as f64 / apply_time.as_secs_f64(),
        records_total as f64 / archive_time.as_secs_f64()
    );
    println!(
        "archive: {:.1} MB Parquet+zstd, {:.1} bytes/record; JSON lines ≈ {:.1} MB → compression {:.1}×",
        archive_bytes as f64 / 1e6,
        archive_bytes as f64 / records_total as f64,
        json_bytes as f64 / 1e6,
        json_bytes as f64 / archive_bytes as f64
    );
    println!(
        "roll-up store: {:.1} MB",
        dir_size(&dir) as f64 / 1e6 - archive_bytes as f64 / 1e6
    );

    let queries = LocalUsage {
        store: store.clone(),
        archive,
    };

    let (mut hours, mut daily, mut audit) = (Vec::new(), Vec::new(), Vec::new());
    let mut audited = 0;
    for _ in 0..20 {
        let (t, _) = &ids[rng.below(tenants) as usize];
        let from = YEAR_START + rng.below(days.saturating_sub(31).max(1)) * DAY;
        let to = from + 30 * DAY;
        let t0 = Instant::now();
        let b = rt
            .block_on(queries.buckets(t, from, to, BucketSize::Hour))
            .unwrap();
        hours.push(t0.elapsed());
        assert!(!b.is_empty());
        let t0 = Instant::now();
        rt.block_on(queries.buckets(t, from, to, BucketSize::Day))
            .unwrap();
        daily.push(t0.elapsed());
        let t0 = Instant::now();
        audited += rt.block_on(queries.audit(t, from, to, 10_000)).unwrap().len();
        audit.push(t0.elapsed());
    }
    println!(
        "one tenant, 30 days (20 queries): usage by hour p50 {:.2} ms p99 {:.2} ms; by day p50 {:.2} ms; audit p50 {:.0} ms p99 {:.0} ms ({} records each)",
        pct(&mut hours, 0.5),
        pct(&mut hours, 0.99),
        pct(&mut daily, 0.5),
        pct(&mut audit, 0.5),
        pct(&mut audit, 0.99),
        audited / 20
    );

    // The cost on the request path: one append (a write to the page cache).
    let log = UsageLog::open(UsageLogConfig::new(dir.join("log"))).unwrap();
    let (t, k) = &ids[0];
    let sample: Vec<UsageRecord> = (0..100_000)
        .map(|i| record(&mut rng, t, k, YEAR_START + i))
        .collect();
    let mut lat = Vec::with_capacity(sample.len());
    for r in &sample {
        let t0 = Instant::now();
        log.append(r).unwrap();
        lat.push(t0.elapsed());
    }
    println!(
        "recording on the request path (100,000 appends): p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        pct(&mut lat, 0.5) * 1000.0,
        pct(&mut lat, 0.99) * 1000.0,
        pct(&mut lat, 0.999) * 1000.0
    );
}
