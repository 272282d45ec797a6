//! Reading request bodies within their limits, and draining the unread body
//! of an early refusal.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use resizer_core::ErrorCode;

use crate::error::ApiError;

/// Time spent draining an unread body after an early refusal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The length a request declares, if it declares a valid one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads the body up to `max` bytes, refusing early on a declared length and
/// while streaming otherwise, so an oversized body is never buffered whole.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: u64,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds the limit of {max} bytes"),
        )
    };
    if declared_length(headers).is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let limited = Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX));
    let too_slow = || {
        ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body was not received in time (too slow, or not whole before the deadline)",
        )
    };
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(too_slow()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) if crate::listener::is_body_too_slow(e.as_ref()) => Err(too_slow()),
        Ok(Err(_)) => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "the request body could not be read",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Reads and discards a body the handler refused before reading, so the
/// client, which may still be sending it, gets to read the error instead of
/// a reset connection. Bounded in bytes and time; nothing is kept. A client
/// that asked `Expect: 100-continue` has not sent the body, so nothing is read.
/// After a refusal (`refused`), drains what the client still sends of a body
/// never read (`unread`), so the refusal reaches it; an answer has nothing to drain.
pub(crate) async fn drain_after_refusal(refused: bool, headers: &HeaderMap, unread: Option<Body>, max: u64) {
    if refused && let Some(body) = unread {
        drain_unread(headers, body, max).await;
    }
}

pub(crate) async fn drain_unread(headers: &HeaderMap, body: Body, max: u64) {
    let expects_continue = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let declared_too_large = declared_length(headers).is_some_and(|len| len > max);
    if expects_continue || declared_too_large {
        return;
    }
    let mut body = body;
    let mut seen = 0u64;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > max {
                    break;
                }
            }
        }
    })
    .await;
}
