//! Delivery by URL through the real binary: originals stored by name, signed
//! variant URLs, ETags and 304s, the variant cache, quotas, usage records,
//! `resizer sign`, and the walls between tenants.

mod common;

use std::time::Duration;

use common::{Reply, Server, metric};
use resizer_core::signing::signed_path_and_query;
use serde_json::Value;

const PHOTO: &str = "jpeg-256k/a01_BytheWater.jpg";

async fn get(server: &Server, path_and_query: &str, key: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let mut req = server.client.get(format!("{}{path_and_query}", server.public));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Reply::from(req.send().await.unwrap()).await
}

async fn delete(server: &Server, path: &str, key: &str) -> Reply {
    let r = server
        .client
        .delete(format!("{}{path}", server.public))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    Reply::from(r).await
}

fn signed(secret: &str, tenant: &str, name: &str, params: &[(&str, &str)], exp: Option<u64>) -> String {
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    signed_path_and_query(secret, &format!("/v1/img/{tenant}/{name}"), &pairs, exp)
}

#[tokio::test]
async fn test_originals_are_stored_listed_inspected_and_deleted_by_name() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let jpeg = common::read_corpus(PHOTO);
    let r = server
        .put_original(&key, "photos/2026/cat.jpg", jpeg.clone())
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let meta = r.json();
    assert_eq!(meta["name"], "photos/2026/cat.jpg");
    assert_eq!(meta["bytes"], jpeg.len() as u64);
    assert_eq!(meta["format"], "jpeg");
    let decoded = common::decode(&jpeg);
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(decoded.width.into()), Some(decoded.height.into()))
    );
    let hash = resizer_core::ids::to_hex(&<sha2::Sha256 as sha2::Digest>::digest(&jpeg));
    assert_eq!(meta["content_hash"], hash.as_str());
    assert_eq!(
        r.header("location").as_deref(),
        Some("/v1/originals/photos/2026/cat.jpg")
    );

    for n in ["photos/2026/dog.jpg", "photos/2025/owl.jpg", "misc.jpg"] {
        assert_eq!(server.put_original(&key, n, jpeg.clone()).await.status, 201);
    }
    let got = get(&server, "/v1/originals/photos/2026/cat.jpg", Some(&key), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), meta);
    let head = server
        .client
        .head(format!("{}/v1/originals/photos/2026/cat.jpg", server.public))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);

    let page = get(&server, "/v1/originals?prefix=photos/&limit=2", Some(&key), &[])
        .await
        .json();
    let names: Vec<&str> = page["originals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["photos/2025/owl.jpg", "photos/2026/cat.jpg"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2 = get(
        &server,
        &format!("/v1/originals?prefix=photos/&limit=2&cursor={cursor}"),
        Some(&key),
        &[],
    )
    .await
    .json();
    assert_eq!(page2["originals"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_cursor"], Value::Null);

    assert_eq!(
        delete(&server, "/v1/originals/photos/2026/cat.jpg", &key)
            .await
            .status,
        204
    );
    get(&server, "/v1/originals/photos/2026/cat.jpg", Some(&key), &[])
        .await
        .assert_error(404, "not_found");
    delete(&server, "/v1/originals/photos/2026/cat.jpg", &key)
        .await
        .assert_error(404, "not_found");

    // Names outside the grammar, bodies that are not images, no key.
    server
        .put_original(&key, "a%20b.jpg", jpeg.clone())
        .await
        .assert_error(400, "invalid_parameter");
    server
        .put_original(&key, "a//b.jpg", jpeg.clone())
        .await
        .assert_error(400, "invalid_parameter");
    server
        .put_original(&key, &"n".repeat(256), jpeg.clone())
        .await
        .assert_error(400, "invalid_parameter");
    server
        .put_original(&key, "text.jpg", b"not an image".to_vec())
        .await
        .assert_error(415, "unsupported_format");
    server
        .put_original(&key, "empty.jpg", Vec::new())
        .await
        .assert_error(400, "empty_body");
    get(&server, "/v1/originals", None, &[])
        .await
        .assert_error(401, "unauthenticated");
    get(&server, "/v1/originals?limit=0", Some(&key), &[])
        .await
        .assert_error(400, "invalid_parameter");
}

#[tokio::test]
async fn test_signed_variants_are_made_once_cached_revalidated_and_refused_when_tampered() {
    let server = Server::start();
    let (tenant, key) = server.customer().await;
    let (_, secret) = server.signing_key(&tenant).await;
    let jpeg = common::read_corpus(PHOTO);
    assert_eq!(
        server.put_original(&key, "p/a.jpg", jpeg.clone()).await.status,
        201
    );

    let url = signed(
        &secret,
        &tenant,
        "p/a.jpg",
        &[("width", "320"), ("format", "webp")],
        None,
    );
    let first = get(&server, &url, None, &[]).await;
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    assert_eq!(first.header("content-type").as_deref(), Some("image/webp"));
    assert_eq!(common::decode(&first.body).width, 320);
    let etag = first.header("etag").unwrap();
    assert!(etag.starts_with('"') && etag.len() == 42, "{etag}");
    assert_eq!(
        first.header("cache-control").as_deref(),
        Some("public, max-age=86400, immutable")
    );
    assert_eq!(first.header("vary"), None, "the format was fixed");

    let second = get(&server, &url, None, &[]).await;
    assert_eq!(
        (second.status, &second.body, second.header("etag")),
        (200, &first.body, Some(etag.clone()))
    );
    let not_modified = get(&server, &url, None, &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag").as_deref(), Some(etag.as_str()));
    let metrics = server.metrics().await;
    assert_eq!(
        metric(&metrics, "resizer_variant_cache_requests_total{outcome=\"miss\"}"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "resizer_variant_cache_requests_total{outcome=\"hit\"}"),
        1.0
    );
    assert_eq!(metric(&metrics, "resizer_variant_not_modified_total"), 1.0);
    assert_eq!(
        metric(&metrics, "resizer_worker_jobs_total{outcome=\"succeeded\"}"),
        1.0,
        "one resize for three answers"
    );

    // Tampered, expired, unsigned: refused before any store read or imaging.
    let tampered = url.replace("width=320", "width=321");
    get(&server, &tampered, None, &[])
        .await
        .assert_error(403, "invalid_signature");
    let expired = signed(
        &secret,
        &tenant,
        "p/a.jpg",
        &[("width", "320")],
        Some(1_000_000_000),
    );
    get(&server, &expired, None, &[])
        .await
        .assert_error(403, "invalid_signature");
    let later = resizer_core::time::now_unix_secs() as u64 + 600;
    let expiring = get(
        &server,
        &signed(&secret, &tenant, "p/a.jpg", &[("width", "100")], Some(later)),
        None,
        &[],
    )
    .await;
    assert_eq!(expiring.status, 200);
    let max_age: u64 = expiring
        .header("cache-control")
        .unwrap()
        .split("max-age=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&max_age), "max-age {max_age} follows exp");
    get(&server, &format!("/v1/img/{tenant}/p/a.jpg?width=320"), None, &[])
        .await
        .assert_error(401, "unauthenticated");
    let with_key = get(
        &server,
        &format!("/v1/img/{tenant}/p/a.jpg?width=320&format=webp"),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(with_key.status, 200);
    assert_eq!(
        with_key.header("cache-control").as_deref(),
        Some("private, max-age=86400")
    );
    assert_eq!(
        with_key.header("etag"),
        Some(etag.clone()),
        "same variant, same ETag"
    );
    get(
        &server,
        &signed(&secret, &tenant, "p/none.jpg", &[("width", "320")], None),
        None,
        &[],
    )
    .await
    .assert_error(404, "not_found");

    // format=auto negotiates and says so.
    let auto = signed(
        &secret,
        &tenant,
        "p/a.jpg",
        &[("width", "200"), ("format", "auto")],
        None,
    );
    let avif = get(&server, &auto, None, &[("accept", "image/avif,image/webp,*/*")]).await;
    assert_eq!(avif.header("content-type").as_deref(), Some("image/avif"));
    assert_eq!(avif.header("vary").as_deref(), Some("accept"));
    let plain = get(&server, &auto, None, &[("accept", "*/*")]).await;
    assert_eq!(plain.header("content-type").as_deref(), Some("image/jpeg"));
    assert_ne!(avif.header("etag"), plain.header("etag"));

    // Replacing the original changes every ETag at once; deleting it ends its variants.
    let png = common::make_png_rgba(64, 48, &[200; 64 * 48 * 4]);
    assert_eq!(server.put_original(&key, "p/a.jpg", png).await.status, 201);
    let replaced = get(&server, &url, None, &[("if-none-match", &etag)]).await;
    assert_eq!(replaced.status, 200);
    assert_ne!(replaced.header("etag"), Some(etag.clone()));
    let d = common::decode(&replaced.body);
    assert_eq!((d.width, d.height), (64, 48), "the new original, not enlarged");
    assert_eq!(delete(&server, "/v1/originals/p/a.jpg", &key).await.status, 204);
    get(&server, &url, None, &[]).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn test_tenants_reach_only_their_own_originals_signatures_and_cache_entries() {
    let server = Server::start();
    let (a, key_a) = server.customer().await;
    let (b, key_b) = server.customer().await;
    let (_, secret_a) = server.signing_key(&a).await;
    let (_, secret_b) = server.signing_key(&b).await;
    let jpeg = common::read_corpus(PHOTO);
    // The same name and the same bytes in both tenants: the same ETag, two cache entries.
    for key in [&key_a, &key_b] {
        assert_eq!(
            server.put_original(key, "same.jpg", jpeg.clone()).await.status,
            201
        );
    }
    let params = [("width", "160")];
    assert_eq!(
        get(
            &server,
            &signed(&secret_a, &a, "same.jpg", &params, None),
            None,
            &[]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(
            &server,
            &signed(&secret_a, &a, "same.jpg", &params, None),
            None,
            &[]
        )
        .await
        .status,
        200
    );
    // B's key signs only B's paths; B's bearer key opens only B's.
    get(
        &server,
        &signed(&secret_b, &a, "same.jpg", &params, None),
        None,
        &[],
    )
    .await
    .assert_error(403, "invalid_signature");
    get(
        &server,
        &format!("/v1/img/{a}/same.jpg?width=160"),
        Some(&key_b),
        &[],
    )
    .await
    .assert_error(403, "invalid_signature");
    let before = metric(
        &server.metrics().await,
        "resizer_variant_cache_requests_total{outcome=\"hit\"}",
    );
    assert_eq!(
        get(
            &server,
            &signed(&secret_b, &b, "same.jpg", &params, None),
            None,
            &[]
        )
        .await
        .status,
        200
    );
    let after = metric(
        &server.metrics().await,
        "resizer_variant_cache_requests_total{outcome=\"hit\"}",
    );
    assert_eq!(before, after, "B's first request is a miss, never A's entry");
    // B cannot read, list or delete A's originals, nor revoke A's signing keys.
    assert_eq!(
        delete(&server, "/v1/originals/same.jpg", &key_b).await.status,
        204
    );
    get(&server, "/v1/originals/same.jpg", Some(&key_b), &[])
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        get(&server, "/v1/originals/same.jpg", Some(&key_a), &[])
            .await
            .status,
        200
    );
    assert!(
        get(&server, "/v1/originals", Some(&key_b), &[]).await.json()["originals"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let own = server
        .client
        .post(format!("{}/v1/signing-keys", server.public))
        .bearer_auth(&key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);
    let own: Value = own.json().await.unwrap();
    let sk_a = own["signing_key_id"].as_str().unwrap();
    delete(&server, &format!("/v1/signing-keys/{sk_a}"), &key_b)
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        delete(&server, &format!("/v1/signing-keys/{sk_a}"), &key_a)
            .await
            .status,
        204
    );
    // A revoked signing key stops working.
    let url = signed(own["secret"].as_str().unwrap(), &a, "same.jpg", &params, None);
    get(&server, &url, None, &[])
        .await
        .assert_error(403, "invalid_signature");
}

#[tokio::test]
async fn test_quotas_refuse_uploads_past_a_tenants_count_or_bytes() {
    let server = Server::start_env(&[
        ("RESIZER_DELIVERY__MAX_ORIGINALS_PER_TENANT", "2"),
        ("RESIZER_DELIVERY__MAX_BYTES_PER_TENANT", "800000"),
    ]);
    let (_, key) = server.customer().await;
    let (_, other) = server.customer().await;
    let jpeg = common::read_corpus(PHOTO);
    assert!(jpeg.len() > 270_000 && jpeg.len() < 400_000, "{}", jpeg.len());
    assert_eq!(server.put_original(&key, "1.jpg", jpeg.clone()).await.status, 201);
    assert_eq!(server.put_original(&key, "2.jpg", jpeg.clone()).await.status, 201);
    server
        .put_original(&key, "3.jpg", jpeg.clone())
        .await
        .assert_error(403, "quota_exceeded");
    assert_eq!(
        server.put_original(&key, "2.jpg", jpeg.clone()).await.status,
        201,
        "replacing is not adding"
    );
    assert_eq!(
        server.put_original(&other, "1.jpg", jpeg.clone()).await.status,
        201,
        "quotas are per tenant"
    );
    let big = [jpeg.clone(), jpeg.clone(), jpeg.clone()].concat();
    server
        .put_original(&other, "big.jpg", big.clone())
        .await
        .assert_error(403, "quota_exceeded");

    // A tenant's own setting replaces the deployment's, field by field, at once.
    let (generous, key) = server.customer().await;
    let set = |quota: Value| {
        let url = format!("{}/admin/v1/tenants/{generous}", server.admin);
        let req = server.client.patch(url).bearer_auth(common::ADMIN_TOKEN);
        async move {
            Reply::from(
                req.json(&serde_json::json!({ "originals_quota": quota }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let r = set(serde_json::json!({"max_bytes": 5_000_000, "max_count": 3})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["originals_quota"]["max_count"], 3);
    assert_eq!(server.put_original(&key, "big.jpg", big).await.status, 201);
    for name in ["2.jpg", "3.jpg"] {
        assert_eq!(server.put_original(&key, name, jpeg.clone()).await.status, 201);
    }
    server
        .put_original(&key, "4.jpg", jpeg.clone())
        .await
        .assert_error(403, "quota_exceeded");
    // No originals at all, not even a replacement; `null` bytes is the deployment's 800,000 again.
    let r = set(serde_json::json!({"max_bytes": null, "max_count": 0})).await;
    assert!(r.json()["originals_quota"]["max_bytes"].is_null());
    server
        .put_original(&key, "2.jpg", jpeg.clone())
        .await
        .assert_error(403, "quota_exceeded");
    set(serde_json::json!({"max_count": -1}))
        .await
        .assert_error(400, "invalid_json");
    set(serde_json::json!({"max_count": 2_000_000_000_u64}))
        .await
        .assert_error(400, "invalid_parameter");
}

#[tokio::test]
async fn test_deliveries_are_metered_with_the_signing_key_and_sign_makes_working_urls() {
    let server = Server::start();
    let (tenant, key) = server.customer().await;
    let (sk, secret) = server.signing_key(&tenant).await;
    assert_eq!(
        server
            .put_original(&key, "m.jpg", common::read_corpus(PHOTO))
            .await
            .status,
        201
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resizer"))
        .args([
            "sign",
            "--base-url",
            &server.public,
            "--tenant",
            &tenant,
            "--name",
            "m.jpg",
            "--expires-in",
            "300",
            "width=120",
            "format=png",
        ])
        .env("RESIZER_SIGNING_SECRET", &secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    let path = url.trim().strip_prefix(&server.public).unwrap().to_string();
    for _ in 0..2 {
        let r = get(&server, &path, None, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(common::decode(&r.body).width, 120);
    }
    // Both deliveries are in the tenant's usage log, billed to the signing key; the hit used no CPU.
    let records = wait_for_records(&server, &tenant, "GET /v1/img", 2).await;
    assert!(
        records
            .iter()
            .all(|r| r["key_id"] == sk.as_str() && r["tenant_id"] == tenant.as_str())
    );
    assert!(
        records
            .iter()
            .all(|r| r["output_width"] == 120 && r["output_format"] == "png")
    );
    let cpu: Vec<u64> = records
        .iter()
        .map(|r| r["cpu_micros"].as_u64().unwrap())
        .collect();
    assert!(cpu.contains(&0) && cpu.iter().any(|&c| c > 0), "{cpu:?}");
    let mut cache: Vec<&str> = records.iter().map(|r| r["cache"].as_str().unwrap()).collect();
    cache.sort();
    assert_eq!(cache, ["hit", "miss"]);
    let hit = records.iter().find(|r| r["cache"] == "hit").unwrap();
    assert_eq!(
        (hit["cpu_micros"].as_u64(), &hit["worker"]),
        (Some(0), &Value::Null)
    );
}

#[tokio::test]
async fn test_stored_bytes_reach_the_usage_roll_ups_per_tenant_per_hour() {
    let server = Server::start_env(&[("RESIZER_USAGE__STORAGE_SAMPLE_MS", "100")]);
    let (_, key) = server.customer().await;
    let (_, other) = server.customer().await;
    let jpeg = common::read_corpus(PHOTO);
    let png = common::make_png_rgba(2, 2, &[7; 16]);
    for (k, name, body) in [
        (&key, "a.jpg", &jpeg),
        (&key, "b.png", &png),
        (&other, "c.jpg", &jpeg),
    ] {
        assert_eq!(server.put_original(k, name, body.clone()).await.status, 201);
    }
    let mine = (jpeg.len() + png.len()) as u64;
    let hours = wait_for_storage(&server, &key, mine).await;
    assert!(hours.iter().all(|b| b["stored_originals"].as_u64() <= Some(2)));
    // The other tenant's bill holds its own bytes only.
    let theirs = wait_for_storage(&server, &other, jpeg.len() as u64).await;
    assert!(
        theirs
            .iter()
            .all(|b| b["stored_bytes"].as_u64() <= Some(jpeg.len() as u64))
    );
    // An hour keeps its peak after a delete; a day sums its hours' peaks as byte-hours.
    assert_eq!(delete(&server, "/v1/originals/a.jpg", &key).await.status, 204);
    let (from, to) = window();
    let days = usage(&server, &key, &format!("from={from}&to={to}&bucket=day")).await;
    let hourly_sum: u64 = usage(&server, &key, &format!("from={from}&to={to}"))
        .await
        .iter()
        .map(|b| b["stored_bytes"].as_u64().unwrap())
        .sum();
    let day_sum: u64 = days
        .iter()
        .map(|b| b["stored_byte_hours"].as_u64().unwrap())
        .sum();
    assert_eq!(day_sum, hourly_sum);
    assert!(day_sum >= mine, "{days:?}");
}

/// A slice of a few hours around now, as `/v1/usage` takes it.
fn window() -> (String, String) {
    let now = resizer_core::time::now_unix_secs();
    let at = resizer_core::time::rfc3339;
    (at(now - 3 * 3600), at(now + 3600))
}

async fn usage(server: &Server, key: &str, query: &str) -> Vec<Value> {
    let r = get(server, &format!("/v1/usage?{query}"), Some(key), &[]).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["buckets"].as_array().cloned().unwrap_or_default()
}

/// The tenant's hourly buckets once one of them shows `bytes` stored.
async fn wait_for_storage(server: &Server, key: &str, bytes: u64) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (from, to) = window();
        let hours = usage(server, key, &format!("from={from}&to={to}")).await;
        if hours.iter().any(|b| b["stored_bytes"].as_u64() == Some(bytes)) {
            return hours;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no hour stores {bytes} bytes: {hours:?}"
        );
        // Within the tenant's usage-query budget (5/s).
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The tenant's audit records of `route` (through the admin API), once there are `n`.
async fn wait_for_records(server: &Server, tenant: &str, route: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let audit = server
            .admin_get(&format!("/admin/v1/audit?tenant={tenant}"))
            .await;
        let out: Vec<Value> = audit["records"]
            .as_array()
            .map(|r| r.iter().filter(|r| r["route"] == route).cloned().collect())
            .unwrap_or_default();
        if out.len() >= n || std::time::Instant::now() > deadline {
            assert_eq!(out.len(), n, "records of {route}: {audit}");
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `request` as raw bytes (no client normalises its path) and returns the status line's code.
fn raw_status(addr: &str, request: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 64];
    let n = s.read(&mut head).unwrap();
    let line = String::from_utf8_lossy(&head[..n]).to_string();
    line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn test_hostile_uploads_and_paths_are_refused_and_store_nothing() {
    let server = Server::start();
    let (tenant, key) = server.customer().await;
    // A header claiming 60000×60000: refused from the header, nothing stored.
    let bomb = common::png_header_bomb(60_000, 60_000);
    server
        .put_original(&key, "bomb.png", bomb)
        .await
        .assert_error(422, "too_many_pixels");
    // Traversal as the client sent it, encoded or not: refused before any store call.
    let host = server.public.trim_start_matches("http://").to_string();
    for path in [
        "/v1/originals/..%2Fx".to_string(),
        "/v1/originals/a/../b".to_string(),
        format!("/v1/img/{tenant}/../x?width=10"),
        format!("/v1/img/{tenant}/..%2F..%2Ften_00000000000000000000000000000000%2Fx?width=10"),
    ] {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(raw_status(&server.public, &req), 400, "{path}");
    }
    get(
        &server,
        &format!("/v1/img/{tenant}/x?width=10&sig=a&sig=b"),
        None,
        &[],
    )
    .await
    .assert_error(400, "invalid_parameter");
    // A body trickling in far below the listener's minimum rate: 408, its slot freed.
    let slow = format!(
        "PUT /v1/originals/slow.jpg HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nContent-Length: 100000\r\n\r\n"
    );
    let public = server.public.clone();
    let status = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(public.trim_start_matches("http://")).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
        s.write_all(slow.as_bytes()).unwrap();
        let mut head = [0u8; 64];
        for _ in 0..50 {
            if s.write_all(b"x").is_err() {
                break;
            }
            if let Ok(n) = s.read(&mut head)
                && n > 0
            {
                return String::from_utf8_lossy(&head[..n]).to_string();
            }
        }
        String::new()
    })
    .await
    .unwrap();
    assert!(status.starts_with("HTTP/1.1 408"), "{status:?}");
    let listed = get(&server, "/v1/originals", Some(&key), &[]).await.json();
    assert!(listed["originals"].as_array().unwrap().is_empty(), "{listed}");
}
