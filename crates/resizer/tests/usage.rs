//! Usage metering end to end through the real binary: every request with a
//! valid key leaves exactly one record in the node's local usage log before it
//! is answered, whatever its status; requests without a valid key leave none;
//! records survive `kill -9`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{ADMIN_TOKEN, Server};
use serde_json::{Value, json};

/// Every record in the node's usage log, open and closed segments alike.
fn logged_records(data_dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for sub in ["open", "ready"] {
        let Ok(entries) = std::fs::read_dir(data_dir.join("usage").join(sub)) else {
            continue;
        };
        for entry in entries {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in text.lines().filter(|l| !l.is_empty()) {
                out.push(serde_json::from_str(line).expect("a complete JSON record per line"));
            }
        }
    }
    out
}

#[tokio::test]
async fn test_every_metered_request_is_logged_before_its_answer_and_survives_kill9() {
    let mut server = Server::start();
    let (tenant, key) = server.customer().await;
    let (other_tenant, other_key) = server.customer().await;
    let jpeg = common::read_corpus("jpeg-256k/a01_BytheWater.jpg");

    let mut seen: BTreeMap<u16, u64> = BTreeMap::new();
    let mut count = |status: u16| *seen.entry(status).or_default() += 1;
    for width in [100, 200, 300] {
        let r = server
            .resize(Some(&key), &format!("width={width}"), jpeg.clone(), None)
            .await;
        assert_eq!(r.status, 200);
        count(200);
    }
    let r = server.resize(Some(&key), "width=0", jpeg.clone(), None).await;
    r.assert_error(400, "invalid_parameter");
    count(400);
    let r = server
        .resize(Some(&key), "width=10", b"not an image".to_vec(), None)
        .await;
    r.assert_error(415, "unsupported_format");
    count(415);
    // Not metered: no key, a wrong key.
    server
        .resize(None, "width=10", jpeg.clone(), None)
        .await
        .assert_error(401, "unauthenticated");
    server
        .resize(Some("rsz_nope_nope"), "width=10", jpeg.clone(), None)
        .await
        .assert_error(401, "unauthenticated");
    // Metered: a suspended tenant's valid key.
    server
        .client
        .patch(format!("{}/admin/v1/tenants/{tenant}", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"suspended": true}))
        .send()
        .await
        .unwrap();
    server
        .resize(Some(&key), "width=10", jpeg.clone(), None)
        .await
        .assert_error(403, "tenant_suspended");
    count(403);
    // Another tenant's request goes to its own records.
    assert_eq!(
        server
            .resize(Some(&other_key), "width=50", jpeg.clone(), None)
            .await
            .status,
        200
    );

    // kill -9 right after the last answer: what was answered was already written.
    server.kill9();
    let records = logged_records(&server.data_dir);
    let mine: Vec<&Value> = records
        .iter()
        .filter(|r| r["tenant_id"] == tenant.as_str())
        .collect();
    let mut logged: BTreeMap<u16, u64> = BTreeMap::new();
    for r in &mine {
        *logged.entry(r["status"].as_u64().unwrap() as u16).or_default() += 1;
    }
    assert_eq!(logged, seen, "records by status for the tenant");
    let theirs: Vec<&Value> = records
        .iter()
        .filter(|r| r["tenant_id"] == other_tenant.as_str())
        .collect();
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        records.len(),
        mine.len() + 1,
        "only metered requests are recorded"
    );

    // A success carries every dimension the bill needs.
    let ok = mine
        .iter()
        .find(|r| r["status"] == 200 && r["params"] == "width=300")
        .unwrap();
    assert_eq!(ok["route"], "POST /v1/resize");
    assert_eq!(ok["input_format"], "jpeg");
    assert_eq!(ok["input_bytes"].as_u64().unwrap(), jpeg.len() as u64);
    assert!(ok["input_width"].as_u64().unwrap() > 300);
    assert_eq!(ok["output_width"], 300);
    assert!(ok["output_bytes"].as_u64().unwrap() > 0);
    assert!(ok["cpu_micros"].as_u64().unwrap() > 0, "{ok}");
    assert!(ok["worker"].is_string());
    assert!(ok["key_id"].as_str().unwrap().starts_with("key_"));
    assert!(ok["record_id"].as_str().unwrap().starts_with("rec_"));
    let (received, queued, started, finished) = (
        ok["received_unix_ms"].as_u64().unwrap(),
        ok["queued_unix_ms"].as_u64().unwrap(),
        ok["started_unix_ms"].as_u64().unwrap(),
        ok["finished_unix_ms"].as_u64().unwrap(),
    );
    assert!(
        received <= queued && queued <= started && started <= finished,
        "{ok}"
    );
    // A refusal before any decode has no output and no CPU.
    let refused = mine.iter().find(|r| r["status"] == 415).unwrap();
    assert_eq!(refused["output_bytes"], 0);
    assert_eq!(refused["cpu_micros"], 0);
    assert!(refused["worker"].is_null());
}

/// Settings that make the pipeline from log to roll-up fast enough to wait for.
fn quick_usage_env() -> Vec<(String, String)> {
    [
        ("RESIZER_USAGE__SEGMENT_MAX_AGE_MS", "200"),
        ("RESIZER_USAGE__AGGREGATE_EVERY_MS", "100"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn get_json(server: &Server, url: String, token: &str) -> (u16, Value) {
    let resp = server.client.get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Sums a counter over all buckets of a usage answer.
fn total(v: &Value, field: &str) -> u64 {
    v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[field].as_u64().unwrap())
        .sum()
}

/// Sends `n` requests for a tenant, some of them bad; returns (200s, others).
async fn traffic(server: &Server, key: &str, n: usize, jpeg: &[u8]) -> (u64, u64) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let query = if i % 5 == 4 {
                "width=0".to_string()
            } else {
                format!("width={}", 40 + i)
            };
            server.spawn_resize(key, &query, jpeg.to_vec())
        })
        .collect();
    let (mut ok, mut other) = (0, 0);
    for t in tasks {
        let (reply, _) = t.await.unwrap();
        if reply.status == 200 { ok += 1 } else { other += 1 }
    }
    (ok, other)
}

#[tokio::test]
async fn test_rollup_equals_answers_per_tenant_across_kill9_and_tenants_never_see_each_other() {
    let data = tempfile::tempdir().unwrap();
    let options = || common::Options {
        env: quick_usage_env(),
        data_dir: Some(data.path().join("data")),
        ..common::Options::default()
    };
    let mut server = Server::start_with(options());
    let (tenant_a, key_a) = server.customer().await;
    let (tenant_b, key_b) = server.customer().await;
    let jpeg = common::read_corpus("jpeg-256k/a02_ColdRipple.jpg");

    let (ok_a1, bad_a1) = traffic(&server, &key_a, 30, &jpeg).await;
    let (ok_b1, bad_b1) = traffic(&server, &key_b, 10, &jpeg).await;
    // kill -9 with records still in the open segment: they were written before their answers.
    server.kill9();
    let server = Server::start_with(options());
    let (ok_a2, bad_a2) = traffic(&server, &key_a, 20, &jpeg).await;
    let (ok_a, bad_a) = (ok_a1 + ok_a2, bad_a1 + bad_a2);
    let (ok_b, bad_b) = (ok_b1, bad_b1);

    // Eventually consistent: wait (bounded) for the roll-up to catch up, then compare exactly.
    let started = std::time::Instant::now();
    let own_a = loop {
        let (status, v) = get_json(&server, format!("{}/v1/usage", server.public), &key_a).await;
        assert_eq!(status, 200, "{v}");
        if total(&v, "requests") >= ok_a + bad_a || started.elapsed() > std::time::Duration::from_secs(20) {
            break v;
        }
        // Under the usage queries' own limit (5/s per tenant and node).
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(own_a["tenant"], tenant_a.as_str());
    assert_eq!(total(&own_a, "succeeded"), ok_a, "{own_a}");
    assert_eq!(total(&own_a, "failed"), bad_a, "{own_a}");
    assert_eq!(total(&own_a, "requests"), ok_a + bad_a);
    // Refusals (bad parameters, the per-tenant cap) come before the body is read.
    assert_eq!(total(&own_a, "bytes_in"), ok_a * jpeg.len() as u64);
    assert!(total(&own_a, "pixels_out") > 0 && total(&own_a, "bytes_out") > 0);

    // The admin sees B's usage; B's key sees only B's.
    let (_, admin_b) = get_json(
        &server,
        format!("{}/admin/v1/usage?tenant={tenant_b}&bucket=day", server.admin),
        common::ADMIN_TOKEN,
    )
    .await;
    assert_eq!(total(&admin_b, "succeeded"), ok_b, "{admin_b}");
    assert_eq!(total(&admin_b, "failed"), bad_b);
    let (_, own_b) = get_json(&server, format!("{}/v1/usage", server.public), &key_b).await;
    assert_eq!(own_b["tenant"], tenant_b.as_str());
    assert_eq!(total(&own_b, "requests"), ok_b + bad_b);
    // A key cannot ask for another tenant.
    let (status, _) = get_json(
        &server,
        format!("{}/v1/usage?tenant={tenant_b}", server.public),
        &key_a,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get_json(&server, format!("{}/v1/usage", server.public), "rsz_nope").await;
    assert_eq!(status, 401);
    // Usage queries have their own budget (not the resize rate): a burst past it is
    // refused with 429, the JSON error and Retry-After.
    let mut refused = None;
    for _ in 0..15 {
        let r = server
            .client
            .get(format!("{}/v1/usage", server.public))
            .bearer_auth(&key_b)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            refused = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        assert_eq!(r.status().as_u16(), 200);
    }
    let refused = refused.expect("a burst of 15 usage queries passes the 5/s limit");
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");

    // Audit: A's raw records, all of them, none of B's.
    let (status, audit) = get_json(
        &server,
        format!("{}/admin/v1/audit?tenant={tenant_a}", server.admin),
        common::ADMIN_TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len() as u64, ok_a + bad_a);
    assert!(records.iter().all(|r| r["tenant_id"] == tenant_a.as_str()));
    let ids: std::collections::HashSet<&str> =
        records.iter().map(|r| r["record_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), records.len(), "no record counted twice");
    // The archive is Parquet with zstd, readable by a generic Parquet reader: every
    // metered request of both tenants is there once.
    let mut rows = 0;
    let partitions = std::fs::read_dir(data.path().join("data/usage/archive/usage")).unwrap();
    for partition in partitions {
        let partition = partition.unwrap().path();
        assert!(
            partition
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("date=")
        );
        for file in std::fs::read_dir(&partition).unwrap() {
            use parquet::file::reader::FileReader;
            let file = std::fs::File::open(file.unwrap().path()).unwrap();
            let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            let meta = reader.metadata();
            rows += meta.file_metadata().num_rows();
            let column = meta.row_group(0).column(0);
            assert!(matches!(
                column.compression(),
                parquet::basic::Compression::ZSTD(_)
            ));
        }
    }
    assert_eq!(rows as u64, ok_a + bad_a + ok_b + bad_b);

    // Bad slices are refused.
    let (status, _) = get_json(
        &server,
        format!("{}/admin/v1/usage?tenant={tenant_a}&bucket=week", server.admin),
        common::ADMIN_TOKEN,
    )
    .await;
    assert_eq!(status, 400);
}
