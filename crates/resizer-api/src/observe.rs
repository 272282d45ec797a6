//! Applied to every route: a request id (echoed as `X-Request-Id`), the
//! request count and latency histogram by route and status, the one log line
//! of an internal or dependency error (with its request id), and the last line
//! of defence: a handler that panics answers the contract's JSON 500 with its
//! request id instead of dropping the connection.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use resizer_core::ErrorCode;
use resizer_core::ids::RequestId;
use resizer_core::trace::TraceContext;
use resizer_telemetry::GaugeGuard;
use tracing::Instrument;

use crate::error::{ApiError, ErrorDetail};

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The W3C Trace Context header: read from the caller, and sent back naming
/// this request's span, so a caller without a trace learns the one we started.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Assigns a request id, records metrics and turns a panic into a 500.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let request_id = RequestId::random();
    request.extensions_mut().insert(request_id.clone());
    // The caller's trace continues here; without one (or a malformed one) this request starts one.
    let trace = request
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::root, |parent| parent.child());
    request.extensions_mut().insert(trace);
    let span = tracing::info_span!("request", request_id = %request_id, trace_id = %trace.trace_id_hex());
    let started = Instant::now();
    let in_flight = GaugeGuard::raise(metrics::gauge!("resizer_http_requests_in_flight"));
    // Handlers hold no state another request could see half-updated across a
    // panic (shared maps are behind locks that recover or are released by
    // guards), so continuing after one is sound.
    let outcome = AssertUnwindSafe(next.run(request).instrument(span.clone()))
        .catch_unwind()
        .await;
    let _in_span = span.enter();
    drop(in_flight);
    let mut response = outcome.unwrap_or_else(|panic| {
        let what = panic_message(panic.as_ref());
        tracing::error!(request_id = %request_id, trace_id = %trace.trace_id_hex(), route = %route, panic = %what, "handler panicked");
        metrics::counter!("resizer_http_panics_total").increment(1);
        ApiError::new(ErrorCode::Internal, "an internal error occurred").into_response()
    });
    if let Some(ErrorDetail(detail)) = response.extensions_mut().remove::<ErrorDetail>() {
        tracing::error!(
            request_id = %request_id,
            trace_id = %trace.trace_id_hex(),
            route = %route,
            status = response.status().as_u16(),
            error = %detail,
            "request failed"
        );
    }
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("status", status)];
    metrics::counter!("resizer_http_requests_total", &labels).increment(1);
    metrics::histogram!("resizer_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&trace.header()) {
        response.headers_mut().insert(TRACEPARENT_HEADER, v);
    }
    response
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string panic payload")
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn test_a_panicking_handler_answers_json_500_with_its_request_id() {
        async fn boom() -> &'static str {
            let bytes = "é".as_bytes();
            let s = std::str::from_utf8(&bytes[..1]).unwrap();
            s.len().to_string().leak()
        }
        let router = Router::new()
            .route("/boom", get(boom))
            .layer(axum::middleware::from_fn(observe));
        let request = axum::http::Request::get("/boom").body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 500);
        assert!(response.headers().contains_key(REQUEST_ID_HEADER));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "internal");
    }
}
