//! The API's documents and reference pages as a client sees them: each port
//! serves its own OpenAPI document without a token, the admin port renders
//! both with the vendored viewer under a strict CSP, nothing from elsewhere.
//! (Schemathesis attacks the API from these documents: scripts/schemathesis.sh.)

mod common;

use std::io::Read;

use common::Server;
use serde_json::Value;

async fn get(server: &Server, url: String, gzip: bool) -> reqwest::Response {
    let mut request = server.client.get(url);
    if gzip {
        request = request.header("accept-encoding", "gzip, br");
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn test_each_port_serves_its_document_and_the_admin_port_renders_both() {
    let server = Server::start();
    let public: Value = get(&server, format!("{}/openapi.json", server.public), false)
        .await
        .json()
        .await
        .unwrap();
    let admin: Value = get(&server, format!("{}/openapi.json", server.admin), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&public["openapi"], &admin["openapi"]),
        (&"3.1.0".into(), &"3.1.0".into())
    );
    assert!(
        public["paths"].get("/v1/resize").is_some() && public["paths"].get("/admin/v1/tenants").is_none()
    );
    assert!(admin["paths"].get("/admin/v1/tenants").is_some() && admin["paths"].get("/v1/resize").is_none());
    let mirrored: Value = get(&server, format!("{}/openapi/public.json", server.admin), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        mirrored, public,
        "the admin port shows the public port's own document"
    );

    for (path, spec) in [
        ("/docs", "/openapi.json"),
        ("/docs/public", "/openapi/public.json"),
    ] {
        let page = get(&server, format!("{}{path}", server.admin), false).await;
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.starts_with("default-src 'none'") && csp.contains("connect-src 'self'"),
            "{csp}"
        );
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!("spec-url=\"{spec}\"")) && html.contains("disable-telemetry=\"true\"")
        );
        assert!(
            !html.contains("https://"),
            "the page loads nothing from elsewhere"
        );
    }
    // The viewer: gzipped to clients that take it, inflated for the rest, the same script.
    let script = format!("{}/docs/redoc.standalone.js", server.admin);
    let zipped = get(&server, script.clone(), true).await;
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let zipped = zipped.bytes().await.unwrap();
    let plain = get(&server, script, false).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated, plain);
    assert!(plain.len() > 1_000_000, "the whole bundle");
}
