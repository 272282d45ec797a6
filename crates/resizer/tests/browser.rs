//! Variant URLs in a real browser: headless Chromium (Debian's, driven by
//! Selenium from `scripts/setup.sh`) loads a page whose `<img>` tags point at
//! signed variant URLs of several sizes and formats. They render at the sizes
//! asked for; a reload revalidates them with 304s (variants are served with
//! `max-age=0` here, so the browser must ask); a tampered URL does not load.

mod common;

use std::process::Command;

use common::{Server, metric};
use resizer_core::signing::signed_path_and_query;
use serde_json::Value;

/// The tools directory of `scripts/setup.sh` (its Python venv has Selenium).
fn tools_dir() -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/tools-dir.sh"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn test_chromium_renders_signed_variants_revalidates_them_and_refuses_a_tampered_one() {
    let python = format!("{}/venv/bin/python", tools_dir());
    let have_browser = std::path::Path::new("/usr/bin/chromium").exists()
        && Command::new(&python)
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success());
    if !have_browser {
        assert!(
            std::env::var_os("CI").is_none(),
            "scripts/setup.sh installs chromium and selenium; CI needs them"
        );
        eprintln!("skipped: no chromium or selenium; run scripts/setup.sh");
        return;
    }
    let server = Server::start_env(&[("RESIZER_DELIVERY__MAX_AGE_SECS", "0")]);
    let (tenant, key) = server.customer().await;
    let (_, secret) = server.signing_key(&tenant).await;
    let secret = secret.as_str();
    let put = server
        .put_original(
            &key,
            "web/photo.jpg",
            common::read_corpus("jpeg-256k/a03_ColorfulCups.jpg"),
        )
        .await;
    assert_eq!(put.status, 201);
    let path = format!("/v1/img/{tenant}/web/photo.jpg");
    let url = |params: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        format!(
            "{}{}",
            server.public,
            signed_path_and_query(secret, &path, &pairs, None)
        )
    };
    let tampered = url(&[("width", "64")]).replace("width=64", "width=65");
    let page = format!(
        "<!doctype html><title>variants</title>\
         <img id=webp src=\"{}\"><img id=png src=\"{}\"><img id=auto src=\"{}\"><img id=tampered src=\"{}\">",
        url(&[("width", "320"), ("format", "webp")]),
        url(&[("width", "160"), ("format", "png")]),
        url(&[
            ("width", "100"),
            ("height", "100"),
            ("fit", "cover"),
            ("format", "auto")
        ]),
        tampered,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.html");
    std::fs::write(&file, page).unwrap();

    let out = Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/load_page.py"))
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let loads: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(loads.len(), 2, "a load and a reload");
    for images in &loads {
        let size = |id: &str| {
            let img = images.as_array().unwrap().iter().find(|i| i["id"] == id).unwrap();
            (img["w"].as_u64().unwrap(), img["h"].as_u64().unwrap())
        };
        assert_eq!(size("webp").0, 320, "{images}");
        assert_eq!(size("png").0, 160);
        assert_eq!(size("auto"), (100, 100));
        assert_eq!(size("tampered"), (0, 0), "a tampered URL must not render");
    }
    let metrics = server.metrics().await;
    assert_eq!(
        metric(&metrics, "resizer_variant_not_modified_total"),
        3.0,
        "the reload revalidated the three variants: {metrics}"
    );
    assert_eq!(
        metric(&metrics, "resizer_variant_cache_requests_total{outcome=\"miss\"}"),
        3.0,
        "each made once"
    );
    // Chromium's Accept names AVIF first: format=auto gave it AVIF (the audit trail says so).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let formats = loop {
        let audit = server
            .admin_get(&format!("/admin/v1/audit?tenant={tenant}"))
            .await;
        let formats: Vec<String> = audit["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["route"] == "GET /v1/img" && r["status"] == 200)
            .filter_map(|r| r["output_format"].as_str().map(str::to_string))
            .collect();
        if formats.len() >= 3 || std::time::Instant::now() > deadline {
            break formats;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(formats.len(), 3, "{formats:?}");
    assert!(formats.contains(&"avif".to_string()), "{formats:?}");
}
