//! The distributed mode under failure, on a real cluster on loopback started
//! by `deploy/cluster.sh`: 3 nats-server (JetStream, R3 streams), PostgreSQL,
//! identity, 2 API nodes behind HAProxy, 2 workers.
//!
//! Steady open-loop load runs through HAProxy while one component at a time is
//! killed or paused. Every answer must be a correct image for its own request
//! (width and aspect of that request's input) or a JSON 503/504; the queue must
//! end empty (every accepted job reached a worker and was acked). The
//! publish-failure window and failure shares are printed for docs/benchmarks.md.

mod common;

use common::cluster::Cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Ports base+1..base+81; far from the other tests' ephemeral ports.
const PORT_BASE: u16 = 24000;
/// Jobs the whole JetStream queue may hold.
const QUEUE_CAPACITY: usize = 60;
/// Requests per second of the steady load (the debug binary on 2 shared cores).
const RATE: u64 = 40;

fn up() -> Cluster {
    let dir = tempfile::tempdir().unwrap().keep();
    Cluster::up(
        dir,
        PORT_BASE,
        &[
            // A small queue (20 jobs per stream), so the test can fill it; no per-tenant cap.
            ("RESIZER_QUEUE__CAPACITY", &QUEUE_CAPACITY.to_string()),
            ("RESIZER_API__MAX_IN_FLIGHT_PER_TENANT", "1000"),
            // Stored originals reach the usage roll-ups within a second.
            ("STORAGE_SAMPLE_MS", "500"),
        ],
    )
}

/// JetStream state: (stream, leader, consumer leader, messages).
async fn stream_states(cluster: &Cluster) -> Vec<(String, String, String, u64)> {
    cluster
        .job_streams()
        .await
        .into_iter()
        .map(|s| (s.name, s.leader, s.consumer_leader, s.messages))
        .collect()
}

/// Sums a counter over the named roles' /metrics.
async fn metric_sum(cluster: &Cluster, ports: &[(&str, u16)], name_prefix: &str) -> f64 {
    let mut total = 0.0;
    for (name, port) in ports {
        let text = cluster.metrics(name, *port).await;
        for line in text.lines() {
            if line.starts_with(name_prefix)
                && let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok())
            {
                total += v;
            }
        }
    }
    total
}

/// A feature flag set on the identity service reaches the API nodes through
/// the feed, and a worker behind NATS writes the format it gates; the
/// identity service's fleet view reaches every resizer process of the cluster.
async fn flags_and_fleet(cluster: &Cluster) {
    let (tenant, key) = cluster.tenant("flags").await;
    let admin = |method: reqwest::Method, path: &str| {
        cluster
            .client
            .request(method, format!("{}{path}", cluster.admin_url))
            .bearer_auth(&cluster.admin_token)
    };
    let put = admin(reqwest::Method::PUT, "/admin/v1/flags/format_jxl")
        .json(&serde_json::json!({"overrides": {tenant.clone(): true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let photo = bytes::Bytes::from(common::read_corpus("jpeg-256k/a09_Path.jpg"));
    wait_for(
        "a JPEG XL through HAProxy, NATS and a worker",
        Duration::from_secs(20),
        || {
            let (client, photo, key) = (cluster.client.clone(), photo.clone(), key.clone());
            let url = format!("{}/v1/resize?width=96&format=jxl", cluster.public_url);
            async move {
                let r = client.post(url).bearer_auth(key).body(photo).send().await;
                r.is_ok_and(|r| {
                    r.status().as_u16() == 200
                        && r.headers().get("content-type").is_some_and(|t| t == "image/jxl")
                })
            }
        },
    )
    .await;
    let fleet: serde_json::Value = admin(reqwest::Method::GET, "/admin/v1/fleet")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for name in ["identity", "api-1", "api-2", "worker-1", "worker-2", "aggregator"] {
        let node = fleet["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {fleet}"));
        assert_eq!(node["up"], true, "{node}");
        assert!(node["metrics"].is_object(), "{name}'s metrics: {node}");
    }
    // Both consoles are served: the tenant's through HAProxy, the operator's by the identity service.
    for url in [&cluster.public_url, &cluster.admin_url] {
        let page = cluster
            .client
            .get(format!("{url}/console/"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200, "{url}/console/");
        let csp = page.headers().get("content-security-policy").cloned();
        assert_eq!(csp.unwrap(), resizer_console::CONTENT_SECURITY_POLICY);
    }
    let del = admin(reqwest::Method::DELETE, "/admin/v1/flags/format_jxl")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 204);
}

/// Delivery by URL on the cluster: an original uploaded through HAProxy is
/// stored in Garage and indexed in PostgreSQL, so both API nodes see it; a
/// signed variant URL always lands on one node (consistent hashing on the path),
/// which makes it once and answers the repeats from its cache. A tenant of its
/// own, so the load tenant's usage stays exactly what its clients saw.
async fn delivery_through_haproxy(cluster: &Cluster, api_urls: &[String; 2]) {
    let (tenant, key) = cluster.tenant("delivery").await;
    let key = key.as_str();
    let photo = bytes::Bytes::from(common::read_corpus("jpeg-256k/a09_Path.jpg"));
    // The key reaches the node HAProxy picks through the identity feed.
    wait_for("the new tenant's upload", Duration::from_secs(20), || {
        let (client, photo) = (cluster.client.clone(), photo.clone());
        let url = format!("{}/v1/originals/cluster/cat.jpg", cluster.public_url);
        async move {
            let put = client.put(url).bearer_auth(key).body(photo).send().await;
            put.is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await;
    // Both nodes see it: one index, one bucket.
    wait_for(
        "the original's metadata on both nodes",
        Duration::from_secs(20),
        || {
            let client = cluster.client.clone();
            let urls = api_urls.clone();
            async move {
                for url in urls {
                    let meta = client
                        .get(format!("{url}/v1/originals/cluster/cat.jpg"))
                        .bearer_auth(key)
                        .send()
                        .await;
                    if !meta.is_ok_and(|r| r.status().as_u16() == 200) {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
    // The tenant's own key issues its signing key through HAProxy: the API node
    // goes on to the identity service with that key.
    let sk = cluster
        .client
        .post(format!("{}/v1/signing-keys", cluster.public_url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(sk.status().as_u16(), 201);
    let sk: serde_json::Value = sk.json().await.unwrap();
    assert_eq!(sk["tenant_id"], tenant.as_str());
    let secret = sk["secret"].as_str().unwrap().to_string();
    let path = resizer_core::signing::signed_path_and_query(
        &secret,
        &format!("/v1/img/{tenant}/cluster/cat.jpg"),
        &[("width".to_string(), "200".to_string())],
        None,
    );
    let url = format!("{}{path}", cluster.public_url);
    // The signing key reaches both nodes through the identity feed.
    wait_for(
        "the signing key on the API nodes",
        Duration::from_secs(20),
        || {
            let (client, url) = (cluster.client.clone(), url.clone());
            async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 200)
            }
        },
    )
    .await;
    let api_ports = [("api-1", PORT_BASE + 51), ("api-2", PORT_BASE + 52)];
    let hits_before = metric_sum(
        cluster,
        &api_ports,
        "resizer_variant_cache_requests_total{outcome=\"hit\"}",
    )
    .await;
    let mut etags = Vec::new();
    for _ in 0..6 {
        let r = cluster.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        etags.push(r.headers()["etag"].to_str().unwrap().to_string());
    }
    etags.dedup();
    assert_eq!(etags.len(), 1);
    let hits = metric_sum(
        cluster,
        &api_ports,
        "resizer_variant_cache_requests_total{outcome=\"hit\"}",
    )
    .await
        - hits_before;
    let misses = metric_sum(
        cluster,
        &api_ports,
        "resizer_variant_cache_requests_total{outcome=\"miss\"}",
    )
    .await;
    assert_eq!(hits, 6.0, "every repeat lands on the node that made it");
    assert_eq!(misses, 1.0, "the variant was made once in the cluster");
    // The aggregators sample the stored original into the tenant's usage.
    wait_for("the stored bytes in /v1/usage", Duration::from_secs(30), || {
        let client = cluster.client.clone();
        let url = format!("{}/v1/usage", cluster.public_url);
        let want = photo.len() as u64;
        async move {
            let Ok(r) = client.get(url).bearer_auth(key).send().await else {
                return false;
            };
            let usage: serde_json::Value = r.json().await.unwrap_or_default();
            usage["buckets"].as_array().is_some_and(|b| {
                b.iter()
                    .any(|b| b["stored_bytes"].as_u64() == Some(want) && b["stored_originals"] == 1)
            })
        }
    })
    .await;
    let deleted = cluster
        .client
        .delete(format!("{}/v1/originals/cluster/cat.jpg", cluster.public_url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(cluster.client.get(&url).send().await.unwrap().status(), 404);
}

/// One request's fate.
#[derive(Debug, Clone)]
struct Sample {
    sent: Duration,
    latency: Duration,
    status: u16,
    problem: Option<String>,
}

struct Input {
    bytes: bytes::Bytes,
    width: u32,
    height: u32,
}

/// Checks a response against its own request: a JPEG of the requested width and
/// the aspect of the input that was sent, or a JSON error.
async fn check(resp: reqwest::Response, input: &Input, width: u32) -> (u16, Option<String>) {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return (status, Some(format!("body: {e}"))),
    };
    if status == 200 {
        let header = match turbojpeg::read_header(&body) {
            Ok(h) => h,
            Err(e) => return (status, Some(format!("not a JPEG: {e}"))),
        };
        let want_h = (f64::from(width) * f64::from(input.height) / f64::from(input.width)).round() as i64;
        if header.width as u32 != width || (header.height as i64 - want_h).abs() > 1 {
            return (
                status,
                Some(format!(
                    "got {}x{}, asked width {width} of a {}x{} input",
                    header.width, header.height, input.width, input.height
                )),
            );
        }
        return (status, None);
    }
    let is_json_error = content_type.starts_with("application/json")
        && serde_json::from_slice::<Value>(&body).is_ok_and(|v| v["error"]["code"].is_string());
    if !is_json_error {
        return (
            status,
            Some(format!(
                "non-JSON error {status}: {}",
                String::from_utf8_lossy(&body)
            )),
        );
    }
    (status, None)
}

/// Runs open-loop load at `RATE` for `duration`, from `t0`'s clock.
async fn load(
    client: reqwest::Client,
    url: String,
    key: String,
    inputs: Arc<Vec<Input>>,
    t0: Instant,
    duration: Duration,
) -> Vec<Sample> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut i: u64 = 0;
    let interval = Duration::from_micros(1_000_000 / RATE);
    while start.elapsed() < duration {
        let at = start + interval * i as u32;
        tokio::time::sleep_until(at.into()).await;
        let (client, url, key, inputs) = (client.clone(), url.clone(), key.clone(), inputs.clone());
        let n = i;
        tasks.push(tokio::spawn(async move {
            let sent = t0.elapsed();
            let input = &inputs[(n % inputs.len() as u64) as usize];
            let width = 64 + (n * 7 % 250) as u32;
            let started = Instant::now();
            let result = client
                .post(format!("{url}/v1/resize?width={width}&format=jpeg"))
                .bearer_auth(&key)
                .body(input.bytes.clone())
                .send()
                .await;
            let (status, problem) = match result {
                Ok(resp) => check(resp, input, width).await,
                Err(e) => (0, Some(format!("transport: {e}"))),
            };
            Sample {
                sent,
                latency: started.elapsed(),
                status,
                problem,
            }
        }));
        i += 1;
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn summarize(phase: &str, samples: &[Sample], from: Duration, to: Duration) -> (usize, usize) {
    let window: Vec<&Sample> = samples.iter().filter(|s| s.sent >= from && s.sent < to).collect();
    let failed: Vec<&&Sample> = window.iter().filter(|s| s.status != 200).collect();
    let first = failed.first().map(|s| s.sent.saturating_sub(from).as_millis());
    let last = failed.last().map(|s| s.sent.saturating_sub(from).as_millis());
    let mut latencies: Vec<Duration> = window
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.latency)
        .collect();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0, |d| d.as_millis())
    };
    let mut by_status = std::collections::BTreeMap::new();
    for s in &window {
        *by_status.entry(s.status).or_insert(0) += 1;
    }
    println!(
        "{phase}: {} requests, {} failed ({:.2} %), statuses {by_status:?}, failures sent between +{first:?} and +{last:?} ms; \
         200s p50 {} ms, p99 {} ms, max {} ms",
        window.len(),
        failed.len(),
        100.0 * failed.len() as f64 / window.len().max(1) as f64,
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
    (window.len(), failed.len())
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_cluster_survives_failures() {
    let cluster = up();
    let tenant = cluster
        .admin_post(
            "/admin/v1/tenants",
            json!({"name": "load", "rate_limit_rps": 10000}),
        )
        .await;
    let key = cluster
        .admin_post(
            &format!("/admin/v1/tenants/{}/keys", tenant["id"].as_str().unwrap()),
            json!({}),
        )
        .await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let inputs: Arc<Vec<Input>> = Arc::new(
        [
            "jpeg-256k/a16_LadyBird.jpg",
            "jpeg-256k/a03_ColorfulCups.jpg",
            "jpeg-256k/a09_Path.jpg",
        ]
        .iter()
        .map(|rel| {
            let bytes = common::read_corpus(rel);
            let h = turbojpeg::read_header(&bytes).unwrap();
            Input {
                bytes: bytes.into(),
                width: h.width as u32,
                height: h.height as u32,
            }
        })
        .collect(),
    );
    // The key reaches both API nodes through the identity feed.
    let probes_sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let api_urls = [
        format!("http://{}:{}", cluster.addr("api-1"), PORT_BASE + 51),
        format!("http://{}:{}", cluster.addr("api-2"), PORT_BASE + 52),
    ];
    wait_for("the key on both API nodes", Duration::from_secs(20), || {
        let (client, key, probes_sent) = (cluster.client.clone(), key.clone(), probes_sent.clone());
        let api_urls = api_urls.clone();
        async move {
            for url in api_urls {
                probes_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let r = client
                    .post(format!("{url}/v1/resize?width=10"))
                    .bearer_auth(&key)
                    .body(Vec::new())
                    .send()
                    .await;
                if !r.is_ok_and(|r| r.status().as_u16() == 400) {
                    return false;
                }
            }
            true
        }
    })
    .await;
    // Leaders spread: each stream led by a different server, each consumer with its stream.
    wait_for(
        "stream leaders spread over the servers",
        Duration::from_secs(60),
        || async {
            let s = stream_states(&cluster).await;
            let mut leaders: Vec<&String> = s.iter().map(|(_, l, _, _)| l).collect();
            leaders.sort();
            leaders.dedup();
            s.len() == 3 && leaders.len() == 3 && s.iter().all(|(_, l, c, _)| l == c)
        },
    )
    .await;
    let probes = probes_sent.load(std::sync::atomic::Ordering::Relaxed);
    delivery_through_haproxy(&cluster, &api_urls).await;
    flags_and_fleet(&cluster).await;
    let streams = stream_states(&cluster).await;
    println!("streams before: {streams:?}");

    let t0 = Instant::now();
    let api_ports = [("api-1", PORT_BASE + 51), ("api-2", PORT_BASE + 52)];
    let worker_ports = [("worker-1", PORT_BASE + 71), ("worker-2", PORT_BASE + 72)];
    let runner = {
        let (client, url, key, inputs) = (
            cluster.client.clone(),
            cluster.public_url.clone(),
            key.clone(),
            inputs.clone(),
        );
        tokio::spawn(load(client, url, key, inputs, t0, Duration::from_secs(75)))
    };

    // 0–5 s: steady. 5 s: kill -9 the server leading the first stream.
    tokio::time::sleep_until((t0 + Duration::from_secs(5)).into()).await;
    let victim = streams[0].1.clone();
    let kill_at = t0.elapsed();
    let killed = Instant::now();
    cluster.must(&["kill", &victim]);
    // How long the victim's stream has no leader (the Raft election the publishers route around).
    let mut election = None;
    while killed.elapsed() < Duration::from_secs(10) {
        let s = stream_states(&cluster).await;
        if s.first()
            .is_some_and(|(_, l, _, _)| !l.is_empty() && *l != victim)
        {
            election = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep_until((t0 + Duration::from_secs(16)).into()).await;
    let stream_failures = metric_sum(&cluster, &api_ports, "resizer_queue_stream_failures_total").await;
    let unavailable = metric_sum(
        &cluster,
        &api_ports,
        "resizer_queue_publish_total{outcome=\"unavailable\"}",
    )
    .await;
    let streams_after = stream_states(&cluster).await;
    // 17 s: it comes back and must rejoin.
    tokio::time::sleep_until((t0 + Duration::from_secs(17)).into()).await;
    cluster.must(&["start", &victim]);

    // 22 s: kill -9 a worker with jobs in hand.
    tokio::time::sleep_until((t0 + Duration::from_secs(22)).into()).await;
    let worker_kill_at = t0.elapsed();
    cluster.must(&["kill", "worker-1"]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.must(&["start", "worker-1"]);

    // 32 s: kill -9 an API node; HAProxy routes around it.
    tokio::time::sleep_until((t0 + Duration::from_secs(32)).into()).await;
    let api_kill_at = t0.elapsed();
    cluster.must(&["kill", "api-1"]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    cluster.must(&["start", "api-1"]);

    // 41 s: kill -9 the aggregators' lease holder (or its standby); the other carries on.
    tokio::time::sleep_until((t0 + Duration::from_secs(41)).into()).await;
    cluster.must(&["kill", "aggregator"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.must(&["start", "aggregator"]);

    // 44 s: SIGSTOP a NATS server for 10 s.
    tokio::time::sleep_until((t0 + Duration::from_secs(44)).into()).await;
    let pause_at = t0.elapsed();
    let paused = stream_states(&cluster).await[1].1.clone();
    cluster.must(&["pause", &paused]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.must(&["resume", &paused]);

    // 58 s: rolling restart, one node at a time (SIGTERM: drain, then start).
    tokio::time::sleep_until((t0 + Duration::from_secs(58)).into()).await;
    let rolling_at = t0.elapsed();
    for name in ["api-1", "worker-1", "api-2", "worker-2"] {
        cluster.must(&["restart", name]);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rolling_end = t0.elapsed();

    let samples = runner.await.unwrap();
    let problems: Vec<&Sample> = samples.iter().filter(|s| s.problem.is_some()).collect();

    let secs = Duration::from_secs;
    summarize("steady", &samples, Duration::ZERO, kill_at);
    let (n_kill, f_kill) = summarize(
        &format!("kill -9 {victim} (stream leader)"),
        &samples,
        kill_at,
        kill_at + secs(10),
    );
    let (_, f_worker) = summarize(
        "kill -9 worker-1",
        &samples,
        worker_kill_at,
        worker_kill_at + secs(10),
    );
    let (_, f_api) = summarize("kill -9 api-1", &samples, api_kill_at, api_kill_at + secs(10));
    let (n_pause, f_pause) = summarize(
        &format!("SIGSTOP {paused} 10 s"),
        &samples,
        pause_at,
        pause_at + secs(14),
    );
    let (_, f_rolling) = summarize("rolling restart", &samples, rolling_at, rolling_end);
    println!("after killing {victim}: the stream it led had a new leader after {election:?}");
    println!(
        "after killing {victim}: publish attempts that failed over to another stream {stream_failures}, \
         publishes that found no stream {unavailable}; streams 11 s later: {streams_after:?}"
    );

    // No client ever got a wrong image or a non-JSON error from Resizer. HAProxy's own
    // answers for requests cut off on the killed API node are the one exception: those
    // still in flight at the kill (sent before it, answered after) or sent within 2 s of it.
    let foreign: Vec<&&Sample> = problems
        .iter()
        .filter(|s| {
            let cut = s.sent + s.latency >= api_kill_at && s.sent < api_kill_at + secs(2);
            !(cut && (s.status == 502 || s.status == 0))
        })
        .collect();
    assert!(foreign.is_empty(), "bad answers: {foreign:?}");
    for s in &samples {
        assert!(
            matches!(s.status, 200 | 503 | 504) || s.problem.is_some(),
            "unexpected status {s:?}"
        );
    }
    // The stream leader's death costs at most 1 % of requests in the next 10 s.
    assert!(
        f_kill * 100 <= n_kill,
        "{f_kill} of {n_kill} failed after the leader was killed"
    );
    // A killed worker's jobs complete by redelivery or end in 504; the API node's
    // in-flight requests are the only ones lost with it.
    assert!(f_worker <= 4, "{f_worker} failed after a worker was killed");
    assert!(f_api <= 12, "{f_api} failed after an API node was killed");
    assert!(
        f_pause * 100 <= n_pause * 5,
        "{f_pause} of {n_pause} failed while a server was paused"
    );
    assert_eq!(f_rolling, 0, "a rolling restart lost requests");

    // The killed server rejoined; nothing is left in the queue: every accepted job
    // reached a worker and was acked.
    wait_for("the queue to drain", Duration::from_secs(20), || async {
        let s = stream_states(&cluster).await;
        s.len() == 3 && s.iter().all(|(_, l, _, m)| !l.is_empty() && *m == 0)
    })
    .await;
    let jobs_done = metric_sum(&cluster, &worker_ports, "resizer_worker_jobs_total").await;
    println!("jobs done by the workers since their last restart: {jobs_done}");
    assert!(cluster.log("api-2").contains("resizer api ready"));

    // Full queue: with no worker, requests beyond the bound are refused at once.
    cluster.must(&["kill", "worker-1"]);
    cluster.must(&["kill", "worker-2"]);
    let burst: Vec<_> = (0..QUEUE_CAPACITY as u64 + 40)
        .map(|n| {
            let (client, url, key, inputs) = (
                cluster.client.clone(),
                cluster.public_url.clone(),
                key.clone(),
                inputs.clone(),
            );
            tokio::spawn(async move {
                let input = &inputs[(n % 3) as usize];
                let width = 64 + n as u32;
                let started = Instant::now();
                let resp = client
                    .post(format!("{url}/v1/resize?width={width}&format=jpeg"))
                    .bearer_auth(&key)
                    .body(input.bytes.clone())
                    .send()
                    .await
                    .unwrap();
                let retry_after = resp.headers().contains_key("retry-after");
                let (status, problem) = check(resp, input, width).await;
                (status, problem, retry_after, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.must(&["start", "worker-1"]);
    let (mut refused, mut burst_ok) = (0, 0);
    for task in burst {
        let (status, problem, retry_after, latency) = task.await.unwrap();
        assert!(problem.is_none(), "{problem:?}");
        assert!(matches!(status, 200 | 503 | 504), "status {status}");
        if status == 200 {
            burst_ok += 1;
        }
        if status == 503 {
            refused += 1;
            assert!(retry_after, "503 without Retry-After");
            assert!(
                latency < Duration::from_secs(1),
                "a full queue took {latency:?} to refuse"
            );
        }
    }
    println!(
        "full queue: {refused} of {} refused with 503",
        QUEUE_CAPACITY + 40
    );
    assert!(refused >= 30, "only {refused} refused");

    // Usage, "are all messages sent actually received?": the roll-up's success count for the
    // tenant equals the 200s the clients saw, although an API node and the active aggregator
    // were killed with -9 mid-load. A request cut off by a kill may have been answered 200 by
    // the server (and recorded) without the client seeing it: those are the only slack.
    let client_ok = samples.iter().filter(|s| s.status == 200).count() as u64 + burst_ok;
    let cut_off = samples.iter().filter(|s| s.status == 0).count() as u64;
    let sent = samples.len() as u64 + QUEUE_CAPACITY as u64 + 40 + probes;
    // The cluster's PostgreSQL wants its generated password (SCRAM, not trust).
    let pg_password = std::fs::read_to_string(cluster.dir.join("pg/password")).unwrap();
    let (db, connection) = tokio_postgres::connect(
        &format!(
            "postgres://resizer:{}@{}:{}/postgres",
            pg_password.trim(),
            cluster.addr("postgres"),
            PORT_BASE + 30
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let (mut succeeded, mut requests) = (0i64, 0i64);
    while started.elapsed() < Duration::from_secs(40) {
        if let Ok(row) = db
            .query_one(
                "SELECT COALESCE(SUM(succeeded), 0)::BIGINT, COALESCE(SUM(requests), 0)::BIGINT \
                 FROM usage_hourly WHERE tenant_id = $1",
                &[&tenant_id],
            )
            .await
        {
            (succeeded, requests) = (row.get(0), row.get(1));
            if succeeded as u64 >= client_ok {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "usage: roll-up succeeded {succeeded} for {client_ok} answers 200 seen by clients \
         ({cut_off} cut off by a kill); {requests} requests metered of {sent} sent"
    );
    let succeeded = succeeded as u64;
    assert!(
        succeeded >= client_ok && succeeded <= client_ok + cut_off,
        "roll-up says {succeeded} succeeded; clients saw {client_ok} (+{cut_off} cut off)"
    );
    assert!(requests as u64 <= sent);

    // Usage queries in distributed mode: a key sees its own tenant only; the admin sees any.
    let tenant_b = cluster
        .admin_post(
            "/admin/v1/tenants",
            json!({"name": "other", "rate_limit_rps": 1000}),
        )
        .await;
    let tenant_b_id = tenant_b["id"].as_str().unwrap().to_string();
    let key_b = cluster
        .admin_post(&format!("/admin/v1/tenants/{tenant_b_id}/keys"), json!({}))
        .await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b_ok = 0;
    let started = Instant::now();
    while b_ok < 5 && started.elapsed() < Duration::from_secs(20) {
        let resp = cluster
            .client
            .post(format!("{}/v1/resize?width=50", cluster.public_url))
            .bearer_auth(&key_b)
            .body(inputs[0].bytes.clone())
            .send()
            .await
            .unwrap();
        // 401 until the new key reaches the API node through the identity feed.
        if resp.status().as_u16() == 200 {
            b_ok += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(b_ok, 5);
    let usage = |url: String, token: String| {
        let client = cluster.client.clone();
        async move {
            let v: Value = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let sum = |f: &str| {
                v["buckets"]
                    .as_array()
                    .map_or(0, |b| b.iter().map(|x| x[f].as_u64().unwrap_or(0)).sum::<u64>())
            };
            (
                v["tenant"].as_str().unwrap_or_default().to_string(),
                sum("succeeded"),
                sum("requests"),
            )
        }
    };
    let started = Instant::now();
    let own_b = loop {
        let got = usage(format!("{}/v1/usage", cluster.public_url), key_b.clone()).await;
        if got.1 >= 5 || started.elapsed() > Duration::from_secs(30) {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(own_b, (tenant_b_id.clone(), 5, 5));
    let own_a = usage(format!("{}/v1/usage", cluster.public_url), key.clone()).await;
    assert_eq!(own_a.0, tenant_id);
    assert_eq!(own_a.1, succeeded, "a key's own usage is the roll-up");
    let admin_b = usage(
        format!(
            "{}/admin/v1/usage?tenant={tenant_b_id}&bucket=day",
            cluster.admin_url
        ),
        cluster.admin_token.clone(),
    )
    .await;
    assert_eq!(admin_b.1, 5);
    // The archive is written right after the roll-up, in the same batch.
    let started = Instant::now();
    let records = loop {
        let audit: Value = cluster
            .client
            .get(format!(
                "{}/admin/v1/audit?tenant={tenant_b_id}",
                cluster.admin_url
            ))
            .bearer_auth(&cluster.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let records = audit["records"].as_array().cloned().unwrap_or_default();
        if records.len() >= 5 || started.elapsed() > Duration::from_secs(10) {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r["tenant_id"] == tenant_b_id.as_str()));
    println!(
        "usage queries: tenant B sees {own_b:?}, tenant A sees its own {succeeded} successes, audit of B has {} records, all B's",
        records.len()
    );

    // The whole queue down: 503 with Retry-After within the publish budget, never a hang.
    for n in 1..=3 {
        cluster.must(&["kill", &format!("nats-{n}")]);
    }
    for n in 0..3u32 {
        let started = Instant::now();
        let resp = cluster
            .client
            .post(format!("{}/v1/resize?width={}", cluster.public_url, 100 + n))
            .bearer_auth(&key)
            .body(inputs[0].bytes.clone())
            .send()
            .await
            .unwrap();
        let latency = started.elapsed();
        assert_eq!(resp.status().as_u16(), 503);
        assert!(resp.headers().contains_key("retry-after"));
        println!("queue down: 503 in {latency:?}");
        assert!(latency < Duration::from_secs(3), "{latency:?}");
    }
}
