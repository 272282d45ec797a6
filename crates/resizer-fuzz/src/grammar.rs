//! The text grammars of the public API: the resize query, `Accept`, RFC 3339
//! and the usage query, and the headers we parse.

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use resizer_core::ImageFormat;
use resizer_core::api_key::{KeyHash, key_id_of};
use resizer_core::capability::JobSigner;
use resizer_core::format::negotiate;
use resizer_core::params::ResizeParams;
use resizer_core::time::{parse_rfc3339_ms, rfc3339};
use resizer_core::trace::TraceContext;

const MAX_OUTPUT_SIDE: u32 = 8192;
/// The longest slice a usage query may cover (docs/errors.md: 400 days).
const MAX_SPAN_MS: u64 = 400 * 86_400_000;

/// The query of a request line, as the router would see it; `None` when no URI holds it.
fn uri_with_query(path: &str, query: &[u8]) -> Option<Uri> {
    let mut s = String::with_capacity(path.len() + 1 + query.len());
    s.push_str(path);
    s.push('?');
    s.push_str(std::str::from_utf8(query).ok()?);
    s.parse().ok()
}

/// `POST /v1/resize`'s query: refused cleanly, or read into parameters that
/// keep the limits and print back to the same parameters.
pub fn resize_query(data: &[u8]) {
    let Some(uri) = uri_with_query("/v1/resize", data) else {
        return;
    };
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(&uri) else {
        return;
    };
    let params = match ResizeParams::parse(&pairs, MAX_OUTPUT_SIDE) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(params.width.is_some() || params.height.is_some());
    for side in [params.width, params.height].into_iter().flatten() {
        assert!((1..=MAX_OUTPUT_SIDE).contains(&side), "side {side} passed");
    }
    assert!(params.quality.is_none_or(|q| (1..=100).contains(&q)));
    let printed: Vec<(String, String)> = params
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(
        ResizeParams::parse(&printed, MAX_OUTPUT_SIDE).as_ref(),
        Ok(&params)
    );
}

/// `Accept` negotiation: always a format we write, and stable: the winner
/// negotiated against itself wins again (it is strictly preferred, or a tie
/// kept the input). A header naming no image range keeps the input; an
/// animation never goes to AVIF.
pub fn accept(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let names_none = {
        let lower = value.to_ascii_lowercase();
        !lower.contains("image/") && !lower.contains("*/*")
    };
    for (input, animated) in ImageFormat::ALL.into_iter().flat_map(|f| [(f, false), (f, true)]) {
        let chosen = negotiate(Some(value), input, animated);
        assert!(chosen.writable());
        assert!(
            !(animated && chosen == ImageFormat::Avif),
            "{value:?}: AVIF is written still"
        );
        assert_eq!(
            negotiate(Some(value), chosen, animated),
            chosen,
            "{value:?} from {input}"
        );
        if names_none {
            assert_eq!(
                chosen,
                negotiate(None, input, animated),
                "{value:?} names no image range"
            );
        }
    }
}

/// RFC 3339 instants and the usage endpoints' query.
pub fn usage_query(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(ms) = parse_rfc3339_ms(text)
    {
        // Printing the second and reading it back loses only the fraction.
        let secs = ms.div_euclid(1000);
        assert_eq!(parse_rfc3339_ms(&rfc3339(secs)), Some(secs * 1000), "{text:?}");
    }
    let Some(uri) = uri_with_query("/v1/usage", data) else {
        return;
    };
    let Ok(params) = resizer_api::usage::params(&uri) else {
        return;
    };
    let now_ms = 1_800_000_000_000;
    if let Ok(slice) = params.slice(now_ms) {
        assert!(slice.from_ms < slice.to_ms, "{slice:?}");
        assert!(
            slice.to_ms - slice.from_ms <= MAX_SPAN_MS,
            "{slice:?} is over the span limit"
        );
    }
}

/// The headers we read: byte 0 picks `traceparent`, an API key (bearer, key
/// id, stored hash) or a job token; the rest is the value.
pub fn headers(data: &[u8]) {
    let [which, rest @ ..] = data else {
        return;
    };
    match which % 3 {
        0 => traceparent(rest),
        1 => api_key(rest),
        _ => job_token(rest),
    }
}

fn traceparent(value: &[u8]) {
    let Ok(s) = std::str::from_utf8(value) else {
        return;
    };
    if let Some(t) = TraceContext::parse(s) {
        assert_eq!(TraceContext::parse(&t.header()), Some(t));
        assert_ne!(t.trace_id_hex(), "0".repeat(32));
        assert_eq!(t.child().trace_id_hex(), t.trace_id_hex());
    }
}

fn api_key(value: &[u8]) {
    let Ok(v) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, v);
    let Some(token) = resizer_api::admission::bearer(&headers) else {
        return;
    };
    assert_eq!(token, token.trim());
    let _ = key_id_of(token);
    if let Some(hash) = KeyHash::from_hex(token) {
        assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash));
    }
    assert!(KeyHash::of(token).verify(token));
}

fn job_token(value: &[u8]) {
    let Ok(s) = std::str::from_utf8(value) else {
        return;
    };
    let signer = JobSigner::new("fuzz cluster secret");
    let (job, presented) = s.split_once(' ').unwrap_or((s, ""));
    assert_eq!(signer.verify(job, presented), presented == signer.token(job));
    assert!(signer.verify(job, &signer.token(job)));
}
