//! Applied to every route: a request id (echoed as `X-Request-Id`) and the
//! request count and latency histogram by route and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use resizer_core::ids::RequestId;

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Assigns a request id and records metrics.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let request_id = RequestId::random();
    request.extensions_mut().insert(request_id.clone());
    let started = Instant::now();
    metrics::gauge!("resizer_http_requests_in_flight").increment(1.0);
    let mut response = next.run(request).await;
    metrics::gauge!("resizer_http_requests_in_flight").decrement(1.0);
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("status", status)];
    metrics::counter!("resizer_http_requests_total", &labels).increment(1);
    metrics::histogram!("resizer_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}
