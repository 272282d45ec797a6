//! The identity split, for real: `resizer identity` on PostgreSQL, two
//! `resizer api` nodes following its change feed, and the partial-availability
//! cases (management plane down, API node restarted during the outage).

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Options, Server, read_corpus};
use serde_json::{Value, json};

fn identity(db: &str, admin_listen: Option<String>, data_dir: Option<std::path::PathBuf>) -> Server {
    Server::start_with(Options {
        role: "identity",
        env: vec![("RESIZER_IDENTITY__DATABASE_URL".into(), db.into())],
        admin_listen,
        data_dir,
        ..Options::default()
    })
}

fn api(identity_url: &str, data_dir: Option<std::path::PathBuf>) -> Server {
    Server::start_with(Options {
        role: "api",
        env: vec![("RESIZER_IDENTITY__URL".into(), identity_url.into())],
        data_dir,
        ..Options::default()
    })
}

async fn wait_ready(node: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = node.readyz().await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "api node not ready: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until every node answers `want` for `key`; returns the time it took.
async fn until_all(nodes: &[&Server], key: &str, want: u16, within: Duration) -> Duration {
    let started = Instant::now();
    for node in nodes {
        loop {
            let status = node.auth_status(key).await;
            if status == want {
                break;
            }
            assert!(
                started.elapsed() < within,
                "node {} still answers {status}, not {want}, after {:?}; its log:\n{}",
                node.public,
                started.elapsed(),
                node.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    started.elapsed()
}

async fn admin_patch(server: &Server, path: &str, body: Value) -> u16 {
    server
        .client
        .patch(format!("{}{path}", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin_delete(server: &Server, path: &str) -> u16 {
    server
        .client
        .delete(format!("{}{path}", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

const SLA: Duration = Duration::from_secs(1);

#[tokio::test]
async fn test_changes_reach_every_api_node_within_a_second() {
    let Some(db) = resizer_testing::fresh_database("resizer_it").await else {
        return;
    };
    let idp = identity(&db, None, None);
    let (a, b) = (api(&idp.admin, None), api(&idp.admin, None));
    wait_ready(&a).await;
    wait_ready(&b).await;

    let tenant = idp
        .create_tenant(json!({"name": "acme", "rate_limit_rps": 1000}))
        .await;
    let tenant_id = tenant["id"].as_str().unwrap();
    let (key_id, key) = idp.create_key(tenant_id).await;
    until_all(&[&a, &b], &key, 400, SLA).await;
    for node in [&a, &b] {
        let r = node
            .resize(Some(&key), "width=64", read_corpus("webp/d01_Grey.webp"), None)
            .await;
        assert_eq!(r.status, 200);
    }

    // Revocation: refused on both within the SLA, and never again.
    assert_eq!(admin_delete(&idp, &format!("/admin/v1/keys/{key_id}")).await, 204);
    until_all(&[&a, &b], &key, 401, SLA).await;

    // Suspension: 403 on both.
    let (_, key2) = idp.create_key(tenant_id).await;
    until_all(&[&a, &b], &key2, 400, SLA).await;
    assert_eq!(
        admin_patch(
            &idp,
            &format!("/admin/v1/tenants/{tenant_id}"),
            json!({"suspended": true})
        )
        .await,
        200
    );
    until_all(&[&a, &b], &key2, 403, SLA).await;
    assert_eq!(a.auth_status(&key).await, 401, "a revoked key stays revoked");

    // The feed is not open without the cluster secret, and admin needs the admin token.
    let r = idp
        .client
        .get(format!("{}/internal/v1/identity/snapshot", idp.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = idp
        .client
        .get(format!("{}/internal/v1/identity/snapshot", idp.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A malformed feed query is a JSON 400, like every other refusal.
    let r = common::Reply::from(
        idp.client
            .get(format!("{}/internal/v1/identity/changes?after=abc", idp.admin))
            .bearer_auth(common::CLUSTER_SECRET)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(400, "invalid_parameter");
    // API nodes serve no admin routes.
    let r = a
        .client
        .get(format!("{}/admin/v1/tenants", a.public))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// `POST /v1/signing-keys` (or `DELETE …/{id}`) on an API node with `key`.
async fn own_signing_key(node: &Server, key: &str, revoke: Option<&str>) -> common::Reply {
    let url = format!("{}/v1/signing-keys", node.public);
    let request = match revoke {
        None => node.client.post(url),
        Some(id) => node.client.delete(format!("{url}/{id}")),
    };
    common::Reply::from(request.bearer_auth(key).send().await.unwrap()).await
}

#[tokio::test]
async fn test_tenants_manage_their_keys_and_signing_keys_through_any_api_node() {
    let Some(db) = resizer_testing::fresh_database("resizer_it").await else {
        return;
    };
    let mut idp = identity(&db, None, None);
    let (a, b) = (api(&idp.admin, None), api(&idp.admin, None));
    wait_ready(&a).await;
    wait_ready(&b).await;
    let tenant = |name: &str| json!({"name": name, "rate_limit_rps": 1000});
    let mine = idp.create_tenant(tenant("mine")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = idp.create_tenant(tenant("theirs")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (my_key_id, my_key) = idp.create_key(&mine).await;
    let (_, their_key) = idp.create_key(&theirs).await;
    until_all(&[&a, &b], &my_key, 400, SLA).await;
    until_all(&[&a, &b], &their_key, 400, SLA).await;

    // Issued through either node, for the caller's tenant, counted by the one authority.
    let mut ids = Vec::new();
    for node in [&a, &b, &a, &b, &a] {
        let r = own_signing_key(node, &my_key, None).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["tenant_id"], mine.as_str());
        assert!(r.json()["secret"].as_str().unwrap().starts_with("sgs_"));
        ids.push(r.json()["signing_key_id"].as_str().unwrap().to_string());
    }
    own_signing_key(&b, &my_key, None)
        .await
        .assert_error(403, "quota_exceeded");
    // Another tenant can neither see nor revoke them.
    own_signing_key(&a, &their_key, Some(&ids[0]))
        .await
        .assert_error(404, "not_found");
    assert_eq!(own_signing_key(&b, &my_key, Some(&ids[0])).await.status, 204);
    assert_eq!(
        own_signing_key(&a, &my_key, Some(&ids[0])).await.status,
        204,
        "idempotent"
    );
    let unknown = "sgk_00000000000000000000000000000000";
    own_signing_key(&a, &my_key, Some(unknown))
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        own_signing_key(&a, &their_key, None).await.json()["tenant_id"],
        theirs.as_str()
    );

    // The internal route wants the cluster secret and a live tenant key, checked by the identity service.
    let internal = format!("{}/internal/v1/identity/signing-keys", idp.admin);
    let status = |r: reqwest::Response| r.status().as_u16();
    let bare = idp.client.post(&internal).header("x-resizer-tenant-key", &my_key);
    assert_eq!(status(bare.send().await.unwrap()), 401, "no cluster secret");
    let no_key = idp.client.post(&internal).bearer_auth(common::CLUSTER_SECRET);
    assert_eq!(status(no_key.send().await.unwrap()), 401, "no tenant key");
    let admin = idp
        .client
        .post(&internal)
        .bearer_auth(ADMIN_TOKEN)
        .header("x-resizer-tenant-key", &my_key);
    assert_eq!(
        status(admin.send().await.unwrap()),
        401,
        "the admin token is not the cluster secret"
    );

    // API keys the same way: issued on one node, working on both, listed and revoked through either.
    let keys = |node: &Server, key: &str, method: reqwest::Method, id: Option<&str>| {
        let url = format!(
            "{}/v1/keys{}",
            node.public,
            id.map(|i| format!("/{i}")).unwrap_or_default()
        );
        let req = node.client.request(method, url).bearer_auth(key);
        async move { common::Reply::from(req.send().await.unwrap()).await }
    };
    let issued = keys(&a, &my_key, reqwest::Method::POST, None).await;
    assert_eq!(issued.status, 201, "{}", String::from_utf8_lossy(&issued.body));
    let second = issued.json()["secret"].as_str().unwrap().to_string();
    until_all(&[&a, &b], &second, 400, SLA).await;
    let third = keys(&b, &second, reqwest::Method::POST, None).await.json();
    let third_id = third["key_id"].as_str().unwrap();
    let listed = keys(&b, &second, reqwest::Method::GET, None).await.json();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 3);
    keys(&a, &their_key, reqwest::Method::DELETE, Some(third_id))
        .await
        .assert_error(404, "not_found");
    let second_id = issued.json()["key_id"].as_str().unwrap().to_string();
    keys(&a, &second, reqwest::Method::DELETE, Some(&second_id))
        .await
        .assert_error(400, "invalid_parameter");
    assert_eq!(
        keys(&a, &second, reqwest::Method::DELETE, Some(third_id))
            .await
            .status,
        204
    );
    until_all(&[&a, &b], third["secret"].as_str().unwrap(), 401, SLA).await;

    // A key revoked a moment ago is refused at once, whether or not the node's cache has heard.
    assert_eq!(
        admin_delete(&idp, &format!("/admin/v1/keys/{my_key_id}")).await,
        204
    );
    own_signing_key(&a, &my_key, None)
        .await
        .assert_error(401, "unauthenticated");

    // An identity service that hangs (stopped, not dead) costs a bounded wait and a 503, then recovers.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &idp.pid().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let started = Instant::now();
    let r = own_signing_key(&b, &their_key, None).await;
    let waited = started.elapsed();
    let resumed = std::process::Command::new("kill")
        .args(["-CONT", &idp.pid().to_string()])
        .status()
        .unwrap();
    assert!(resumed.success());
    r.assert_error(503, "dependency_unavailable");
    assert!(r.header("retry-after").is_some());
    assert!(
        waited < Duration::from_secs(8),
        "waited {waited:?} on a hung identity service"
    );
    assert_eq!(own_signing_key(&b, &their_key, None).await.status, 201);
    // And one that is gone: a 503 at once.
    idp.kill9();
    own_signing_key(&a, &their_key, None)
        .await
        .assert_error(503, "dependency_unavailable");
}

#[tokio::test]
async fn test_api_nodes_keep_serving_through_identity_outage() {
    let Some(db) = resizer_testing::fresh_database("resizer_it").await else {
        return;
    };
    let idp_dir = tempfile::tempdir().unwrap();
    let mut idp = identity(&db, None, Some(idp_dir.path().to_path_buf()));
    let identity_addr = idp.admin.trim_start_matches("http://").to_string();
    let a_dir = tempfile::tempdir().unwrap();
    let mut a = api(&idp.admin, Some(a_dir.path().to_path_buf()));
    let b = api(&idp.admin, None);
    wait_ready(&a).await;
    wait_ready(&b).await;
    let tenant = idp
        .create_tenant(json!({"name": "steady", "rate_limit_rps": 1000}))
        .await;
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let (_, key) = idp.create_key(&tenant_id).await;
    until_all(&[&a, &b], &key, 400, SLA).await;
    // Let api-1 write its snapshot file.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The management plane goes away: existing keys keep working, nodes stay ready.
    idp.kill9();
    let image = read_corpus("jpeg-256k/a08_OneStandsOut.jpg");
    for node in [&a, &b] {
        assert_eq!(
            node.resize(Some(&key), "width=100", image.clone(), None)
                .await
                .status,
            200
        );
        let (status, ready) = node.readyz().await;
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["auth_cache_source"], "feed");
    }

    // api-1 restarts during the outage: it serves from its local snapshot, and says so.
    a.kill9();
    let a = api(
        &format!("http://{identity_addr}"),
        Some(a_dir.path().to_path_buf()),
    );
    let (status, ready) = a.readyz().await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["auth_cache_source"], "snapshot_file");
    assert_eq!(ready["auth_cache_stale"], true);
    assert_eq!(
        a.resize(Some(&key), "width=100", image.clone(), None)
            .await
            .status,
        200
    );
    assert!(
        a.stderr
            .lock()
            .unwrap()
            .contains("starts from the local snapshot")
    );

    // A new node with no snapshot cannot know any key: not ready.
    let c = api(&format!("http://{identity_addr}"), None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, ready) = c.readyz().await;
    assert_eq!(status, 503, "{ready}");

    // The management plane returns on the same address; a key created after that
    // works everywhere within the SLA.
    let idp = identity(&db, Some(identity_addr), Some(idp_dir.path().to_path_buf()));
    let (_, fresh_key) = idp.create_key(&tenant_id).await;
    let took = until_all(&[&a, &b, &c], &fresh_key, 400, SLA).await;
    eprintln!("new key accepted on all three nodes {took:?} after creation");
    let (_, ready) = a.readyz().await;
    assert_eq!(ready["auth_cache_source"], "feed");
    assert_eq!(ready["auth_cache_stale"], false);
}

#[tokio::test]
async fn test_an_identity_store_reset_is_detected_by_following_nodes() {
    let Some(old_db) = resizer_testing::fresh_database("resizer_it").await else {
        return;
    };
    let Some(new_db) = resizer_testing::fresh_database("resizer_it").await else {
        return;
    };
    let mut idp = identity(&old_db, None, None);
    let identity_addr = idp.admin.trim_start_matches("http://").to_string();
    let node = api(&idp.admin, None);
    wait_ready(&node).await;
    // History the new store will not have: a few tenants and keys.
    let mut old_key = String::new();
    for name in ["one", "two", "three"] {
        let t = idp.create_tenant(json!({"name": name})).await;
        old_key = idp.create_key(t["id"].as_str().unwrap()).await.1;
    }
    until_all(&[&node], &old_key, 400, SLA).await;

    // The store is replaced by an empty one (wiped, or restored from an old backup)
    // behind the same address; its sequence starts again below the node's.
    idp.kill9();
    let idp = identity(&new_db, Some(identity_addr), None);
    let t = idp.create_tenant(json!({"name": "after"})).await;
    let (_, new_key) = idp.create_key(t["id"].as_str().unwrap()).await;
    // The node notices, reloads: the new store's key works and the old one is gone.
    until_all(&[&node], &new_key, 400, Duration::from_secs(15)).await;
    until_all(&[&node], &old_key, 401, Duration::from_secs(5)).await;
    assert!(node.stderr.lock().unwrap().contains("it was reset"));
}

/// `cargo test --release -p resizer --test identity -- --ignored --nocapture measure`
#[tokio::test]
#[ignore = "measurement; run explicitly"]
async fn measure_replication_lag_over_1000_key_creations() {
    let Some(db) = resizer_testing::fresh_database("resizer_it").await else {
        return;
    };
    let idp = identity(&db, None, None);
    let (a, b) = (api(&idp.admin, None), api(&idp.admin, None));
    wait_ready(&a).await;
    wait_ready(&b).await;
    let tenant = idp
        .create_tenant(json!({"name": "lag", "rate_limit_rps": 1000000}))
        .await;
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let mut lags = Vec::new();
    for _ in 0..1000 {
        let (_, key) = idp.create_key(&tenant_id).await;
        let created = Instant::now();
        for node in [&a, &b] {
            while node.auth_status(&key).await != 400 {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            lags.push(created.elapsed());
        }
    }
    lags.sort();
    let pct = |p: f64| lags[((lags.len() as f64 * p) as usize).min(lags.len() - 1)];
    eprintln!(
        "replication lag, key created -> accepted, {} observations (2 nodes x 1000 keys): p50 {:?} p99 {:?} p99.9 {:?} max {:?}",
        lags.len(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        lags.last().unwrap()
    );
}

/// Flips `format_jxl` for one tenant `flips` times on the identity service and
/// returns, per flip and node, the time until that node's `/v1/flags` shows it.
async fn flag_flip_delays(flips: usize, within: Duration) -> Vec<Duration> {
    let Some(db) = resizer_testing::fresh_database("resizer_it").await else {
        return Vec::new();
    };
    let idp = identity(&db, None, None);
    let (a, b) = (api(&idp.admin, None), api(&idp.admin, None));
    wait_ready(&a).await;
    wait_ready(&b).await;
    let tenant = idp
        .create_tenant(json!({"name": "flags", "rate_limit_rps": 1000000}))
        .await;
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let (_, key) = idp.create_key(&tenant_id).await;
    until_all(&[&a, &b], &key, 400, SLA).await;
    let mut delays = Vec::new();
    for i in 0..flips {
        let on = i % 2 == 0;
        let resp = idp
            .client
            .put(format!("{}/admin/v1/flags/format_jxl", idp.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"overrides": {tenant_id.clone(): on}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let flipped = Instant::now();
        for node in [&a, &b] {
            loop {
                let flags: Value = node
                    .client
                    .get(format!("{}/v1/flags", node.public))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if flags["flags"]["format_jxl"] == on {
                    break;
                }
                assert!(
                    flipped.elapsed() < within,
                    "flip {i} not on {} after {within:?}",
                    node.public
                );
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            delays.push(flipped.elapsed());
        }
        // The gate itself follows: off is a 400 before any work on either node.
        if !on {
            let r = a
                .resize(
                    Some(&key),
                    "width=64&format=jxl",
                    read_corpus("webp/d01_Grey.webp"),
                    None,
                )
                .await;
            r.assert_error(400, "invalid_parameter");
        }
    }
    delays.sort();
    delays
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::test]
async fn test_flag_flips_reach_every_api_node_through_the_feed() {
    let delays = flag_flip_delays(20, Duration::from_secs(5)).await;
    if let Some(max) = delays.last() {
        eprintln!(
            "flag flip -> visible on both nodes, {} observations: p50 {:?} p99 {:?} max {max:?}",
            delays.len(),
            percentile(&delays, 0.5),
            percentile(&delays, 0.99),
        );
    }
}

/// `cargo test --release -p resizer --test identity -- --ignored --nocapture measure_flag`
#[tokio::test]
#[ignore = "measurement; run explicitly"]
async fn measure_flag_propagation_over_500_flips() {
    let delays = flag_flip_delays(500, Duration::from_secs(5)).await;
    eprintln!(
        "flag flip -> visible, {} observations (2 nodes x 500 flips): p50 {:?} p99 {:?} p99.9 {:?} max {:?}",
        delays.len(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        percentile(&delays, 0.999),
        delays.last().unwrap()
    );
}
