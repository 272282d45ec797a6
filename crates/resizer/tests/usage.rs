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
