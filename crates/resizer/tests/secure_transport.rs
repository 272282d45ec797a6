//! TLS and credentials between roles, for deployments across machines: NATS
//! with a user per role over TLS, and the identity feed served over HTTPS to an
//! API node that trusts only the configured CA. The certificates in `tls/` are
//! for these tests only (the CA's key was discarded after signing).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Options, Server, start_nats_with};
use resizer_core::credentials::{Login, NatsAccess};
use resizer_queue::jetstream::nats_options;
use serde_json::json;

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn path_str(name: &str) -> String {
    tls_file(name).to_string_lossy().into_owned()
}

fn trusting_client() -> reqwest::Client {
    let pem = std::fs::read(tls_file("ca.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn test_nats_takes_only_the_roles_user_over_tls() {
    resizer_api::tls::install_default_provider();
    let (cert, key) = (path_str("node.pem"), path_str("node.key"));
    let nats = start_nats_with(&[
        "--user",
        "worker",
        "--pass",
        "worker-password-0123",
        "--tls",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
    ])
    .await;
    let login = Login {
        user: "worker".into(),
        password: "worker-password-0123".into(),
    };
    let access = NatsAccess {
        login: Some(login.clone()),
        ca_file: Some(tls_file("ca.pem")),
    };
    let client = nats_options(&access).connect(&nats.url).await.unwrap();
    client.flush().await.unwrap();
    // A wrong password, or no trust in the server's CA, gets nowhere.
    let wrong = NatsAccess {
        login: Some(Login {
            password: "guess-guess-guess".into(),
            ..login.clone()
        }),
        ..access.clone()
    };
    assert!(nats_options(&wrong).connect(&nats.url).await.is_err());
    let untrusting = NatsAccess {
        login: Some(login),
        ca_file: None,
    };
    assert!(nats_options(&untrusting).connect(&nats.url).await.is_err());
}

#[tokio::test]
async fn test_the_identity_feed_over_https_to_an_api_node_that_trusts_the_ca() {
    let mut identity = Server::start_with(Options {
        role: "identity",
        env: vec![
            ("RESIZER_TLS__CERT_FILE".into(), path_str("node.pem")),
            ("RESIZER_TLS__KEY_FILE".into(), path_str("node.key")),
        ],
        ..Options::default()
    });
    let plain = identity.admin.clone();
    identity.admin = plain.replacen("http://", "https://", 1);
    identity.client = trusting_client();
    // Plain HTTP to a TLS listener is no conversation.
    assert!(reqwest::get(format!("{plain}/healthz")).await.is_err());
    let ok = identity
        .client
        .get(format!("{}/healthz", identity.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let node = Server::start_with(Options {
        role: "api",
        env: vec![
            ("RESIZER_IDENTITY__URL".into(), identity.admin.clone()),
            ("RESIZER_TLS__CA_FILE".into(), path_str("ca.pem")),
        ],
        ..Options::default()
    });
    let tenant = identity.create_tenant(json!({"name": "over-tls"})).await;
    let (_, key) = identity.create_key(tenant["id"].as_str().unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while node.auth_status(&key).await != 400 {
        assert!(
            Instant::now() < deadline,
            "the API node never learnt the key over the HTTPS feed:\n{}",
            node.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
