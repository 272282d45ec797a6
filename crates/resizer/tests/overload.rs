//! Backpressure and sharing under load: identical requests join one job (never
//! across tenants), and one tenant's flood leaves room for the others.

mod common;

use std::time::Duration;

use common::{Server, decode, read_corpus};
use serde_json::json;

async fn metric(server: &Server, name: &str) -> f64 {
    let text = server.metrics().await;
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn test_identical_requests_join_one_job_per_tenant() {
    // About joining, not fairness: lift the per-tenant cap.
    let server = Server::start_env(&[
        ("RESIZER_WORKER__THREADS", "1"),
        ("RESIZER_API__MAX_IN_FLIGHT_PER_TENANT", "100"),
    ]);
    let (_, key_a) = server.customer().await;
    let (_, key_b) = server.customer().await;
    let big = read_corpus("jpeg-1m/b02_Path.jpg");
    let query = "width=2000&format=png";
    let tasks: Vec<_> = (0..10)
        .map(|i| server.spawn_resize(if i % 2 == 0 { &key_a } else { &key_b }, query, big.clone()))
        .collect();
    let mut bodies = Vec::new();
    for t in tasks {
        let (r, _) = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        bodies.push(r.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical requests, identical answers"
    );
    assert_eq!(decode(&bodies[0]).width, 2000);
    let joins = metric(&server, "resizer_api_joins_total").await;
    let jobs = metric(&server, "resizer_worker_jobs_total{outcome=\"succeeded\"}").await;
    assert_eq!(joins + jobs, 10.0, "every request either led a job or joined one");
    assert!(jobs >= 2.0, "tenants never share a job: {jobs} jobs");
    assert!(
        joins >= 4.0,
        "concurrent identical requests joined: {joins} joins"
    );
}

#[tokio::test]
async fn test_one_tenants_flood_leaves_room_for_another() {
    let server = Server::start_env(&[
        ("RESIZER_WORKER__THREADS", "1"),
        ("RESIZER_API__MAX_IN_FLIGHT_PER_TENANT", "3"),
    ]);
    let flood = server
        .create_tenant(json!({"name": "flood", "rate_limit_rps": 100000}))
        .await;
    let (_, flood_key) = server.create_key(flood["id"].as_str().unwrap()).await;
    let (_, calm_key) = server.customer().await;
    let images: Vec<_> = [
        "jpeg-1m/b01_EveningGlow.jpg",
        "jpeg-1m/b03_OneStandsOut.jpg",
        "jpeg-1m/b04_BytheWater.jpg",
    ]
    .iter()
    .map(|p| read_corpus(p))
    .collect();
    // Distinct requests (different widths) so nothing joins.
    let flood_tasks: Vec<_> = (0..24)
        .map(|i| {
            server.spawn_resize(
                &flood_key,
                &format!("width={}&format=png", 1500 + i),
                images[i % 3].clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let calm = server
        .resize(
            Some(&calm_key),
            "width=300",
            read_corpus("jpeg-256k/a09_Path.jpg"),
            None,
        )
        .await;
    assert_eq!(calm.status, 200, "the calm tenant is served during the flood");
    let mut refused = 0;
    for t in flood_tasks {
        let (r, _) = t.await.unwrap();
        match r.status {
            200 => {}
            429 => {
                r.assert_error(429, "rate_limited");
                assert_eq!(r.header("retry-after").as_deref(), Some("1"));
                refused += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert!(refused >= 1, "the flooding tenant is capped");
}

#[tokio::test]
async fn test_client_disconnect_cancels_its_queued_job() {
    let server = Server::start_env(&[
        ("RESIZER_WORKER__THREADS", "1"),
        ("RESIZER_API__JOB_DEADLINE_MS", "60000"),
    ]);
    let (_, key) = server.customer().await;
    // Occupy the only imaging thread for well over the impatient client's patience: three
    // enlarged ~5000-pixel-wide PNGs, one after another (each ~0.4 s with the optimized
    // imaging crate in debug builds).
    const BUSY: usize = 3;
    let busy: Vec<_> = (0..BUSY)
        .map(|i| {
            let query = format!("width={}&enlarge=true&format=png", 5000 - i);
            server.spawn_resize(&key, &query, read_corpus("jpeg-1m/b05_Blinds.jpg"))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A request whose client gives up while its job waits behind them: long enough to be
    // published, far shorter than the work ahead of it.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(format!("{}/v1/resize?width=2400&format=png", server.public))
        .bearer_auth(&key)
        .body(read_corpus("jpeg-1m/b01_EveningGlow.jpg"))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client timed out");
    for t in busy {
        let (r, _) = t.await.unwrap();
        assert_eq!(r.status, 200);
    }
    // The worker reaches the abandoned job, finds its input gone and drops it unprocessed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let orphaned = metric(&server, "resizer_worker_jobs_total{outcome=\"orphaned\"}").await;
        if orphaned >= 1.0 {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let text = server.metrics().await;
            let lines: Vec<_> = text
                .lines()
                .filter(|l| {
                    l.contains("jobs_total") || l.contains("publish_total") || l.contains("resize\",status")
                })
                .collect();
            panic!("the abandoned job was processed or lost: {lines:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let succeeded = metric(&server, "resizer_worker_jobs_total{outcome=\"succeeded\"}").await;
    assert_eq!(
        succeeded, BUSY as f64,
        "only the requests that waited were resized"
    );
}
