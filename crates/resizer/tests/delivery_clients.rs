//! The signing code docs/delivery.md gives clients, run as written against a
//! live server: the Python function always, the Node one where `node` is
//! installed (`scripts/setup.sh` does not install Node; this test says when it
//! skipped it). A change to the string-to-sign that the docs do not follow fails here.

mod common;

use std::process::Command;

use common::{Reply, Server};

/// The fenced block of `lang` in docs/delivery.md.
fn snippet(lang: &str) -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/delivery.md")).unwrap();
    let start = doc
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no {lang} block"))
        + lang.len()
        + 4;
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_string()
}

async fn fetch(server: &Server, url: &str) -> Reply {
    Reply::from(server.client.get(url.trim()).send().await.unwrap()).await
}

#[tokio::test]
async fn test_the_documented_client_code_makes_urls_the_server_accepts() {
    let server = Server::start();
    let (tenant, key) = server.customer().await;
    let (_, secret) = server.signing_key(&tenant).await;
    let put = server
        .put_original(
            &key,
            "docs/cat.jpg",
            common::read_corpus("jpeg-256k/a02_ColdRipple.jpg"),
        )
        .await;
    assert_eq!(put.status, 201);
    let args = format!(
        "\"{}\", \"{secret}\", \"{tenant}\", \"docs/cat.jpg\"",
        server.public
    );

    let python = format!(
        "{}\nprint(signed_url({args}, {{\"width\": \"64\", \"format\": \"png\", \"fit\": \"cover\", \"height\": \"64\"}}, 300))\n",
        snippet("python")
    );
    let out = Command::new("python3").args(["-c", &python]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = fetch(&server, &String::from_utf8(out.stdout).unwrap()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let d = common::decode(&r.body);
    assert_eq!((d.format, d.width, d.height), ("png", 64, 64));

    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("node is not installed: the JavaScript snippet was not run");
        return;
    }
    let js = format!(
        "{}\nconsole.log(signedUrl({args}, {{ width: \"48\", format: \"webp\" }}, 300));\n",
        snippet("js")
    );
    let out = Command::new("node").args(["-e", &js]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = fetch(&server, &String::from_utf8(out.stdout).unwrap()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(common::decode(&r.body).width, 48);
}
