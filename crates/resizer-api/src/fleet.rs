//! `GET /admin/v1/fleet`: every node's health, readiness and headline
//! numbers, for the operator console.
//!
//! The node answering always reports itself (its own metrics registry; in
//! `resizer serve` that is every role). Other nodes are the ones it was told
//! about (`console.fleet`, `name=url` pairs; `deploy/cluster.sh` lists every
//! component for the identity service): each is asked for `/readyz` and
//! `/metrics` with the cluster secret, in parallel, each call bounded, so a
//! node that hangs shows as down after the bound instead of stalling the page.
//! Counters are reported as totals; the console turns two polls into rates.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::AdminState;
use crate::error::{ApiError, ErrorBody};

/// How long one peer may take to answer one call.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// Most peers one answer asks (the config is bounded to this too).
pub const MAX_PEERS: usize = 64;
/// Most bytes read from one peer's answer: a metrics page is tens of KiB, and a
/// URL that points at something else must not fill this node's memory.
pub const MAX_PEER_BODY: usize = 4 << 20;

/// The nodes an admin listener reports besides itself, and how to reach them.
#[derive(Clone)]
pub struct Fleet {
    /// This node's name in the list.
    pub own_name: String,
    /// Other nodes: name and base URL of a listener serving `/readyz` and `/metrics`.
    pub peers: Vec<(String, String)>,
    /// Presented to peers (their observers accept it).
    pub cluster_secret: Option<String>,
    client: reqwest::Client,
}

impl Fleet {
    /// A fleet of this node alone, or with `peers` reached with `cluster_secret`.
    pub fn new(own_name: &str, peers: Vec<(String, String)>, cluster_secret: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(PEER_TIMEOUT)
            .timeout(PEER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            own_name: own_name.to_string(),
            peers: peers.into_iter().take(MAX_PEERS).collect(),
            cluster_secret,
            client,
        }
    }
}

/// One node as the console shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    /// Its name (`serve`, `identity`, `api-1`, …).
    name: String,
    /// Where it was asked; `null` for the node answering.
    url: Option<String>,
    /// It answered.
    up: bool,
    /// `/readyz` said ready; `null` for the node answering (up by definition) and roles without one.
    ready: Option<bool>,
    /// `/readyz`'s detail, as the node gave it.
    #[schema(value_type = Option<Object>)]
    readiness: Option<serde_json::Value>,
    /// Headline numbers from its metrics; `null` when it did not answer.
    metrics: Option<Headline>,
    /// Why it is shown down.
    error: Option<String>,
}

/// `GET /admin/v1/fleet`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FleetView {
    /// The node answering first, then the others in configuration order.
    nodes: Vec<NodeView>,
}

/// What one node's metrics say, totals since it started.
#[derive(Debug, Default, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Headline {
    /// HTTP requests answered (`resizer_http_requests_total`).
    pub requests_total: f64,
    /// Of which 5xx.
    pub errors_total: f64,
    /// Latency p50 and p99 since start, ms (`resizer_http_request_duration_seconds`); `null` before any request.
    pub p50_ms: Option<f64>,
    /// See `p50_ms`.
    pub p99_ms: Option<f64>,
    /// Jobs waiting (`resizer_queue_depth`).
    pub queue_depth: Option<f64>,
    /// Jobs refused by the queue (`resizer_queue_refusals_total`) and requests refused at admission (`resizer_api_rejections_total`).
    pub refusals_total: f64,
    /// Imaging threads busy (`resizer_worker_jobs_in_flight`).
    pub imaging_busy: Option<f64>,
    /// Seconds since its auth cache heard from the identity feed.
    pub auth_cache_age_seconds: Option<f64>,
    /// 1 where this node holds the aggregator lease.
    pub aggregator_active: Option<f64>,
}

/// Every node's health and numbers.
#[utoipa::path(
    get,
    path = "/admin/v1/fleet",
    tag = "admin",
    operation_id = "fleet",
    responses(
        (status = 200, description = "The nodes.", body = FleetView),
        (status = 401, description = "The admin token is required.", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens from this address.", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("admin_token" = [])),
)]
pub(crate) async fn fleet(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let fleet = state.fleet();
    let own = NodeView {
        name: fleet.own_name.clone(),
        url: None,
        up: true,
        ready: None,
        readiness: None,
        metrics: Some(headline(&resizer_telemetry::Metrics::global().render())),
        error: None,
    };
    let peers =
        futures_util::future::join_all(fleet.peers.iter().map(|(name, url)| ask_peer(fleet, name, url)))
            .await;
    let mut nodes = vec![own];
    nodes.extend(peers);
    Ok(Json(FleetView { nodes }).into_response())
}

async fn ask_peer(fleet: &Fleet, name: &str, url: &str) -> NodeView {
    let base = url.trim_end_matches('/');
    let get = |path: &str| {
        let mut request = fleet.client.get(format!("{base}{path}"));
        if let Some(secret) = &fleet.cluster_secret {
            request = request.bearer_auth(secret);
        }
        request.send()
    };
    let (ready, metrics) = tokio::join!(get("/readyz"), get("/metrics"));
    let mut view = NodeView {
        name: name.to_string(),
        url: Some(base.to_string()),
        up: false,
        ready: None,
        readiness: None,
        metrics: None,
        error: None,
    };
    match ready {
        Ok(r) => {
            view.up = true;
            // Workers and aggregators serve no `/readyz`: up is all they say.
            if r.status() != reqwest::StatusCode::NOT_FOUND {
                view.ready = Some(r.status().is_success());
                view.readiness = body_capped(r).await.and_then(|b| serde_json::from_slice(&b).ok());
            }
        }
        Err(e) => view.error = Some(peer_error(&e)),
    }
    if let Ok(r) = metrics
        && r.status().is_success()
        && let Some(body) = body_capped(r).await
    {
        view.metrics = Some(headline(&String::from_utf8_lossy(&body)));
    }
    view
}

/// A peer's whole body, or `None` past [`MAX_PEER_BODY`] or on a read error.
async fn body_capped(mut response: reqwest::Response) -> Option<Vec<u8>> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_PEER_BODY as u64)
    {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_PEER_BODY {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

fn peer_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", PEER_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        "the request failed".into()
    }
}

/// The headline numbers of a Prometheus text exposition.
pub fn headline(text: &str) -> Headline {
    let samples: Vec<Sample<'_>> = text.lines().filter_map(sample).collect();
    let sum = |name: &str, keep: &dyn Fn(&str) -> bool| -> Option<f64> {
        let values: Vec<f64> = samples
            .iter()
            .filter(|s| s.name == name && keep(s.labels))
            .map(|s| s.value)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    };
    let all = |_: &str| true;
    let server_error = |labels: &str| label(labels, "status").is_some_and(|s| s.starts_with('5'));
    let buckets = histogram(&samples, "resizer_http_request_duration_seconds");
    Headline {
        requests_total: sum("resizer_http_requests_total", &all).unwrap_or(0.0),
        errors_total: sum("resizer_http_requests_total", &server_error).unwrap_or(0.0),
        p50_ms: quantile(&buckets, 0.5).map(|s| s * 1000.0),
        p99_ms: quantile(&buckets, 0.99).map(|s| s * 1000.0),
        queue_depth: sum("resizer_queue_depth", &all),
        refusals_total: sum("resizer_queue_refusals_total", &all).unwrap_or(0.0)
            + sum("resizer_api_rejections_total", &all).unwrap_or(0.0),
        imaging_busy: sum("resizer_worker_jobs_in_flight", &all),
        auth_cache_age_seconds: sum("resizer_auth_cache_age_seconds", &all),
        aggregator_active: sum("resizer_aggregator_active", &all),
    }
}

struct Sample<'a> {
    name: &'a str,
    labels: &'a str,
    value: f64,
}

/// One `name{labels} value` line; comments and malformed lines are skipped.
fn sample(line: &str) -> Option<Sample<'_>> {
    if line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    Some(Sample { name, labels, value })
}

/// The value of label `key` (values are quoted; ours never contain `",`).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split("\",").find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then(|| v.trim_matches('"'))
    })
}

/// Cumulative bucket counts by upper bound, summed over every label set.
fn histogram(samples: &[Sample<'_>], name: &str) -> Vec<(f64, f64)> {
    let bucket = format!("{name}_bucket");
    let mut by_le: Vec<(f64, f64)> = Vec::new();
    for s in samples.iter().filter(|s| s.name == bucket) {
        let Some(le) = label(s.labels, "le").and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        match by_le.iter_mut().find(|(bound, _)| *bound == le) {
            Some(entry) => entry.1 += s.value,
            None => by_le.push((le, s.value)),
        }
    }
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_le
}

/// The `q` quantile of cumulative buckets, interpolated inside its bucket (as
/// Prometheus' `histogram_quantile` does); the last finite bound when it falls in `+Inf`.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = (rank - lower.1) / (count - lower.1).max(f64::MIN_POSITIVE);
            return Some(lower.0 + (bound - lower.0) * within);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE resizer_http_requests_total counter
resizer_http_requests_total{route="/v1/resize",status="200"} 90
resizer_http_requests_total{route="/v1/resize",status="503"} 6
resizer_http_requests_total{route="/healthz",status="200"} 4
resizer_http_request_duration_seconds_bucket{route="/v1/resize",le="0.01"} 50
resizer_http_request_duration_seconds_bucket{route="/v1/resize",le="0.1"} 96
resizer_http_request_duration_seconds_bucket{route="/v1/resize",le="+Inf"} 96
resizer_http_request_duration_seconds_bucket{route="/healthz",le="0.01"} 4
resizer_http_request_duration_seconds_bucket{route="/healthz",le="0.1"} 4
resizer_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 4
resizer_queue_depth 3
resizer_api_rejections_total{reason="rate_limited"} 2
garbage line
resizer_worker_jobs_in_flight 1
"#;

    #[test]
    fn test_headline_reads_totals_errors_and_percentiles() {
        let h = headline(TEXT);
        assert_eq!((h.requests_total, h.errors_total), (100.0, 6.0));
        // 54 of 100 at or under 10 ms: the median sits just under 10 ms.
        let p50 = h.p50_ms.unwrap();
        assert!((9.0..=10.0).contains(&p50), "{p50}");
        let p99 = h.p99_ms.unwrap();
        assert!((97.0..=100.0).contains(&p99), "{p99}");
        assert_eq!((h.queue_depth, h.imaging_busy), (Some(3.0), Some(1.0)));
        assert_eq!(h.refusals_total, 2.0);
        assert_eq!(h.aggregator_active, None);
        assert_eq!(headline("").p99_ms, None);
    }

    #[test]
    fn test_quantile_of_an_overflowing_histogram_is_its_last_bound() {
        let b = [(0.1, 0.0), (1.0, 0.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(&b, 0.5), Some(1.0));
        assert_eq!(quantile(&[(1.0, 0.0)], 0.5), None);
    }

    /// A peer whose pages are too big (here a streamed, unsized metrics page) is
    /// shown up without numbers; one within the bound is read.
    #[tokio::test]
    async fn test_a_peer_body_past_the_bound_is_not_read() {
        use axum::routing::get;
        let big = || async {
            let chunk = bytes::Bytes::from(vec![b'#'; 64 << 10]);
            let chunks =
                (0..(MAX_PEER_BODY / chunk.len() + 2)).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
            axum::body::Body::from_stream(futures_util::stream::iter(chunks))
        };
        let app = axum::Router::new()
            .route(
                "/readyz",
                get(|| async { axum::Json(serde_json::json!({"ready": true})) }),
            )
            .route("/metrics", get(big))
            .route("/small/readyz", get(|| async { "{}" }))
            .route("/small/metrics", get(|| async { TEXT }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let fleet = Fleet::new("self", vec![], None);

        let big = ask_peer(&fleet, "big", &base).await;
        assert!(big.up);
        assert_eq!(big.readiness, Some(serde_json::json!({"ready": true})));
        assert_eq!(big.metrics, None);
        let small = ask_peer(&fleet, "small", &format!("{base}/small")).await;
        assert_eq!(small.metrics.map(|m| m.requests_total), Some(100.0));
        server.abort();
    }
}
