//! The public handlers in process: `Router` + `oneshot`, the in-process queue
//! and a real in-process worker (or a scripted one), no binary, no sockets.
//! The error matrix lives here; `crates/resizer/tests` keeps the black-box
//! tests of the real binary.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use resizer_api::{ApiConfig, ApiState};
use resizer_core::ErrorCode;
use resizer_core::api_key;
use resizer_core::ids::TenantId;
use resizer_identity::{AuthCache, Snapshot, Tenant};
use resizer_imaging::Limits;
use resizer_jobs::in_process::InProcessTransport;
use resizer_jobs::results::ResultWaiters;
use resizer_jobs::staging::StagingArea;
use resizer_jobs::{JobDescriptor, JobFailure, JobRunner, ResultSink, StagingClient};
use resizer_queue::JobQueue;
use resizer_worker::{ImagingPool, Worker, WorkerConfig};
use serde_json::Value;
use tower::ServiceExt;

/// Who does the jobs.
enum Workers {
    /// A real worker with one imaging thread.
    Real,
    /// Nobody: every job waits until its deadline.
    None,
    /// Every job fails with this.
    Failing(JobFailure),
}

struct Setup {
    max_body_bytes: u64,
    job_deadline: Duration,
    queue_capacity: usize,
    rate: (u32, u32),
    workers: Workers,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            job_deadline: Duration::from_secs(10),
            queue_capacity: 16,
            rate: (1000, 1000),
            workers: Workers::Real,
        }
    }
}

struct Api {
    router: Router,
    key: String,
    queue: JobQueue<JobDescriptor>,
    /// Stops the in-process worker when the test ends.
    _stop: tokio_util::sync::DropGuard,
}

struct Reply {
    status: u16,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The contract's error shape with this status and code.
    fn assert_error(&self, status: u16, code: ErrorCode) {
        let json = self.json();
        assert_eq!(
            (self.status, json["error"]["code"].as_str()),
            (status, Some(code.as_str())),
            "{json}"
        );
        assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

fn limits() -> Limits {
    Limits {
        max_input_pixels: 50_000_000,
        max_output_side: 8192,
        shrink_on_load: resizer_imaging::ShrinkOnLoad::Quality,
        max_frames: 500,
    }
}

/// An auth cache holding one tenant with one key; returns the key's secret.
fn auth(rate: (u32, u32)) -> (Arc<AuthCache>, String) {
    let issued = api_key::issue();
    let tenant = Tenant {
        id: TenantId::random(),
        name: "acme".into(),
        rate_limit_rps: rate.0,
        burst: rate.1,
        suspended: false,
        created_at: 0,
        updated_at: 0,
        originals_quota: Default::default(),
    };
    let cache = Arc::new(AuthCache::new());
    cache.load(Snapshot {
        seq: 1,
        keys: vec![(issued.key_id, tenant.id.clone(), issued.hash.to_hex())],
        tenants: vec![tenant],
        signing_keys: Vec::new(),
        flags: Vec::new(),
    });
    (cache, issued.secret)
}

/// Starts the job's doers for `setup.workers` on `queue`.
fn start_workers(
    workers: Workers,
    queue: JobQueue<JobDescriptor>,
    transport: Arc<InProcessTransport>,
) -> tokio_util::sync::DropGuard {
    let stop = tokio_util::sync::CancellationToken::new();
    match workers {
        Workers::Real => {
            let pool = Arc::new(ImagingPool::start(1, 1, limits()));
            let config = WorkerConfig {
                name: "test-worker".into(),
                pull_wait: Duration::from_millis(100),
            };
            let worker = Worker::new(config, queue, transport.clone(), transport, pool);
            tokio::spawn(worker.run(stop.child_token()));
        }
        Workers::None => {}
        Workers::Failing(failure) => {
            tokio::spawn(async move {
                while let Ok(Some(d)) = queue.pull(Duration::from_secs(60)).await {
                    let _ = transport.fetch(&d.job).await;
                    let _ = transport.deliver(&d.job, Err(failure.clone())).await;
                    let _ = d.ack().await;
                }
            });
        }
    }
    stop.drop_guard()
}

fn start(setup: Setup) -> Api {
    let queue: JobQueue<JobDescriptor> = JobQueue::memory(setup.queue_capacity);
    let (staging, results) = (StagingArea::new(64 << 20), ResultWaiters::new());
    let transport = Arc::new(InProcessTransport {
        node: "test".into(),
        staging: staging.clone(),
        results: results.clone(),
    });
    let stop = start_workers(setup.workers, queue.clone(), transport);
    let observed = queue.clone();
    let (cache, key) = auth(setup.rate);
    let jobs = JobRunner::new("test".into(), queue, staging, results).with_joins(true);
    let config = ApiConfig {
        node: "test".into(),
        max_body_bytes: setup.max_body_bytes,
        limits: limits(),
        job_deadline: setup.job_deadline,
        body_read_timeout: Duration::from_secs(5),
        max_in_flight: 64,
        max_in_flight_per_tenant: 64,
    };
    let state = ApiState::new(
        config,
        cache,
        Arc::new(jobs),
        Arc::new(AtomicBool::new(true)),
        None,
    );
    Api {
        router: state.router(),
        key,
        queue: observed,
        _stop: stop,
    }
}

impl Api {
    async fn resize(&self, key: Option<&str>, query: &str, body: Vec<u8>) -> Reply {
        self.send(Request::post(format!("/v1/resize?{query}")), key, body)
            .await
    }

    /// A resize that belongs to the caller's trace.
    async fn resize_traced(&self, traceparent: &str, query: &str, body: Vec<u8>) -> Reply {
        let request = Request::post(format!("/v1/resize?{query}")).header("traceparent", traceparent);
        self.send(request, Some(&self.key), body).await
    }

    async fn send(
        &self,
        mut request: axum::http::request::Builder,
        key: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }
}

fn jpeg() -> Vec<u8> {
    resizer_testing::read_corpus("jpeg-256k/a03_ColorfulCups.jpg")
}

#[tokio::test]
async fn test_a_resize_goes_round_in_process() {
    let api = start(Setup::default());
    let reply = api.resize(Some(&api.key), "width=100&format=png", jpeg()).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.headers["content-type"], "image/png");
    assert!(reply.body.starts_with(b"\x89PNG"));
    assert!(reply.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn test_a_lying_traceparent_starts_a_new_trace() {
    let api = start(Setup::default());
    for lie in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_string(),
        format!("00-{}-00f067aa0ba902b7-01", "a".repeat(4000)),
        "garbage".to_string(),
    ] {
        let reply = api.resize_traced(&lie, "width=10", jpeg()).await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let ours = reply.headers["traceparent"].to_str().unwrap();
        let parsed = resizer_core::trace::TraceContext::parse(ours).expect("a valid traceparent back");
        assert!(
            !lie.contains(&parsed.trace_id_hex()),
            "the lie was continued: {ours}"
        );
        assert_eq!(ours.len(), 55);
    }
}

#[tokio::test]
async fn test_the_error_matrix() {
    let api = start(Setup {
        max_body_bytes: 1 << 20,
        ..Setup::default()
    });
    let key = Some(api.key.as_str());
    api.resize(None, "width=10", jpeg())
        .await
        .assert_error(401, ErrorCode::Unauthenticated);
    api.resize(Some("rsz_nonsense"), "width=10", jpeg())
        .await
        .assert_error(401, ErrorCode::Unauthenticated);
    api.resize(key, "width=10&colour=red", jpeg())
        .await
        .assert_error(400, ErrorCode::InvalidParameter);
    api.resize(key, "width=0", jpeg())
        .await
        .assert_error(400, ErrorCode::InvalidParameter);
    api.resize(key, "width=100000", jpeg())
        .await
        .assert_error(400, ErrorCode::OutputTooLarge);
    api.resize(key, "width=10", Vec::new())
        .await
        .assert_error(400, ErrorCode::EmptyBody);
    api.resize(key, "width=10", b"II*\0 a TIFF is not read".to_vec())
        .await
        .assert_error(415, ErrorCode::UnsupportedFormat);
    let j = jpeg();
    api.resize(key, "width=10", j[..j.len() / 2].to_vec())
        .await
        .assert_error(422, ErrorCode::UndecodableImage);
    api.resize(key, "width=10", vec![0xff; 2 << 20])
        .await
        .assert_error(413, ErrorCode::PayloadTooLarge);
    // After all that, the node still resizes.
    assert_eq!(api.resize(key, "width=10", jpeg()).await.status, 200);
}

#[tokio::test]
async fn test_over_the_rate_is_429_with_retry_after() {
    let api = start(Setup {
        rate: (1, 1),
        ..Setup::default()
    });
    let key = Some(api.key.as_str());
    assert_eq!(api.resize(key, "width=10", jpeg()).await.status, 200);
    let refused = api.resize(key, "width=10", jpeg()).await;
    refused.assert_error(429, ErrorCode::RateLimited);
    assert!(refused.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn test_no_worker_is_504_and_a_full_queue_503() {
    let api = start(Setup {
        workers: Workers::None,
        job_deadline: Duration::from_millis(500),
        queue_capacity: 1,
        ..Setup::default()
    });
    let api = Arc::new(api);
    let first = {
        let api = api.clone();
        tokio::spawn(async move { api.resize(Some(&api.key), "width=10", jpeg()).await })
    };
    // The first job sits in the queue until its deadline; meanwhile the queue is full.
    while api.queue.depth() != Some(1) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = api.resize(Some(&api.key), "width=11", jpeg()).await;
    second.assert_error(503, ErrorCode::Overloaded);
    assert!(second.headers.contains_key("retry-after"));
    first
        .await
        .unwrap()
        .assert_error(504, ErrorCode::DeadlineExceeded);
}

/// A `tracing` writer into a shared buffer, to read what the node logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn test_an_internal_error_is_logged_once_with_its_request_id_and_never_sent() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Callsites first reached by tests running without a subscriber cached "never"; ask again.
    tracing::callsite::rebuild_interest_cache();
    let api = start(Setup {
        workers: Workers::Failing(JobFailure {
            code: ErrorCode::Internal,
            message: "codec exploded at /var/secret/path".into(),
        }),
        ..Setup::default()
    });
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = api.resize_traced(caller, "width=10", jpeg()).await;
    reply.assert_error(500, ErrorCode::Internal);
    // The answer names our span in the caller's trace.
    let ours = reply.headers["traceparent"].to_str().unwrap();
    assert!(ours.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{ours}");
    assert_ne!(ours, caller);
    let body = String::from_utf8_lossy(&reply.body);
    assert!(
        !body.contains("secret"),
        "internal detail reached the client: {body}"
    );
    let request_id = reply.headers["x-request-id"].to_str().unwrap().to_string();
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains("codec exploded")).collect();
    assert_eq!(lines.len(), 1, "logged {} times:\n{logged}", lines.len());
    assert!(lines[0].contains(&request_id), "{}", lines[0]);
    assert!(
        lines[0].contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "no trace id: {}",
        lines[0]
    );
}

/// The document is generated from the handlers, but the resize query is read
/// by hand ([`ResizeParams::parse`]): hold the two to the same names and
/// values, and every documented operation to a route that exists.
#[tokio::test]
async fn test_the_openapi_document_matches_what_the_handlers_read() {
    use resizer_core::params::ResizeParams;
    let api = start(Setup::default());
    let reply = api.send(Request::get("/openapi.json"), None, Vec::new()).await;
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert_eq!(doc["openapi"], "3.1.0");

    let params = doc["paths"]["/v1/resize"]["post"]["parameters"]
        .as_array()
        .unwrap();
    let query: Vec<&Value> = params.iter().filter(|p| p["in"] == "query").collect();
    let mut documented: Vec<&str> = query.iter().map(|p| p["name"].as_str().unwrap()).collect();
    documented.sort();
    let full = ResizeParams::parse(
        &[
            ("width", "10"),
            ("height", "10"),
            ("fit", "cover"),
            ("format", "png"),
            ("quality", "5"),
            ("enlarge", "true"),
            ("frames", "first"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
        8192,
    )
    .unwrap();
    let parsed: Vec<&str> = full.to_pairs().into_iter().map(|(k, _)| k).collect();
    assert_eq!(documented, parsed, "the documented query is the parsed one");
    for p in &query {
        let name = p["name"].as_str().unwrap();
        let values: Vec<String> = match p["schema"]["enum"].as_array() {
            Some(e) => e.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
            None if p["schema"]["type"] == "boolean" => vec!["true".into(), "false".into()],
            None => vec![
                p["schema"]["minimum"].to_string(),
                p["schema"]["maximum"].to_string(),
            ],
        };
        for v in values {
            let mut pairs = vec![(name.to_string(), v.clone())];
            if name != "width" {
                pairs.push(("width".into(), "10".into()));
            }
            assert!(
                ResizeParams::parse(&pairs, 8192).is_ok(),
                "{name}={v} is documented but refused"
            );
        }
    }
    assert_eq!(
        query.iter().find(|p| p["name"] == "width").unwrap()["schema"]["maximum"],
        8192
    );

    // Every documented operation is routed: nothing answers "no such route" or 405.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(path.as_str());
            let reply = api.send(request, None, Vec::new()).await;
            let routed = !matches!(reply.status, 404 | 405);
            assert!(
                routed,
                "{method} {path} is documented but answers {}",
                reply.status
            );
        }
    }
}
