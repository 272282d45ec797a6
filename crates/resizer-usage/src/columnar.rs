//! Usage records as Parquet (zstd): the archive's file format.
//!
//! One row per record, columns in [`SCHEMA`] order, every integer as INT64.
//! Low-cardinality columns (tenant, key, route, formats, node, worker) compress
//! to almost nothing through Parquet's dictionary encoding.

use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;

use crate::record::UsageRecord;

/// The archive's schema; columns are only ever appended (optional), and a
/// file without the newest ones decodes them as absent.
pub const SCHEMA: &str = "message usage_record {
  REQUIRED BYTE_ARRAY record_id (UTF8);
  REQUIRED BYTE_ARRAY tenant_id (UTF8);
  REQUIRED BYTE_ARRAY key_id (UTF8);
  REQUIRED BYTE_ARRAY request_id (UTF8);
  REQUIRED INT64 received_unix_ms;
  OPTIONAL INT64 queued_unix_ms;
  OPTIONAL INT64 started_unix_ms;
  REQUIRED INT64 finished_unix_ms;
  REQUIRED BYTE_ARRAY route (UTF8);
  REQUIRED BYTE_ARRAY params (UTF8);
  OPTIONAL BYTE_ARRAY input_format (UTF8);
  REQUIRED INT64 input_bytes;
  OPTIONAL INT64 input_width;
  OPTIONAL INT64 input_height;
  OPTIONAL BYTE_ARRAY output_format (UTF8);
  REQUIRED INT64 output_bytes;
  OPTIONAL INT64 output_width;
  OPTIONAL INT64 output_height;
  REQUIRED INT64 cpu_micros;
  OPTIONAL INT64 queue_wait_ms;
  OPTIONAL INT64 processing_ms;
  REQUIRED INT64 total_ms;
  REQUIRED INT64 status;
  REQUIRED BYTE_ARRAY api_node (UTF8);
  OPTIONAL BYTE_ARRAY worker (UTF8);
  OPTIONAL BYTE_ARRAY cache (UTF8);
}";

/// Why encoding or decoding failed.
#[derive(Debug, thiserror::Error)]
pub enum ColumnarError {
    /// The Parquet library refused.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A row does not hold a usage record.
    #[error("not a usage record row: {0}")]
    Row(String),
}

enum Column {
    Str(Vec<ByteArray>, Option<Vec<i16>>),
    Int(Vec<i64>, Option<Vec<i16>>),
}

fn strs<'a>(values: impl Iterator<Item = &'a str>) -> Column {
    Column::Str(values.map(ByteArray::from).collect(), None)
}

fn opt_strs<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Column {
    let (mut present, mut defs) = (Vec::new(), Vec::new());
    for v in values {
        defs.push(i16::from(v.is_some()));
        present.extend(v.map(ByteArray::from));
    }
    Column::Str(present, Some(defs))
}

fn ints(values: impl Iterator<Item = u64>) -> Column {
    Column::Int(
        values.map(|v| i64::try_from(v).unwrap_or(i64::MAX)).collect(),
        None,
    )
}

fn opt_ints(values: impl Iterator<Item = Option<u64>>) -> Column {
    let (mut present, mut defs) = (Vec::new(), Vec::new());
    for v in values {
        defs.push(i16::from(v.is_some()));
        present.extend(v.map(|v| i64::try_from(v).unwrap_or(i64::MAX)));
    }
    Column::Int(present, Some(defs))
}

/// Rows per row group: small enough that a file sorted by tenant lets a
/// one-tenant read skip most groups by their min/max statistics.
const ROW_GROUP_ROWS: usize = 4096;

fn columns(r: &[UsageRecord]) -> Vec<Column> {
    vec![
        strs(r.iter().map(|x| x.record_id.as_str())),
        strs(r.iter().map(|x| x.tenant_id.as_str())),
        strs(r.iter().map(|x| x.key_id.as_str())),
        strs(r.iter().map(|x| x.request_id.as_str())),
        ints(r.iter().map(|x| x.received_unix_ms)),
        opt_ints(r.iter().map(|x| x.queued_unix_ms)),
        opt_ints(r.iter().map(|x| x.started_unix_ms)),
        ints(r.iter().map(|x| x.finished_unix_ms)),
        strs(r.iter().map(|x| x.route.as_str())),
        strs(r.iter().map(|x| x.params.as_str())),
        opt_strs(r.iter().map(|x| x.input_format.as_deref())),
        ints(r.iter().map(|x| x.input_bytes)),
        opt_ints(r.iter().map(|x| x.input_width.map(u64::from))),
        opt_ints(r.iter().map(|x| x.input_height.map(u64::from))),
        opt_strs(r.iter().map(|x| x.output_format.as_deref())),
        ints(r.iter().map(|x| x.output_bytes)),
        opt_ints(r.iter().map(|x| x.output_width.map(u64::from))),
        opt_ints(r.iter().map(|x| x.output_height.map(u64::from))),
        ints(r.iter().map(|x| x.cpu_micros)),
        opt_ints(r.iter().map(|x| x.queue_wait_ms)),
        opt_ints(r.iter().map(|x| x.processing_ms)),
        ints(r.iter().map(|x| x.total_ms)),
        ints(r.iter().map(|x| u64::from(x.status))),
        strs(r.iter().map(|x| x.api_node.as_str())),
        opt_strs(r.iter().map(|x| x.worker.as_deref())),
        opt_strs(r.iter().map(|x| x.cache.as_deref())),
    ]
}

/// Encodes records as one Parquet file (zstd level 3), in row groups of [`ROW_GROUP_ROWS`].
pub fn encode(records: &[UsageRecord]) -> Result<Vec<u8>, ColumnarError> {
    encode_with(SCHEMA, records)
}

/// [`encode`] with `schema` (a prefix of [`SCHEMA`]'s columns: older files in tests).
fn encode_with(schema: &str, records: &[UsageRecord]) -> Result<Vec<u8>, ColumnarError> {
    let schema = Arc::new(parse_message_type(schema)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .build(),
    );
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, props)?;
    for chunk in records.chunks(ROW_GROUP_ROWS) {
        let mut group = writer.next_row_group()?;
        let mut cols = columns(chunk).into_iter();
        while let Some(mut col) = group.next_column()? {
            match cols.next() {
                Some(Column::Str(values, defs)) => {
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, defs.as_deref(), None)?;
                }
                Some(Column::Int(values, defs)) => {
                    col.typed::<Int64Type>()
                        .write_batch(&values, defs.as_deref(), None)?;
                }
                None => {
                    return Err(ColumnarError::Row(
                        "schema has more columns than the encoder".into(),
                    ));
                }
            }
            col.close()?;
        }
        group.close()?;
    }
    writer.close()?;
    Ok(out)
}

/// Decodes one tenant's rows, skipping row groups whose tenant min/max
/// statistics exclude it (most of them, in a file sorted by tenant).
pub fn decode_tenant(file: Bytes, tenant: &str) -> Result<Vec<UsageRecord>, ColumnarError> {
    let reader = SerializedFileReader::new(file)?;
    let mut out = Vec::new();
    for i in 0..reader.num_row_groups() {
        let stats = reader.metadata().row_group(i).column(1).statistics();
        let outside = stats.is_some_and(|s| {
            s.min_bytes_opt().is_some_and(|min| tenant.as_bytes() < min)
                || s.max_bytes_opt().is_some_and(|max| tenant.as_bytes() > max)
        });
        if outside {
            continue;
        }
        for row in reader.get_row_group(i)?.get_row_iter(None)? {
            let row = row?;
            if !matches!(row.get_column_iter().nth(1), Some((_, Field::Str(t))) if t == tenant) {
                continue;
            }
            let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
            out.push(from_fields(&fields)?);
        }
    }
    Ok(out)
}

/// Decodes a Parquet file written by [`encode`] (or any file with [`SCHEMA`]).
pub fn decode(file: Bytes) -> Result<Vec<UsageRecord>, ColumnarError> {
    let reader = SerializedFileReader::new(file)?;
    let mut out = Vec::with_capacity(reader.metadata().file_metadata().num_rows().max(0) as usize);
    for row in reader.get_row_iter(None)? {
        let row = row?;
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        out.push(from_fields(&fields)?);
    }
    Ok(out)
}

fn from_fields(f: &[&Field]) -> Result<UsageRecord, ColumnarError> {
    let bad = |i: usize| ColumnarError::Row(format!("column {i} has an unexpected type"));
    let text = |i: usize| match f.get(i) {
        Some(Field::Str(s)) => Ok(s.clone()),
        _ => Err(bad(i)),
    };
    let opt_text = |i: usize| match f.get(i) {
        Some(Field::Str(s)) => Ok(Some(s.clone())),
        Some(Field::Null) => Ok(None),
        _ => Err(bad(i)),
    };
    let int = |i: usize| match f.get(i) {
        Some(Field::Long(v)) => Ok((*v).max(0) as u64),
        _ => Err(bad(i)),
    };
    let opt_int = |i: usize| match f.get(i) {
        Some(Field::Long(v)) => Ok(Some((*v).max(0) as u64)),
        Some(Field::Null) => Ok(None),
        _ => Err(bad(i)),
    };
    let id = |i: usize| -> Result<String, ColumnarError> { text(i) };
    let small = |v: Option<u64>| v.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
    Ok(UsageRecord {
        record_id: id(0)?.try_into().map_err(|_| bad(0))?,
        tenant_id: id(1)?.try_into().map_err(|_| bad(1))?,
        key_id: id(2)?.try_into().map_err(|_| bad(2))?,
        request_id: id(3)?.try_into().map_err(|_| bad(3))?,
        received_unix_ms: int(4)?,
        queued_unix_ms: opt_int(5)?,
        started_unix_ms: opt_int(6)?,
        finished_unix_ms: int(7)?,
        route: text(8)?,
        params: text(9)?,
        input_format: opt_text(10)?,
        input_bytes: int(11)?,
        input_width: small(opt_int(12)?),
        input_height: small(opt_int(13)?),
        output_format: opt_text(14)?,
        output_bytes: int(15)?,
        output_width: small(opt_int(16)?),
        output_height: small(opt_int(17)?),
        cpu_micros: int(18)?,
        queue_wait_ms: opt_int(19)?,
        processing_ms: opt_int(20)?,
        total_ms: int(21)?,
        status: u16::try_from(int(22)?).map_err(|_| bad(22))?,
        api_node: text(23)?,
        worker: opt_text(24)?,
        // Absent from files written before the column existed.
        cache: match f.get(25) {
            Some(Field::Str(s)) => Some(s.clone()),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::record;
    use resizer_core::ids::TenantId;

    #[test]
    fn test_parquet_round_trip_with_nulls() {
        let t = TenantId::random();
        let mut records: Vec<_> = (0..500)
            .map(|i| record(&t, i, if i % 7 == 0 { 415 } else { 200 }))
            .collect();
        records[3].worker = None;
        records[3].queued_unix_ms = None;
        records[4].cache = Some("hit".into());
        let bytes = encode(&records).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let json: usize = records.iter().map(|r| serde_json::to_vec(r).unwrap().len()).sum();
        assert!(
            bytes.len() * 3 < json,
            "{} bytes of Parquet for {json} bytes of JSON",
            bytes.len()
        );
        assert_eq!(decode(Bytes::from(bytes.clone())).unwrap(), records);
        assert_eq!(
            decode_tenant(Bytes::from(bytes.clone()), t.as_str()).unwrap(),
            records
        );
        assert!(decode_tenant(Bytes::from(bytes), "ten_0").unwrap().is_empty());
    }

    #[test]
    fn test_a_file_from_before_the_cache_column_decodes_it_as_absent() {
        let t = TenantId::random();
        let mut records: Vec<_> = (0..10).map(|i| record(&t, i, 200)).collect();
        let old = SCHEMA.replace("  OPTIONAL BYTE_ARRAY cache (UTF8);\n", "");
        assert_ne!(old, SCHEMA);
        records[1].cache = Some("hit".into());
        let decoded = decode(Bytes::from(encode_with(&old, &records).unwrap())).unwrap();
        records[1].cache = None;
        assert_eq!(decoded, records);
    }

    #[test]
    fn test_tenant_read_skips_row_groups_of_other_tenants() {
        let mut tenants: Vec<TenantId> = (0..4).map(|_| TenantId::random()).collect();
        tenants.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        // Sorted by tenant, 5,000 rows each: every row group but the boundary ones holds one tenant.
        let records: Vec<_> = tenants
            .iter()
            .flat_map(|t| (0..5000).map(move |i| record(t, i, 200)))
            .collect();
        let bytes = Bytes::from(encode(&records).unwrap());
        let reader = SerializedFileReader::new(bytes.clone()).unwrap();
        assert_eq!(reader.num_row_groups(), 5);
        let second = decode_tenant(bytes, tenants[1].as_str()).unwrap();
        assert_eq!(second.len(), 5000);
        assert!(second.iter().all(|r| r.tenant_id == tenants[1]));
    }
}
