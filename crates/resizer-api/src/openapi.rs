//! The OpenAPI 3.1 documents of the public and admin ports, generated from
//! the handlers' own annotations and the types they serialize, so the
//! document cannot drift from what the code answers. Each port serves its
//! own at `GET /openapi.json`; the admin port also serves it rendered as HTML
//! at `GET /docs` (Redoc, vendored in `assets/`, no CDN).
//!
//! The public document states this node's configured limits (body bytes,
//! input pixels, output side): it is built once per router from its config.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorObject};
use crate::public::ApiConfig;

/// The public port: resizing, the caller's usage, probes and metrics.
#[derive(OpenApi)]
#[openapi(
    info(title = "Resizer public API", description = "Resize images; read your own usage. Errors are always `{\"error\": {\"code\", \"message\"}}` (docs/errors.md)."),
    paths(
        crate::resize::resize,
        crate::public::own_usage,
        crate::public::own_audit,
        crate::originals::put_original,
        crate::originals::get_original,
        crate::originals::delete_original,
        crate::originals::list_originals,
        crate::variants::variant,
        crate::signing_keys::create_own,
        crate::signing_keys::revoke_own,
        crate::keys::list_own,
        crate::keys::create_own,
        crate::keys::revoke_own,
        crate::flags::own_flags,
        crate::public::healthz,
        crate::public::readyz,
        crate::public::metrics_text,
    ),
    components(schemas(ErrorBody, ErrorObject, crate::usage::BucketParam)),
    modifiers(&ApiKeyAuth, &AdminTokenAuth),
    tags(
        (name = "resize", description = "Images in, images out."),
        (name = "usage", description = "What you used, by hour or day."),
        (name = "delivery", description = "Originals stored once; variants by (signed) URL, cached."),
        (name = "keys", description = "Your tenant's API keys, managed with any of its live keys."),
        (name = "flags", description = "Features turned on for your tenant (feature flags)."),
        (name = "operations", description = "Health, readiness and metrics for operators and load balancers."),
    )
)]
pub struct PublicApi;

/// The admin port: tenants, keys, usage and audit of any tenant.
#[derive(OpenApi)]
#[openapi(
    info(title = "Resizer admin API", description = "Tenants, keys, usage and audit. Every operation needs the admin token."),
    paths(
        crate::admin::create_tenant,
        crate::admin::list_tenants,
        crate::admin::get_tenant,
        crate::admin::update_tenant,
        crate::admin::create_key,
        crate::admin::list_tenant_keys,
        crate::admin::revoke_key,
        crate::admin::create_signing_key,
        crate::admin::revoke_signing_key,
        crate::flags::list_flags,
        crate::flags::put_flag,
        crate::flags::delete_flag,
        crate::admin::tenant_usage,
        crate::admin::top_tenants,
        crate::fleet::fleet,
        crate::admin::tenant_audit,
        crate::public::healthz,
    ),
    components(schemas(ErrorBody, ErrorObject)),
    modifiers(&AdminTokenAuth),
    tags((name = "admin", description = "The management plane."))
)]
pub struct AdminApi;

/// An image's bytes in a request or response body.
pub struct ImageBytes;

impl utoipa::PartialSchema for ImageBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for ImageBytes {}

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        add_bearer(
            doc,
            "api_key",
            "A tenant's API key: `Authorization: Bearer <key>`.",
        );
    }
}

struct AdminTokenAuth;

impl Modify for AdminTokenAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        add_bearer(
            doc,
            "admin_token",
            "The admin token (`RESIZER_ADMIN_TOKEN`); on API nodes `/metrics` also takes the cluster secret.",
        );
    }
}

fn add_bearer(doc: &mut utoipa::openapi::OpenApi, name: &str, description: &str) {
    let mut http = Http::new(HttpAuthScheme::Bearer);
    http.description = Some(description.to_string());
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(name, SecurityScheme::Http(http));
}

/// The public document with `config`'s limits written into it.
pub fn public_document(config: &ApiConfig) -> serde_json::Value {
    let mut doc = to_json(PublicApi::openapi());
    let resize = &mut doc["paths"]["/v1/resize"]["post"];
    let side = config.limits.max_output_side;
    if let Some(params) = resize["parameters"].as_array_mut() {
        for p in params
            .iter_mut()
            .filter(|p| p["name"] == "width" || p["name"] == "height")
        {
            p["schema"]["maximum"] = side.into();
        }
    }
    resize["requestBody"]["description"] = format!(
        "The image: JPEG, PNG or WebP. At most {} bytes (413 above); at most {} pixels by its header (422 above); \
         the output's sides at most {side} pixels (400 `output_too_large` above).",
        config.max_body_bytes, config.limits.max_input_pixels
    )
    .into();
    resize["requestBody"]["required"] = true.into();
    doc
}

/// The admin document.
pub fn admin_document() -> serde_json::Value {
    to_json(AdminApi::openapi())
}

/// A generated document as JSON, with utoipa's one spelling slip mended.
fn to_json(doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut json = serde_json::to_value(doc).expect("the document is JSON");
    camel_case_links(&mut json);
    json
}

/// utoipa 5.5 writes a Link Object's fields in snake_case (`operation_id`);
/// OpenAPI spells them `operationId`, `operationRef`, `requestBody`, which
/// is what validators and Schemathesis read.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|r| r.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
            continue;
        };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(from) {
                    link.insert(to.to_string(), v);
                }
            }
        }
    }
}

/// A document ready to serve, rendered once.
#[derive(Clone)]
pub struct RenderedDocument(Bytes);

impl RenderedDocument {
    /// Renders `doc`.
    pub fn new(doc: &serde_json::Value) -> Self {
        Self(Bytes::from(
            serde_json::to_vec(doc).expect("the document is JSON"),
        ))
    }

    /// `GET /openapi.json`.
    pub fn response(&self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0.clone()).into_response()
    }
}

/// The reference page: Redoc reading `/openapi.json`, nothing loaded from elsewhere.
const DOCS_PAGE: &str = include_str!("../assets/docs.html");
/// Redoc's standalone bundle, gzipped as the npm package ships it re-compressed
/// (`scripts/vendor-redoc.sh` fetches and checks it).
const REDOC_GZ: &[u8] = include_bytes!("../assets/redoc.standalone.js.gz");

/// Only what the page itself needs: our script and Redoc's (Redoc sets inline
/// styles and draws with web workers from blobs).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `GET /docs`: the admin port's own API.
pub async fn admin_docs_page() -> Response {
    docs_page("/openapi.json")
}

/// `GET /docs/public`: the public port's API, as this process configures it.
pub async fn public_docs_page() -> Response {
    docs_page("/openapi/public.json")
}

fn docs_page(spec_url: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, DOCS_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        DOCS_PAGE.replace("SPEC_URL", spec_url),
    )
        .into_response()
}

/// `GET /docs/redoc.standalone.js`: gzipped to clients that take it (every
/// browser), inflated for the rest.
pub async fn redoc_script(headers: HeaderMap) -> Response {
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = if gzip_ok {
        let mut r = Bytes::from_static(REDOC_GZ).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let mut plain = Vec::new();
        let mut decoder = flate2::read::GzDecoder::new(REDOC_GZ);
        if std::io::Read::read_to_end(&mut decoder, &mut plain).is_err() {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        plain.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}
