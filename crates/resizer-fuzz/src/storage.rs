//! What the usage pipeline reads back from disks and object stores: log
//! segments, whole, torn or truncated, and S3 `ListObjectsV2` pages.

use std::io::Cursor;

use resizer_core::ids::TenantId;
use resizer_usage::UsageRecord;
use resizer_usage::log::{encode_line, parse_segment};
use resizer_usage::s3::parse_list_page;

/// A segment, two ways. Any bytes read as a segment give records that
/// round-trip. And a segment the writer wrote, cut anywhere (a crash or a
/// full disk mid-append), gives back exactly the records written whole
/// before the cut, in order: never a record that was not, never fewer.
///
/// Byte 0: how many records; bytes 1–2: where to cut; the rest flavours the
/// records' free-text fields, so the writer's escaping meets odd text.
pub fn usage_segment(data: &[u8]) {
    let (records, skipped) = parse_segment(Cursor::new(data)).expect("reading memory cannot fail");
    for r in &records {
        let line = encode_line(r).expect("a read record prints");
        let (again, none) = parse_segment(Cursor::new(&line)).expect("memory");
        assert_eq!((again.as_slice(), none), (std::slice::from_ref(r), 0));
    }
    let lines = data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(
        records.len() + skipped,
        lines,
        "every non-empty line is a record or skipped"
    );

    let [count, cut_hi, cut_lo, text @ ..] = data else {
        return;
    };
    let written = sample_records(usize::from(count % 16), text);
    let mut segment = Vec::new();
    let mut ends = Vec::new();
    for r in &written {
        segment.extend(encode_line(r).expect("records print"));
        ends.push(segment.len());
    }
    let cut = usize::from(u16::from_be_bytes([*cut_hi, *cut_lo])) % (segment.len() + 1);
    let (read, skipped) = parse_segment(Cursor::new(&segment[..cut])).expect("memory");
    let whole = ends.iter().filter(|&&end| end <= cut).count();
    // A line cut just before its newline still holds a whole record.
    let only_newline_lost = ends.get(whole).is_some_and(|&end| end - 1 == cut);
    let expected = whole + usize::from(only_newline_lost);
    assert_eq!(
        read.as_slice(),
        &written[..expected],
        "cut at {cut} of {}",
        segment.len()
    );
    let torn = cut > ends.get(whole.wrapping_sub(1)).copied().unwrap_or(0) && !only_newline_lost;
    assert_eq!(skipped, usize::from(torn));
}

fn sample_records(n: usize, text: &[u8]) -> Vec<UsageRecord> {
    let tenant = TenantId::random();
    let flavour = String::from_utf8_lossy(text);
    (0..n)
        .map(|i| {
            let mut r = UsageRecord::sample(&tenant, 1_800_000_000_000 + i as u64, [200, 422, 429][i % 3]);
            r.params = flavour.chars().skip(i).take(64).collect();
            r.worker = Some(flavour.chars().rev().take(i).collect());
            r
        })
        .collect()
}

/// A `ListObjectsV2` page: parsed or refused, and a continuation token, when
/// there is one, is never empty (an empty one would list page one forever).
pub fn s3_listing(data: &[u8]) {
    let Ok(page) = parse_list_page(data) else {
        return;
    };
    assert!(page.next.as_ref().is_none_or(|t| !t.is_empty()));
}
