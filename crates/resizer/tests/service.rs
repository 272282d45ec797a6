//! The service around the resize: admin API, admin token, health, metrics,
//! graceful drain, and the `resizer resize` batch command.

mod common;

use std::time::Duration;

use common::{ADMIN_TOKEN, Options, Server, decode, read_corpus};
use serde_json::{Value, json};

#[tokio::test]
async fn test_admin_api_validates_and_protects() {
    let server = Server::start();
    let url = |p: &str| format!("{}{p}", server.admin);
    // Token required, compared exactly.
    for token in [None, Some("wrong"), Some("test-admin-token-012345678")] {
        let mut req = server.client.get(url("/admin/v1/tenants"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = common::Reply::from(req.send().await.unwrap()).await;
        r.assert_error(401, "unauthenticated");
    }
    // Defaults and validation.
    let t = server.create_tenant(json!({"name": "acme"})).await;
    assert_eq!(
        (t["rate_limit_rps"].as_u64(), t["burst"].as_u64()),
        (Some(100), Some(200))
    );
    assert_eq!(t["suspended"], false);
    assert!(t["id"].as_str().unwrap().starts_with("ten_"));
    let post = |body: &'static str| {
        server
            .client
            .post(url("/admin/v1/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    common::Reply::from(post("{not json").await.unwrap())
        .await
        .assert_error(400, "invalid_json");
    common::Reply::from(post(r#"{"name":"x","colour":"red"}"#).await.unwrap())
        .await
        .assert_error(400, "invalid_json");
    common::Reply::from(post(r#"{"name":"x","rate_limit_rps":0}"#).await.unwrap())
        .await
        .assert_error(400, "invalid_parameter");
    common::Reply::from(post(r#"{"name":"x","burst":1000001}"#).await.unwrap())
        .await
        .assert_error(400, "invalid_parameter");
    common::Reply::from(post(r#"{"name":""}"#).await.unwrap())
        .await
        .assert_error(400, "invalid_parameter");
    // Unknown ids.
    let (status, body) = server
        .admin_post(
            "/admin/v1/tenants/ten_00000000000000000000000000000000/keys",
            None,
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let r = server
        .client
        .delete(url("/admin/v1/keys/key_00000000000000000000000000000000"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Patch and list.
    let id = t["id"].as_str().unwrap();
    let patched: Value = server
        .client
        .patch(url(&format!("/admin/v1/tenants/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"rate_limit_rps": 7, "burst": 9}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (patched["rate_limit_rps"].as_u64(), patched["burst"].as_u64()),
        (Some(7), Some(9))
    );
    let list = server.admin_get("/admin/v1/tenants").await;
    assert!(list["tenants"].as_array().unwrap().iter().any(|t| t["id"] == id));
    // Admin routes are not on the public port.
    let r = common::Reply::from(
        server
            .client
            .get(format!("{}/admin/v1/tenants", server.public))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(404, "not_found");
    // Key secrets are never logged.
    let (_, secret) = server.create_key(id).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!server.stderr.lock().unwrap().contains(&secret[20..]));
}

/// `method` on `/v1/keys[/{id}]` with `key`.
async fn own_keys(server: &Server, key: &str, method: reqwest::Method, id: Option<&str>) -> common::Reply {
    let url = match id {
        None => format!("{}/v1/keys", server.public),
        Some(id) => format!("{}/v1/keys/{id}", server.public),
    };
    let r = server
        .client
        .request(method, url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    common::Reply::from(r).await
}

#[tokio::test]
async fn test_tenants_manage_their_own_keys_and_only_theirs() {
    use reqwest::Method;
    let server = Server::start();
    let (tenant, first) = server.customer().await;
    let (_, stranger) = server.customer().await;
    let listed = own_keys(&server, &first, Method::GET, None).await.json();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    assert_eq!(listed["keys"][0]["current"], true);
    assert!(listed["keys"][0]["revoked_at"].is_null());
    assert!(
        !listed.to_string().contains(&first),
        "never a secret in a listing"
    );
    let first_id = listed["keys"][0]["key_id"].as_str().unwrap().to_string();

    // A new key, shown once, works at once; the listing holds both, only one current.
    let issued = own_keys(&server, &first, Method::POST, None).await;
    assert_eq!(issued.status, 201);
    let (second, second_id) = (
        issued.json()["secret"].as_str().unwrap().to_string(),
        issued.json()["key_id"].as_str().unwrap().to_string(),
    );
    assert_eq!(issued.json()["tenant_id"], tenant.as_str());
    assert_eq!(
        server.auth_status(&second).await,
        400,
        "authenticated (then refused for no body)"
    );
    let listed = own_keys(&server, &second, Method::GET, None).await.json();
    let current: Vec<_> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["current"] == true)
        .collect();
    assert_eq!((listed["keys"].as_array().unwrap().len(), current.len()), (2, 1));
    assert_eq!(current[0]["key_id"], second_id.as_str());

    // Walls: another tenant's key neither lists nor revokes them; no key revokes itself.
    assert_eq!(
        own_keys(&server, &stranger, Method::GET, None).await.json()["keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    own_keys(&server, &stranger, Method::DELETE, Some(&first_id))
        .await
        .assert_error(404, "not_found");
    own_keys(&server, &first, Method::DELETE, Some(&first_id))
        .await
        .assert_error(400, "invalid_parameter");
    own_keys(&server, &first, Method::DELETE, Some("key_nonsense"))
        .await
        .assert_error(404, "not_found");
    // Rotation: the new key revokes the old one, which is refused from then on.
    assert_eq!(
        own_keys(&server, &second, Method::DELETE, Some(&first_id))
            .await
            .status,
        204
    );
    assert_eq!(server.auth_status(&first).await, 401);
    own_keys(&server, &first, Method::POST, None)
        .await
        .assert_error(401, "unauthenticated");
    let listed = own_keys(&server, &second, Method::GET, None).await.json();
    assert!(listed["keys"][0]["revoked_at"].is_string() || listed["keys"][1]["revoked_at"].is_string());

    // At most 20 live keys issued this way.
    for _ in 0..19 {
        assert_eq!(own_keys(&server, &second, Method::POST, None).await.status, 201);
    }
    own_keys(&server, &second, Method::POST, None)
        .await
        .assert_error(403, "quota_exceeded");
}

#[tokio::test]
async fn test_generated_admin_token_printed_once_and_persisted() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let first = Server::start_with(Options {
        admin_token_env: false,
        data_dir: Some(data_dir.clone()),
        ..Options::default()
    });
    let token = {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let out = first.stdout.lock().unwrap().clone();
            if let Some(line) = out.lines().find(|l| l.starts_with("admin_token=")) {
                break line.trim_start_matches("admin_token=").to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no admin token printed: {out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(
        !first.stderr.lock().unwrap().contains(&token),
        "the token must not be logged"
    );
    drop(first);
    let second = Server::start_with(Options {
        admin_token_env: false,
        data_dir: Some(data_dir),
        ..Options::default()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !second.stdout.lock().unwrap().contains("admin_token="),
        "printed only once"
    );
    let r = second
        .client
        .get(format!("{}/admin/v1/tenants", second.admin))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn test_health_readiness_and_metrics() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let get = |p: &str| server.client.get(format!("{}{p}", server.public)).send();
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    let ready: Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    server
        .resize(Some(&key), "width=80", read_corpus("png/c04_Storm.png"), None)
        .await;
    server
        .resize(Some(&key), "width=80", b"nope".to_vec(), None)
        .await;
    // The Internet sees whether the node is ready, not its detail or its metrics.
    let anonymous: Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(anonymous, serde_json::json!({"status": "ready"}));
    let refused = get("/metrics").await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let (_, detail) = server.readyz().await;
    assert!(detail["auth_cache_seq"].is_number(), "{detail}");
    let text = server.metrics().await;
    for needle in [
        r#"resizer_http_requests_total{route="/v1/resize",status="200"}"#,
        r#"resizer_http_requests_total{route="/v1/resize",status="415"}"#,
        r#"resizer_http_request_duration_seconds_bucket{route="/v1/resize",status="200",le="0.5"}"#,
        "resizer_queue_depth",
        "resizer_queue_expected_wait_seconds",
        "resizer_worker_jobs_in_flight",
        r#"resizer_worker_resize_duration_seconds_bucket{format="png""#,
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[tokio::test]
async fn test_sigterm_drains_in_flight_requests_then_exits_zero() {
    let mut server = Server::start_env(&[("RESIZER_WORKER__THREADS", "1")]);
    let (_, key) = server.customer().await;
    let big = read_corpus("jpeg-1m/b05_Blinds.jpg");
    let in_flight: Vec<_> = (0..3)
        .map(|_| server.spawn_resize(&key, "width=1900&format=png", big.clone()))
        .collect();
    // Long enough for the connections to be accepted, far shorter than the three jobs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for t in in_flight {
        let (r, _) = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(decode(&r.body).width, 1900);
    }
    let exit = tokio::task::spawn_blocking(move || {
        let exit = server.wait_exit(Duration::from_secs(20));
        (exit, server.stderr.lock().unwrap().clone())
    })
    .await
    .unwrap();
    let (exit, log) = exit;
    assert!(exit.is_some_and(|s| s.success()), "exit {exit:?}:\n{log}");
    assert!(log.contains("resizer stopped"));
}

#[test]
fn test_batch_resize_command_writes_one_output_per_input() {
    let out = tempfile::tempdir().unwrap();
    let inputs = [
        common::corpus("jpeg-256k/a07_Kite.jpg"),
        common::corpus("png/c05_ColorfulCups.png"),
        common::corpus("webp/d05_RainDrops.webp"),
    ];
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_resizer"))
        .args([
            "resize",
            "--width",
            "320",
            "--height",
            "320",
            "--threads",
            "2",
            "-o",
        ])
        .arg(out.path())
        .args(&inputs)
        .status()
        .unwrap();
    assert!(status.success());
    // The JPEG is portrait (1200×1600), the others landscape.
    for (name, format, size) in [
        ("a07_Kite.jpg", "jpeg", (240, 320)),
        ("c05_ColorfulCups.png", "png", (320, 240)),
        ("d05_RainDrops.webp", "webp", (320, 240)),
    ] {
        let bytes = std::fs::read(out.path().join(name)).unwrap();
        let d = decode(&bytes);
        assert_eq!(d.format, format);
        assert_eq!((d.width, d.height), size, "{name}");
    }
    // A failing input makes the exit code non-zero but does not stop the others.
    let bad = out.path().join("bad.jpg");
    std::fs::write(&bad, b"not an image").unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_resizer"))
        .args(["resize", "--width", "64", "--format", "webp", "-o"])
        .arg(out.path().join("second"))
        .arg(&bad)
        .arg(&inputs[0])
        .status()
        .unwrap();
    assert!(!status.success());
    assert!(out.path().join("second/a07_Kite.webp").exists());
}

#[test]
fn test_capacity_command_measures_and_does_the_fleet_arithmetic() {
    let given = std::process::Command::new(env!("CARGO_BIN_EXE_resizer"))
        .args([
            "capacity",
            "--target-rps",
            "10000",
            "--headroom",
            "0.2",
            "--per-core",
            "10",
        ])
        .output()
        .unwrap();
    assert!(given.status.success());
    let text = String::from_utf8_lossy(&given.stdout);
    assert!(
        text.contains("cores to provision: 1250; servers of 32 cores: 40"),
        "{text}"
    );
    assert!(text.contains("20000 messages/s"), "{text}");

    let measured = std::process::Command::new(env!("CARGO_BIN_EXE_resizer"))
        .args([
            "capacity",
            "--seconds",
            "0.3",
            "--cores-per-server",
            "16",
            "--corpus",
        ])
        .arg(common::corpus("jpeg-256k"))
        .output()
        .unwrap();
    assert!(
        measured.status.success(),
        "{}",
        String::from_utf8_lossy(&measured.stderr)
    );
    let text = String::from_utf8_lossy(&measured.stdout);
    let per_core: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("conversions per core: "))
        .and_then(|l| l.split('/').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no measured figure in {text}"));
    assert!(per_core > 1.0, "{text}");
    assert!(text.contains("servers of 16 cores"), "{text}");
}
