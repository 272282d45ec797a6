//! Feature flags through the real binary (`resizer serve`): defined on the
//! admin port, read by the request path. `format_jxl` gates a new output
//! format per tenant, `shrink_on_load` changes how a tenant's JPEGs decode,
//! and a percentage rollout picks the same tenants the pure rule says.

mod common;

use common::{ADMIN_TOKEN, Server, read_corpus};
use resizer_core::ids::TenantId;
use serde_json::{Value, json};

async fn put_flag(server: &Server, name: &str, body: Value) -> (u16, Value) {
    let resp = server
        .client
        .put(format!("{}/admin/v1/flags/{name}", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn own_flags(server: &Server, key: &str) -> Value {
    let resp = server
        .client
        .get(format!("{}/v1/flags", server.public))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn test_format_jxl_is_dark_until_its_flag_turns_it_on_for_a_tenant() {
    let server = Server::start();
    let (a, key_a) = server.customer().await;
    let (_, key_b) = server.customer().await;
    let photo = read_corpus("jpeg-256k/a03_ColorfulCups.jpg");
    let dark = server
        .resize(Some(&key_a), "width=160&format=jxl", photo.clone(), None)
        .await;
    dark.assert_error(400, "invalid_parameter");
    assert!(
        dark.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("format_jxl")
    );

    let (status, flag) = put_flag(
        &server,
        "format_jxl",
        json!({"description": "beta", "overrides": {a.clone(): true}}),
    )
    .await;
    assert_eq!(status, 200, "{flag}");
    assert_eq!(flag["overrides"][&a], true);
    // In one process the change is applied before the admin call returns.
    let on = server
        .resize(Some(&key_a), "width=160&format=jxl", photo.clone(), None)
        .await;
    assert_eq!(on.status, 200, "{:?}", on.json());
    assert_eq!(on.header("content-type").as_deref(), Some("image/jxl"));
    let decoded = common::decode(&on.body);
    assert_eq!((decoded.format, decoded.width), ("jxl", 160));
    // Lossless: the same request as PNG has exactly the same pixels.
    let png = server
        .resize(Some(&key_a), "width=160&format=png", photo.clone(), None)
        .await;
    assert_eq!(common::decode(&png.body).pixels, decoded.pixels);
    // The other tenant still gets the 400; `auto` never picks JPEG XL, even for Safari.
    server
        .resize(Some(&key_b), "width=160&format=jxl", photo.clone(), None)
        .await
        .assert_error(400, "invalid_parameter");
    let auto = server
        .resize(
            Some(&key_a),
            "width=160",
            photo.clone(),
            Some("image/jxl,image/*;q=0.8"),
        )
        .await;
    assert_eq!(auto.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(own_flags(&server, &key_a).await["flags"]["format_jxl"], true);
    assert_eq!(own_flags(&server, &key_b).await["flags"]["format_jxl"], false);
    // A one-pixel side cannot be written by the encoder: a 400 before any work.
    server
        .resize(Some(&key_a), "width=1&height=1&fit=fill&format=jxl", photo, None)
        .await
        .assert_error(400, "invalid_parameter");

    // Deleting the flag turns it off again.
    let resp = server
        .client
        .delete(format!("{}/admin/v1/flags/format_jxl", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(own_flags(&server, &key_a).await["flags"]["format_jxl"], false);
}

#[tokio::test]
async fn test_shrink_on_load_flag_changes_how_one_tenants_jpegs_decode() {
    let server = Server::start();
    let (a, key_a) = server.customer().await;
    let (_, key_b) = server.customer().await;
    // A 256 KB photo shrunk about 8×: fast shrink-on-load decodes at 1/8 scale,
    // the default leaves the resampler a shrink of at least 2 (a different image).
    let photo = read_corpus("jpeg-256k/a03_ColorfulCups.jpg");
    let query = "width=200&format=png";
    let before = server.resize(Some(&key_a), query, photo.clone(), None).await;
    assert_eq!(before.status, 200);
    let (status, _) = put_flag(&server, "shrink_on_load", json!({"overrides": {a.clone(): true}})).await;
    assert_eq!(status, 200);
    let fast = server.resize(Some(&key_a), query, photo.clone(), None).await;
    let other = server.resize(Some(&key_b), query, photo.clone(), None).await;
    assert_eq!((fast.status, other.status), (200, 200));
    assert_ne!(fast.body, before.body, "the flag changed nothing");
    assert_eq!(other.body, before.body, "another tenant's decode changed");
    let (fast_img, slow_img) = (common::decode(&fast.body), common::decode(&before.body));
    assert_eq!(
        (fast_img.width, fast_img.height),
        (slow_img.width, slow_img.height)
    );
    // Overriding the tenant off (with everyone else on) restores the default decode.
    let (status, _) = put_flag(
        &server,
        "shrink_on_load",
        json!({"default": true, "overrides": {a.clone(): false}}),
    )
    .await;
    assert_eq!(status, 200);
    let back = server.resize(Some(&key_a), query, photo.clone(), None).await;
    assert_eq!(back.body, before.body);
    let other_fast = server.resize(Some(&key_b), query, photo, None).await;
    assert_eq!(other_fast.body, fast.body, "on by default for the rest");
}

#[tokio::test]
async fn test_a_percentage_rollout_picks_the_tenants_the_rule_says_and_admin_input_is_checked() {
    let server = Server::start();
    let mut tenants = Vec::new();
    for _ in 0..24 {
        tenants.push(server.customer().await);
    }
    let (status, _) = put_flag(&server, "format_jxl", json!({"rollout_percent": 50})).await;
    assert_eq!(status, 200);
    let mut on = 0;
    for (id, key) in &tenants {
        let want = resizer_identity::flags::rollout_bucket("format_jxl", &TenantId::parse(id).unwrap()) < 50;
        assert_eq!(own_flags(&server, key).await["flags"]["format_jxl"], want, "{id}");
        on += usize::from(want);
    }
    assert!((4..=20).contains(&on), "{on} of 24 in a 50 % rollout");
    let list = server.admin_get("/admin/v1/flags").await;
    assert_eq!(list["flags"][0]["rollout_percent"], 50);
    let known: Vec<&str> = list["known"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(known, ["shrink_on_load", "format_jxl"]);

    for (name, body) in [
        ("Bad-Name", json!({})),
        ("ok", json!({"rollout_percent": 101})),
        ("ok", json!({"overrides": {TenantId::random().to_string(): true}})),
        ("ok", json!({"overrides": {"not-a-tenant": true}})),
        ("ok", json!({"surprise": 1})),
        ("ok", json!({"description": "a\u{1b}[31m"})),
    ] {
        let (status, err) = put_flag(&server, name, body.clone()).await;
        assert_eq!(status, 400, "{name} {body}: {err}");
        assert!(err["error"]["code"].is_string(), "{err}");
    }
    let no_token = server
        .client
        .put(format!("{}/admin/v1/flags/ok", server.admin))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status().as_u16(), 401);
    let resp = server
        .client
        .delete(format!("{}/admin/v1/flags/never_defined", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
