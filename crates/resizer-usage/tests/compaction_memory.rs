//! Archive compaction holds a bounded batch of records, not a whole day: the
//! same day compacted in batches and in one piece, with this test binary's
//! heap counted by a counting allocator.

use std::sync::Arc;

use resizer_core::ids::TenantId;
use resizer_testing::alloc::{Counting, peak_during};
use resizer_usage::UsageRecord;
use resizer_usage::archive::{Archive, LocalDirStore};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const DAY_MS: u64 = 86_400_000;

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
            .map(|i| UsageRecord::sample(&tenants[i % tenants.len()], (f * rows + i) as u64, 200))
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
