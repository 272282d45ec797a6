//! The text and JSON each non-image parser reads in production.

use resizer_core::ids::{JobId, KeyId, RequestId, SigningKeyId, TenantId};
use resizer_core::params::ResizeParams;
use resizer_core::trace::TraceContext;
use resizer_core::{ImageFormat, api_key};
use resizer_identity::feed::ChangesPage;
use resizer_identity::{Change, ChangeEvent, Snapshot, Tenant};
use resizer_jobs::{JobDescriptor, StagingLocator};
use resizer_usage::UsageRecord;
use resizer_usage::log::encode_line;

type Seed = (&'static str, String, Vec<u8>);

fn text(target: &'static str, items: &[&'static str]) -> Vec<Seed> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| (target, i.to_string(), s.as_bytes().to_vec()))
        .collect()
}

pub fn texts() -> Vec<Seed> {
    let mut seeds = text(
        "resize_query",
        &[
            "width=300",
            "width=300&height=200&fit=cover&format=webp&quality=80&enlarge=true",
            "height=50&format=auto&fit=fill",
            "width=0",
            "width=99999999999999999999",
            "width=%33%32&height=+5",
            "width=10&width=20",
        ],
    );
    seeds.extend(text(
        "accept",
        &[
            "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
            "image/webp;q=0.9, image/*;q=0.8",
            "*/*",
            "IMAGE/PNG;Q=1.000, image/jpeg;q=0.5",
            "image/webp;q=NaN,image/png;q=-1",
        ],
    ));
    seeds.extend(text(
        "usage_query",
        &[
            "from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z&bucket=day",
            "2026-11-22T10:00:00.123+02:00",
            "bucket=hour&tenant=ten_x&limit=5",
            "from=1970-01-01T00:00:00Z",
        ],
    ));
    seeds.extend(headers());
    seeds.extend(messages());
    seeds.extend(storage());
    seeds.extend(config());
    seeds
}

fn headers() -> Vec<Seed> {
    let trace = TraceContext::root().header();
    let key = api_key::issue();
    let hash = api_key::KeyHash::of(&key.secret).to_hex();
    vec![
        (
            "headers",
            "traceparent".into(),
            [b"\x00", trace.as_bytes()].concat(),
        ),
        (
            "headers",
            "bearer".into(),
            format!("\x01Bearer {}", key.secret).into_bytes(),
        ),
        (
            "headers",
            "hash".into(),
            format!("\x01bearer {hash}").into_bytes(),
        ),
        (
            "headers",
            "job-token".into(),
            b"\x02job_0123456789abcdef 0badc0de".to_vec(),
        ),
    ]
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("seeds print")
}

fn messages() -> Vec<Seed> {
    let tenant = TenantId::random();
    let job = JobDescriptor {
        job_id: JobId::random(),
        tenant_id: tenant.clone(),
        request_id: RequestId::random(),
        traceparent: Some(TraceContext::root().header()),
        staging: StagingLocator {
            node: "http://127.0.0.1:9000".into(),
            token: "00ff".into(),
        },
        params: ResizeParams::width(320),
        output: ImageFormat::Webp,
        fast_shrink_on_load: true,
        deadline_unix_ms: 1_800_000_030_000,
        enqueued_unix_ms: 1_800_000_000_000,
    };
    let record = UsageRecord::sample(&tenant, 1_800_000_000_000, 200);
    let t = Tenant {
        id: tenant.clone(),
        name: "Acme".into(),
        rate_limit_rps: 100,
        burst: 200,
        suspended: false,
        created_at: 1_800_000_000,
        updated_at: 1_800_000_000,
        originals_quota: Default::default(),
    };
    let key_id = KeyId::random();
    let signing_key_id = SigningKeyId::random();
    let hash = api_key::KeyHash::of("secret").to_hex();
    let snapshot = Snapshot {
        seq: 2,
        tenants: vec![t.clone()],
        keys: vec![(key_id.clone(), tenant.clone(), hash.clone())],
        signing_keys: vec![(signing_key_id.clone(), tenant.clone(), "sgs_secret".into())],
        flags: Vec::new(),
    };
    let change = |seq, event| Change {
        seq,
        at_ms: 1_800_000_000_000,
        event,
    };
    let page = ChangesPage {
        changes: vec![
            change(
                3,
                ChangeEvent::TenantUpserted {
                    tenant: Tenant { suspended: true, ..t },
                },
            ),
            change(
                4,
                ChangeEvent::KeyCreated {
                    key_id: KeyId::random(),
                    tenant_id: tenant.clone(),
                    hash,
                },
            ),
            change(5, ChangeEvent::KeyRevoked { key_id }),
            change(
                6,
                ChangeEvent::SigningKeyCreated {
                    signing_key_id: SigningKeyId::random(),
                    tenant_id: tenant,
                    secret: "sgs_another".into(),
                },
            ),
            change(7, ChangeEvent::SigningKeyRevoked { signing_key_id }),
        ],
        head: Some(7),
    };
    vec![
        ("job_descriptor", "job".into(), json(&job)),
        ("usage_record", "record".into(), json(&record)),
        (
            "identity_feed",
            "snapshot-changes".into(),
            [json(&snapshot), vec![0], json(&page)].concat(),
        ),
    ]
}

fn storage() -> Vec<Seed> {
    let tenant = TenantId::random();
    let segment: Vec<u8> = [200, 429, 422]
        .iter()
        .flat_map(|&s| encode_line(&UsageRecord::sample(&tenant, 1_800_000_000_000, s)).expect("prints"))
        .collect();
    let listing = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>usage</Name><Prefix>hourly/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><NextContinuationToken>aG91cmx5LzIwMjY</NextContinuationToken><Contents><Key>hourly/2026-11-22T10.parquet</Key><LastModified>2026-11-22T11:00:00.000Z</LastModified><ETag>&quot;8b1a9953c4611296a827abf8c47804d7&quot;</ETag><Size>4096</Size><StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>hourly/2026-11-23/</Prefix></CommonPrefixes></ListBucketResult>"#;
    vec![
        ("usage_segment", "segment".into(), segment),
        (
            "usage_segment",
            "cut".into(),
            [b"\x03\x01\x10", "width=320 é ✓ \n".as_bytes()].concat(),
        ),
        ("s3_listing", "garage".into(), listing.as_bytes().to_vec()),
    ]
}

fn config() -> Vec<Seed> {
    let file = "listen = \"127.0.0.1:8080\"\n[queue]\ncapacity = 64\n[limits]\nmax_output_side = 4096\n";
    let env =
        "RESIZER_QUEUE__NATS_URL=nats://127.0.0.1:4222\nRESIZER_WORKER__THREADS=2\nRESIZER_CLUSTER_SECRET=s";
    vec![
        ("config", "file".into(), file.as_bytes().to_vec()),
        (
            "config",
            "file-env".into(),
            [file.as_bytes(), b"\0", env.as_bytes()].concat(),
        ),
    ]
}
