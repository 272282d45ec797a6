//! The web consoles: the tenant console on the public port and the operator
//! console on the admin port, both at `/console/`.
//!
//! Everything the browser runs is in `assets/`, embedded at compile time: no
//! CDN, no Node at run time, no build step (plain ES modules; the one
//! library, uPlot, is vendored by `scripts/vendor-console.sh`, pinned by its
//! npm integrity). The pages talk to the same JSON API as everyone else, with
//! the key or token the user typed, kept in `sessionStorage` (never a cookie,
//! never `localStorage`): the consoles hold no authority of their own, so they
//! add no way in. Every answer carries a strict Content-Security-Policy
//! (scripts and styles from this origin only, no inline code), and the
//! scripts build the DOM with `textContent`, never `innerHTML`, so a tenant
//! named `<img src=x onerror=alert(1)>` is shown as text.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Which console a port serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// Tenants, signed in with an API key (public port).
    Tenant,
    /// Operators, signed in with the admin token (admin port).
    Operator,
}

/// The policy every console answer carries: this origin's scripts, styles
/// and API only; images also from `blob:` (a resize result shown in place);
/// no inline script or style, no framing, no forms posting anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// An embedded file: its name under `/console/`, type and bytes.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:expr) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The files both consoles share.
const ASSETS: &[Asset] = &[
    asset!("console.css", CSS),
    asset!("common.js", JS),
    asset!("tenant.js", JS),
    asset!("operator.js", JS),
    asset!("vendor/uplot.js", JS),
    asset!("vendor/uplot.css", CSS),
    asset!("vendor/uplot.LICENSE", "text/plain; charset=utf-8"),
];

const TENANT_PAGE: &[u8] = include_bytes!("../assets/tenant.html");
const OPERATOR_PAGE: &[u8] = include_bytes!("../assets/operator.html");

/// The routes of `console` (merge into the port's router).
pub fn routes<S: Clone + Send + Sync + 'static>(console: Console) -> Router<S> {
    let page = match console {
        Console::Tenant => TENANT_PAGE,
        Console::Operator => OPERATOR_PAGE,
    };
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route(
            "/console/",
            get(move || async move { respond("text/html; charset=utf-8", page) }),
        )
        .route("/console/{*file}", get(file))
}

async fn file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => respond(a.mime, a.body),
        None => not_found(),
    }
}

fn respond(mime: &'static str, body: &'static [u8]) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    secure(headers);
    response
}

/// The headers of every console answer: the policy, no sniffing, no
/// referrer (URLs may carry tenant ids), no framing, revalidate always
/// (a new binary's scripts are used at once).
fn secure(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

fn not_found() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":{"code":"not_found","message":"no such console file"}}"#,
    )
        .into_response();
    secure(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(console: Console, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = routes::<()>(console).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, parts.headers, bytes)
    }

    #[tokio::test]
    async fn test_pages_and_assets_carry_the_policy_and_nothing_else_is_served() {
        let (status, headers, body) = get(Console::Tenant, "/console/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert!(String::from_utf8(body).unwrap().contains("tenant.js"));
        let (_, _, body) = get(Console::Operator, "/console/").await;
        assert!(String::from_utf8(body).unwrap().contains("operator.js"));
        let (status, headers, _) = get(Console::Operator, "/console/vendor/uplot.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], JS);
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        for path in [
            "/console/../Cargo.toml",
            "/console/tenant.html",
            "/console/vendor/",
            "/console/x.js",
        ] {
            let (status, headers, _) = get(Console::Tenant, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        }
        let (status, _, _) = get(Console::Tenant, "/console").await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    }

    /// An `on…=` attribute (inline event handler) anywhere in the markup.
    fn has_handler_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].trim_start().starts_with('=')
        })
    }

    #[test]
    fn test_no_asset_has_inline_script_or_uses_inner_html() {
        assert!(has_handler_attribute("<img src=x onerror=alert(1)>"));
        assert!(!has_handler_attribute("<p>one of them</p>"));
        for page in [TENANT_PAGE, OPERATOR_PAGE] {
            let html = std::str::from_utf8(page).unwrap();
            assert!(
                !html.contains("<script>") && !has_handler_attribute(html),
                "inline code in a page"
            );
            assert!(!html.contains("style="), "inline style in a page");
        }
        for a in ASSETS.iter().filter(|a| !a.name.starts_with("vendor/")) {
            let text = std::str::from_utf8(a.body).unwrap();
            assert!(
                !text.contains("innerHTML") && !text.contains("eval("),
                "{}",
                a.name
            );
        }
    }
}
