//! Archive compaction holds a bounded batch of records, not a whole day: the
//! same day compacted in batches and in one piece, with this test binary's
//! heap counted by a counting allocator.

use std::sync::Arc;

use resizer_core::ids::{KeyId, RecordId, RequestId, TenantId};
use resizer_testing::alloc::{Counting, peak_during};
use resizer_usage::UsageRecord;
use resizer_usage::archive::{Archive, LocalDirStore};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const DAY_MS: u64 = 86_400_000;

fn record(tenant: &TenantId, at_ms: u64) -> UsageRecord {
    UsageRecord {
        record_id: RecordId::random(),
        tenant_id: tenant.clone(),
        key_id: KeyId::random(),
        request_id: RequestId::random(),
        received_unix_ms: at_ms,
        queued_unix_ms: Some(at_ms + 1),
        started_unix_ms: Some(at_ms + 2),
        finished_unix_ms: at_ms + 10,
        route: "POST /v1/resize".into(),
        params: "width=320&height=320&fit=cover".into(),
        input_format: Some("jpeg".into()),
        input_bytes: 250_000,
        input_width: Some(1600),
        input_height: Some(1067),
        output_format: Some("webp".into()),
        output_bytes: 12_000,
        output_width: Some(320),
        output_height: Some(320),
        cpu_micros: 4_500,
        queue_wait_ms: Some(1),
        processing_ms: Some(8),
        total_ms: 10,
        status: 200,
        api_node: "api-1".into(),
        worker: Some("worker-1".into()),
    }
}

struct Day {
    _dir: tempfile::TempDir,
    archive: Archive,
    tenants: Vec<TenantId>,
}

/// Runs the archive's async calls to completion (its blocking work on the runtime's pool).
fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(work)
}

/// A day of `files` shipments of `rows` records each, from a few tenants.
fn filed_day(files: usize, rows: usize) -> Day {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::new(Arc::new(LocalDirStore::new(dir.path().to_path_buf())));
    let tenants: Vec<_> = (0..5).map(|_| TenantId::random()).collect();
    for f in 0..files {
        let batch: Vec<_> = (0..rows)
            .map(|i| record(&tenants[i % tenants.len()], (f * rows + i) as u64))
            .collect();
        block_on(archive.file_records(&batch)).unwrap();
    }
    Day {
        _dir: dir,
        archive,
        tenants,
    }
}

#[test]
fn test_compaction_memory_is_bounded_by_its_batch_not_by_the_day() {
    const FILES: usize = 24;
    const ROWS: usize = 2_500;
    let whole = filed_day(FILES, ROWS);
    let (replaced, peak_whole) = peak_during(|| block_on(whole.archive.compact_day(0, usize::MAX)).unwrap());
    assert_eq!(replaced, FILES);
    drop(whole);
    let batched = filed_day(FILES, ROWS);
    let (replaced, peak_batched) = peak_during(|| block_on(batched.archive.compact_day(0, 5_000)).unwrap());
    assert_eq!(replaced, FILES);
    eprintln!(
        "compacting {} records: whole day {:.1} MB at peak, batches of 5,000 {:.1} MB",
        FILES * ROWS,
        peak_whole as f64 / 1e6,
        peak_batched as f64 / 1e6
    );
    assert!(
        peak_batched * 4 < peak_whole,
        "batched {peak_batched} B vs whole {peak_whole} B"
    );
    // Nothing lost, nothing doubled, and nothing left to compact.
    let total: usize = batched
        .tenants
        .iter()
        .map(|t| {
            block_on(batched.archive.records(t, 0, DAY_MS, usize::MAX))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(total, FILES * ROWS);
    assert!(block_on(batched.archive.days_to_compact()).unwrap().is_empty());
}
