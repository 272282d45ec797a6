//! Drives the real `resizer-bench` binary against a small server that answers
//! 200 or 503 and counts what it received.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

async fn start_server() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/",
        post(move |body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                assert!(!body.is_empty());
                if n % 4 == 3 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), hits)
}

fn bench(args: &[&str]) -> Vec<serde_json::Value> {
    let dir = tempfile_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resizer-bench"))
        .args(args)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("resizer-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.bin"), b"image-a").unwrap();
    std::fs::write(dir.join("b.bin"), b"image-b").unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_open_loop_sends_on_schedule_and_counts_statuses() {
    let (url, hits) = start_server().await;
    let rows = tokio::task::spawn_blocking(move || {
        bench(&[
            "--url",
            &url,
            "--rate",
            "100",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--json",
        ])
    })
    .await
    .unwrap();
    let r = &rows[0];
    assert_eq!(r["mode"], "open");
    assert_eq!(r["sent"], 100, "{r}");
    assert_eq!(hits.load(Ordering::Relaxed), 100);
    assert_eq!(r["statuses"]["200"], 75, "{r}");
    assert_eq!(r["statuses"]["503"], 25, "{r}");
    assert!(r["p99_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_closed_loop_and_sweep_report() {
    let (url, _) = start_server().await;
    let u = url.clone();
    let rows = tokio::task::spawn_blocking(move || {
        bench(&[
            "--url",
            &u,
            "--concurrency",
            "4",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--json",
        ])
    })
    .await
    .unwrap();
    assert_eq!(rows[0]["mode"], "closed");
    assert!(rows[0]["completed"].as_u64().unwrap() > 10);
    // Every fourth answer is a 503, so the sweep must stop at its first stage.
    let out = tokio::task::spawn_blocking(move || {
        let dir = tempfile_dir();
        std::process::Command::new(env!("CARGO_BIN_EXE_resizer-bench"))
            .args([
                "--url",
                &url,
                "--sweep",
                "--start",
                "50",
                "--step",
                "50",
                "--duration",
                "0.5",
                "--warmup",
                "0",
            ])
            .arg(&dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tip-over: already at the first rate 50 req/s"),
        "{text}"
    );
}
