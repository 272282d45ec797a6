//! Roll-ups: records into per-tenant buckets aligned to UTC hours or days.
//! Pure functions; the aggregator and the usage queries share them.

use std::collections::BTreeMap;

use resizer_core::ids::TenantId;
use serde::{Deserialize, Serialize};

use crate::record::UsageRecord;

/// Bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketSize {
    /// One UTC hour.
    Hour,
    /// One UTC day.
    Day,
}

impl BucketSize {
    /// Width in milliseconds.
    pub fn millis(self) -> u64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    /// Returns the start of the bucket holding `unix_ms`.
    pub fn start_of(self, unix_ms: u64) -> u64 {
        unix_ms - unix_ms % self.millis()
    }

    /// Parses `hour` or `day`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }
}

/// One tenant's usage in one bucket; integer counters only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bucket start (Unix ms, UTC-aligned).
    pub start_unix_ms: u64,
    /// Metered requests.
    pub requests: u64,
    /// Of which 2xx.
    pub succeeded: u64,
    /// Of which not 2xx.
    pub failed: u64,
    /// Input bytes.
    pub bytes_in: u64,
    /// Output bytes.
    pub bytes_out: u64,
    /// Input pixels.
    pub pixels_in: u64,
    /// Output pixels.
    pub pixels_out: u64,
    /// Worker CPU time in microseconds (reported as ms, rounded down, at the edge).
    pub cpu_micros: u64,
    /// Bytes of originals stored: the highest sample in the bucket.
    pub stored_bytes: u64,
    /// Originals stored: the highest sample in the bucket.
    pub stored_originals: u64,
    /// Storage over time: each hour's `stored_bytes` times one hour, summed.
    /// What storage is billed by; a day of 1 GB stored reads 24 GB-hours.
    pub stored_byte_hours: u64,
}

impl Bucket {
    /// Adds one record. Counters saturate: a record from a corrupt or hostile
    /// stream message (absurd sizes) must not wrap a bill or panic the
    /// aggregator (found by the `usage_record` fuzz target).
    pub fn add(&mut self, r: &UsageRecord) {
        self.merge(&Bucket {
            start_unix_ms: self.start_unix_ms,
            requests: 1,
            succeeded: u64::from(r.succeeded()),
            failed: u64::from(!r.succeeded()),
            bytes_in: r.input_bytes,
            bytes_out: r.output_bytes,
            pixels_in: r.pixels_in(),
            pixels_out: r.pixels_out(),
            cpu_micros: r.cpu_micros,
            ..Bucket::default()
        });
    }

    /// Adds another bucket's counters (same tenant and start), saturating.
    pub fn merge(&mut self, other: &Bucket) {
        for (mine, theirs) in [
            (&mut self.requests, other.requests),
            (&mut self.succeeded, other.succeeded),
            (&mut self.failed, other.failed),
            (&mut self.bytes_in, other.bytes_in),
            (&mut self.bytes_out, other.bytes_out),
            (&mut self.pixels_in, other.pixels_in),
            (&mut self.pixels_out, other.pixels_out),
            (&mut self.cpu_micros, other.cpu_micros),
        ] {
            *mine = mine.saturating_add(theirs);
        }
        self.stored_bytes = self.stored_bytes.max(other.stored_bytes);
        self.stored_originals = self.stored_originals.max(other.stored_originals);
        self.stored_byte_hours = self.stored_byte_hours.saturating_add(other.stored_byte_hours);
    }

    /// Whether the bucket holds anything to report.
    pub fn is_empty(&self) -> bool {
        self.requests == 0 && self.stored_byte_hours == 0 && self.stored_originals == 0
    }
}

/// One tenant's stored originals at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSample {
    /// Whose originals.
    pub tenant_id: TenantId,
    /// Their bytes.
    pub bytes: u64,
    /// How many.
    pub originals: u64,
}

/// The hourly storage peaks of one tenant, `(hour start, bytes, originals)`,
/// folded into its hourly request buckets (an hour with storage and no
/// requests gets a bucket of its own). Both inputs and the output are in
/// time order.
pub fn with_storage(hourly: Vec<Bucket>, storage: Vec<(u64, u64, u64)>) -> Vec<Bucket> {
    let mut out: BTreeMap<u64, Bucket> = hourly.into_iter().map(|b| (b.start_unix_ms, b)).collect();
    for (start, bytes, originals) in storage {
        let b = out.entry(start).or_insert_with(|| Bucket {
            start_unix_ms: start,
            ..Bucket::default()
        });
        b.stored_bytes = bytes;
        b.stored_originals = originals;
        b.stored_byte_hours = bytes;
    }
    out.into_values().collect()
}

/// Rolls records up by (tenant, bucket start), keyed on the time the request was received.
pub fn roll_up<'a>(
    records: impl IntoIterator<Item = &'a UsageRecord>,
    size: BucketSize,
) -> BTreeMap<(TenantId, u64), Bucket> {
    let mut out: BTreeMap<(TenantId, u64), Bucket> = BTreeMap::new();
    for r in records {
        let start = size.start_of(r.received_unix_ms);
        out.entry((r.tenant_id.clone(), start))
            .or_insert_with(|| Bucket {
                start_unix_ms: start,
                ..Bucket::default()
            })
            .add(r);
    }
    out
}

/// Re-buckets hourly buckets of one tenant into `size`, keeping only `[from, to)`.
pub fn rebucket(
    hourly: impl IntoIterator<Item = Bucket>,
    size: BucketSize,
    from_ms: u64,
    to_ms: u64,
) -> Vec<Bucket> {
    let mut out: BTreeMap<u64, Bucket> = BTreeMap::new();
    for b in hourly {
        if b.start_unix_ms < from_ms || b.start_unix_ms >= to_ms {
            continue;
        }
        let start = size.start_of(b.start_unix_ms);
        out.entry(start)
            .or_insert_with(|| Bucket {
                start_unix_ms: start,
                ..Bucket::default()
            })
            .merge(&b);
    }
    out.into_values().filter(|b| !b.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::record;

    #[test]
    fn test_counters_saturate_on_absurd_records() {
        let mut r = record(&TenantId::random(), 1, 200);
        r.input_width = Some(u32::MAX);
        r.input_height = Some(u32::MAX);
        r.input_bytes = u64::MAX;
        let mut b = Bucket::default();
        b.add(&r);
        b.add(&r);
        b.merge(&b.clone());
        assert_eq!((b.requests, b.bytes_in, b.pixels_in), (4, u64::MAX, u64::MAX));
    }

    const HOUR: u64 = 3_600_000;

    #[test]
    fn test_roll_up_splits_by_tenant_and_hour() {
        let (a, b) = (TenantId::random(), TenantId::random());
        let records = vec![
            record(&a, 10, 200),
            record(&a, HOUR - 1, 429),
            record(&a, HOUR, 200),
            record(&b, 20, 200),
        ];
        let r = roll_up(&records, BucketSize::Hour);
        assert_eq!(r.len(), 3);
        let a0 = &r[&(a.clone(), 0)];
        assert_eq!((a0.requests, a0.succeeded, a0.failed), (2, 1, 1));
        assert_eq!(a0.bytes_in, 2000);
        assert_eq!(a0.bytes_out, 100);
        assert_eq!(a0.pixels_out, 320 * 213);
        assert_eq!(a0.cpu_micros, 9_000);
        assert_eq!(r[&(a, HOUR)].requests, 1);
        assert_eq!(r[&(b, 0)].requests, 1);
    }

    #[test]
    fn test_rebucket_days_and_bounds() {
        let t = TenantId::random();
        let records: Vec<_> = (0..48).map(|h| record(&t, h * HOUR + 5, 200)).collect();
        let hourly: Vec<Bucket> = roll_up(&records, BucketSize::Hour).into_values().collect();
        let days = rebucket(hourly.clone(), BucketSize::Day, 0, 48 * HOUR);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].requests, 24);
        assert_eq!(days[1].start_unix_ms, 24 * HOUR);
        // `from` inclusive, `to` exclusive, on bucket starts.
        let some = rebucket(hourly, BucketSize::Hour, 2 * HOUR, 5 * HOUR);
        assert_eq!(some.len(), 3);
        assert_eq!(some[0].start_unix_ms, 2 * HOUR);
    }

    #[test]
    fn test_storage_is_a_level_per_hour_and_byte_hours_per_day() {
        let t = TenantId::random();
        let hourly: Vec<Bucket> = roll_up(&[record(&t, 5, 200)], BucketSize::Hour)
            .into_values()
            .collect();
        // Hour 0 has a request and 1,000 bytes stored; hours 1 and 2 storage only.
        let storage = vec![(0, 1_000, 2), (HOUR, 3_000, 3), (2 * HOUR, 500, 1)];
        let hours = with_storage(hourly, storage);
        assert_eq!(hours.len(), 3);
        assert_eq!((hours[0].requests, hours[0].stored_bytes), (1, 1_000));
        assert_eq!((hours[1].requests, hours[1].stored_byte_hours), (0, 3_000));
        let day = rebucket(hours.clone(), BucketSize::Day, 0, 24 * HOUR);
        assert_eq!(day.len(), 1);
        // The day's peak, and the sum of its hours.
        assert_eq!((day[0].stored_bytes, day[0].stored_originals), (3_000, 3));
        assert_eq!(day[0].stored_byte_hours, 4_500);
        assert_eq!(day[0].requests, 1);
        // A storage-only hour is reported, an empty one is not.
        let only = rebucket(hours, BucketSize::Hour, HOUR, 3 * HOUR);
        assert_eq!(only.len(), 2);
        assert!(Bucket::default().is_empty());
    }

    #[test]
    fn test_bucket_start_is_utc_aligned() {
        assert_eq!(BucketSize::Day.start_of(86_400_000 + 5), 86_400_000);
        assert_eq!(BucketSize::parse("day"), Some(BucketSize::Day));
        assert_eq!(BucketSize::parse("week"), None);
    }
}
