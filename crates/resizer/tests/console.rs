//! Both consoles in a real browser: headless Chromium (Debian's, driven by
//! Selenium from `scripts/setup.sh`) walks the operator and the tenant
//! console against `resizer serve` (`tests/browser/console_walk.py` says
//! what it does and checks), and the API confirms what the pages claimed.
//! `RESIZER_CONSOLE_SCREENSHOTS=docs/console` keeps the screenshots there.

mod common;

use std::process::Command;

use common::{ADMIN_TOKEN, Options, Server};
use serde_json::Value;

fn tools_python() -> Option<String> {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/tools-dir.sh"))
        .output()
        .ok()?;
    let python = format!("{}/venv/bin/python", String::from_utf8(out.stdout).ok()?.trim());
    let usable = std::path::Path::new("/usr/bin/chromium").exists()
        && Command::new(&python)
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success());
    usable.then_some(python)
}

/// `resizer serve` whose usage reaches the roll-ups within a fraction of a
/// second, so a chart or an audit query sees a request soon after it.
fn fast_usage_server() -> Server {
    let env = [
        ("RESIZER_USAGE__SEGMENT_MAX_AGE_MS", "200"),
        ("RESIZER_USAGE__AGGREGATE_EVERY_MS", "100"),
    ];
    Server::start_with(Options {
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Options::default()
    })
}

#[tokio::test]
async fn test_operator_and_tenant_consoles_in_chromium() {
    let Some(python) = tools_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "scripts/setup.sh installs chromium and selenium; CI needs them"
        );
        eprintln!("skipped: no chromium or selenium; run scripts/setup.sh");
        return;
    };
    let server = fast_usage_server();
    let kept = std::env::var("RESIZER_CONSOLE_SCREENSHOTS").ok();
    let temp = tempfile::tempdir().unwrap();
    let shots = kept.map_or_else(
        || temp.path().to_path_buf(),
        |dir| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(dir)
        },
    );
    // Chromium takes only a canonical path for a file input.
    let image = common::corpus("jpeg-256k/a03_ColorfulCups.jpg")
        .canonicalize()
        .unwrap();
    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/console_walk.py"
        ))
        .args([&server.public, &server.admin, ADMIN_TOKEN])
        .arg(&image)
        .arg(&shots)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    // What the pages showed is what the API says.
    let revoked = seen["revoked"].as_str().unwrap();
    let second = seen["second"].as_str().unwrap();
    assert_eq!(server.auth_status(revoked).await, 401, "revoked in the console");
    assert_eq!(
        server.auth_status(second).await,
        400,
        "the tenant's own new key works"
    );
    let tenant = seen["tenant"].as_str().unwrap();
    let t = server.admin_get(&format!("/admin/v1/tenants/{tenant}")).await;
    assert_eq!(t["name"], "<img src=x onerror=alert(1)>");
    let flags = server.admin_get("/admin/v1/flags").await;
    assert_eq!(flags["flags"][0]["overrides"][tenant], true);
    for page in [
        "operator-tenants",
        "operator-flags",
        "operator-fleet",
        "tenant-usage",
        "tenant-try",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "{page}");
    }
}

async fn get_json(server: &Server, url: &str, token: &str) -> (u16, Value) {
    let resp = server.client.get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What the consoles read, through the API directly: a tenant's audit is its
/// own, the top list ranks tenants, an operator lists a tenant's keys.
#[tokio::test]
async fn test_the_endpoints_behind_the_consoles_show_each_caller_only_its_own() {
    let server = fast_usage_server();
    let (a, key_a) = server.customer().await;
    let (b, key_b) = server.customer().await;
    let photo = common::read_corpus("jpeg-256k/a03_ColorfulCups.jpg");
    for _ in 0..3 {
        assert_eq!(
            server
                .resize(Some(&key_a), "width=64", photo.clone(), None)
                .await
                .status,
            200
        );
    }
    server
        .resize(Some(&key_b), "width=<script>", photo.clone(), None)
        .await
        .assert_error(400, "invalid_parameter");
    let audit = |key: String| {
        let url = format!("{}/v1/audit", server.public);
        let server = &server;
        async move { get_json(server, &url, &key).await }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let records_a = loop {
        let (status, body) = audit(key_a.clone()).await;
        assert_eq!(status, 200, "{body}");
        let records = body["records"].as_array().unwrap().clone();
        if records.len() >= 3 || std::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(records_a.len(), 3);
    assert!(records_a.iter().all(|r| r["tenant_id"] == a.as_str()));
    let (_, body_b) = audit(key_b.clone()).await;
    let records_b = body_b["records"].as_array().unwrap();
    assert!(records_b.iter().all(|r| r["tenant_id"] == b.as_str()), "{body_b}");
    // Another tenant cannot be named, and no key is no audit.
    let (status, body) = get_json(&server, &format!("{}/v1/audit?tenant={a}", server.public), &key_b).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = get_json(&server, &format!("{}/v1/audit", server.public), "rsz_nope").await;
    assert_eq!(status, 401);

    let (status, top) = get_json(
        &server,
        &format!("{}/admin/v1/usage/top?by=requests", server.admin),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{top}");
    assert_eq!(top["tenants"][0]["tenant"], a.as_str(), "{top}");
    assert_eq!(top["tenants"][0]["requests"], 3);
    let (status, _) = get_json(
        &server,
        &format!("{}/admin/v1/usage/top?by=nonsense", server.admin),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get_json(&server, &format!("{}/admin/v1/usage/top", server.admin), &key_a).await;
    assert_eq!(status, 401, "a tenant key is not the admin token");

    let (status, keys) = get_json(
        &server,
        &format!("{}/admin/v1/tenants/{a}/keys", server.admin),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert!(!keys.to_string().contains(&key_a), "never a secret");
    let ghost = resizer_core::ids::TenantId::random();
    let (status, _) = get_json(
        &server,
        &format!("{}/admin/v1/tenants/{ghost}/keys", server.admin),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(status, 404);

    let (status, fleet) = get_json(&server, &format!("{}/admin/v1/fleet", server.admin), ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(fleet["nodes"][0]["name"], "serve");
    assert!(
        fleet["nodes"][0]["metrics"]["requests_total"].as_f64().unwrap() >= 4.0,
        "{fleet}"
    );
}

/// The identity service's fleet view asks the nodes it is given: a live API
/// node shows up and ready with its numbers; one that hangs and one that is
/// gone show down, after a bounded wait, without holding up the answer.
#[tokio::test]
async fn test_the_fleet_view_reports_live_hung_and_gone_nodes_within_its_bound() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let api_port = common::free_port();
    let api_url = format!("http://127.0.0.1:{api_port}");
    let fleet = format!(
        "api-1={api_url},hung=http://{},gone=http://{gone}",
        hole.local_addr().unwrap()
    );
    let identity = Server::start_with(Options {
        role: "identity",
        env: vec![("RESIZER_CONSOLE__FLEET".into(), fleet)],
        ..Options::default()
    });
    let api = Server::start_with(Options {
        role: "api",
        env: vec![("RESIZER_IDENTITY__URL".into(), identity.admin.clone())],
        listen: Some(format!("127.0.0.1:{api_port}")),
        ..Options::default()
    });
    assert_eq!(api.public, api_url, "the API node listens where the fleet says");
    let started = std::time::Instant::now();
    let (status, view) = get_json(
        &identity,
        &format!("{}/admin/v1/fleet", identity.admin),
        ADMIN_TOKEN,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{view}");
    assert!(
        took < std::time::Duration::from_secs(6),
        "the hung node held the answer {took:?}"
    );
    let node = |name: &str| {
        view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {view}"))
            .clone()
    };
    assert_eq!(node("identity")["up"], true);
    let api_node = node("api-1");
    assert_eq!(
        (api_node["up"].clone(), api_node["ready"].clone()),
        (true.into(), true.into()),
        "{api_node}"
    );
    assert!(api_node["metrics"]["requests_total"].is_number(), "{api_node}");
    assert_eq!(node("hung")["up"], false);
    assert!(
        node("hung")["error"].as_str().unwrap().contains("no answer"),
        "{view}"
    );
    assert_eq!(node("gone")["up"], false);
    drop(hole);
}
