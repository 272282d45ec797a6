//! Every refusal of the contract, through the real binary: status, code, JSON shape.

mod common;

use std::io::{Read, Write};

use common::{ADMIN_TOKEN, Server, png_header_bomb, read_corpus};
use serde_json::json;

#[tokio::test]
async fn test_bad_images_get_415_or_422() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let jpeg = read_corpus("jpeg-256k/a03_ColorfulCups.jpg");

    let truncated = jpeg[..jpeg.len() * 6 / 10].to_vec();
    server
        .resize(Some(&key), "width=100", truncated, None)
        .await
        .assert_error(422, "undecodable_image");

    let header_only = jpeg[..300].to_vec();
    server
        .resize(Some(&key), "width=100", header_only, None)
        .await
        .assert_error(422, "undecodable_image");

    let mut random = vec![0u8; 4096];
    for (i, b) in random.iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0];
    }
    server
        .resize(Some(&key), "width=100", random, None)
        .await
        .assert_error(415, "unsupported_format");
    server
        .resize(
            Some(&key),
            "width=100",
            b"II*\0 a TIFF is not read".to_vec(),
            None,
        )
        .await
        .assert_error(415, "unsupported_format");

    let bomb = png_header_bomb(60000, 60000);
    assert!(bomb.len() < 1024, "the bomb is {} bytes", bomb.len());
    server
        .resize(Some(&key), "width=100", bomb, None)
        .await
        .assert_error(422, "too_many_pixels");

    server
        .resize(Some(&key), "width=100", Vec::new(), None)
        .await
        .assert_error(400, "empty_body");
    // The server is still healthy afterwards.
    let ok = server.resize(Some(&key), "width=100", jpeg, None).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
}

#[tokio::test]
async fn test_bad_parameters_get_400() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let jpeg = read_corpus("jpeg-256k/a04_EveningGlow.jpg");
    for q in [
        "",
        "width=0",
        "width=abc",
        "width=10&fit=squash",
        "width=10&quality=0",
        "width=10&format=heic",
        "width=10&frames=some",
        "width=10&bogus=1",
    ] {
        server
            .resize(Some(&key), q, jpeg.clone(), None)
            .await
            .assert_error(400, "invalid_parameter");
    }
    server
        .resize(Some(&key), "width=9000", jpeg.clone(), None)
        .await
        .assert_error(400, "output_too_large");
    // Computed side over the limit: a 1600-wide image enlarged to 8000 high.
    server
        .resize(Some(&key), "height=8000&enlarge=true", jpeg, None)
        .await
        .assert_error(400, "output_too_large");
}

#[tokio::test]
async fn test_authentication_failures() {
    let server = Server::start();
    let (tenant, key) = server.customer().await;
    let jpeg = read_corpus("jpeg-256k/a05_FallenLeaf.jpg");
    server
        .resize(None, "width=100", jpeg.clone(), None)
        .await
        .assert_error(401, "unauthenticated");
    server
        .resize(Some("not-a-key"), "width=100", jpeg.clone(), None)
        .await
        .assert_error(401, "unauthenticated");
    // Right key id, wrong secret.
    let mut forged = key.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    server
        .resize(Some(&forged), "width=100", jpeg.clone(), None)
        .await
        .assert_error(401, "unauthenticated");

    // Revoked key.
    let (key_id, revoked) = server.create_key(&tenant).await;
    assert_eq!(
        server
            .resize(Some(&revoked), "width=100", jpeg.clone(), None)
            .await
            .status,
        200
    );
    let resp = server
        .client
        .delete(format!("{}/admin/v1/keys/{key_id}", server.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    server
        .resize(Some(&revoked), "width=100", jpeg.clone(), None)
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(
        server
            .resize(Some(&key), "width=100", jpeg.clone(), None)
            .await
            .status,
        200
    );

    // Suspended tenant, then reinstated.
    let patch = |suspended: bool| {
        server
            .client
            .patch(format!("{}/admin/v1/tenants/{tenant}", server.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "suspended": suspended }))
            .send()
    };
    let t: serde_json::Value = patch(true).await.unwrap().json().await.unwrap();
    assert_eq!(t["suspended"], true);
    server
        .resize(Some(&key), "width=100", jpeg.clone(), None)
        .await
        .assert_error(403, "tenant_suspended");
    patch(false).await.unwrap();
    assert_eq!(
        server.resize(Some(&key), "width=100", jpeg, None).await.status,
        200
    );
}

#[tokio::test]
async fn test_oversized_body_413_declared_and_streamed() {
    let server = Server::start_env(&[("RESIZER_LIMITS__MAX_BODY_BYTES", "200000")]);
    let (_, key) = server.customer().await;
    let big = read_corpus("jpeg-1m/b02_Path.jpg");
    server
        .resize(Some(&key), "width=100", big.clone(), None)
        .await
        .assert_error(413, "payload_too_large");

    // Chunked, with no Content-Length: refused while streaming.
    let addr = server.public.trim_start_matches("http://").to_string();
    let reply = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /v1/resize?width=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        for chunk in big.chunks(64 * 1024) {
            if write!(s, "{:x}\r\n", chunk.len()).is_err() || s.write_all(chunk).is_err() || s.write_all(b"\r\n").is_err() {
                break; // the server may close early, which is the point
            }
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("payload_too_large"), "{reply}");
}

#[tokio::test]
async fn test_deadline_exceeded_504() {
    let server = Server::start_env(&[("RESIZER_API__JOB_DEADLINE_MS", "1")]);
    let (_, key) = server.customer().await;
    let big = read_corpus("jpeg-1m/b03_OneStandsOut.jpg");
    server
        .resize(Some(&key), "width=2000&format=png", big, None)
        .await
        .assert_error(504, "deadline_exceeded");
}

#[tokio::test]
async fn test_queue_full_503_with_retry_after_immediately() {
    // This test is about the queue bound, not fairness: lift the per-tenant cap.
    let server = Server::start_env(&[
        ("RESIZER_QUEUE__CAPACITY", "1"),
        ("RESIZER_WORKER__THREADS", "1"),
        ("RESIZER_API__MAX_IN_FLIGHT_PER_TENANT", "100"),
    ]);
    let (_, key) = server.customer().await;
    let big = read_corpus("jpeg-1m/b04_BytheWater.jpg");
    // Distinct widths, so no request joins another's job.
    let tasks: Vec<_> = (0..12)
        .map(|i| server.spawn_resize(&key, &format!("width={}&format=png", 2500 + i), big.clone()))
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        let (r, elapsed) = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            503 => {
                r.assert_error(503, "overloaded");
                assert_eq!(r.header("retry-after").as_deref(), Some("1"));
                assert!(
                    elapsed < std::time::Duration::from_secs(2),
                    "refusal took {elapsed:?}"
                );
                refused += 1;
            }
            other => panic!("unexpected status {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(ok >= 2, "{ok} succeeded");
    assert!(refused >= 1, "{refused} refused");
}

#[tokio::test]
async fn test_rate_limit_429_per_tenant() {
    let server = Server::start();
    let limited = server
        .create_tenant(json!({"name": "small", "rate_limit_rps": 1, "burst": 2}))
        .await;
    let (_, small_key) = server.create_key(limited["id"].as_str().unwrap()).await;
    let (_, other_key) = server.customer().await;
    let jpeg = read_corpus("webp/d03_Kite.webp");
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let r = server
            .resize(Some(&small_key), "width=50", jpeg.clone(), None)
            .await;
        if r.status == 429 {
            r.assert_error(429, "rate_limited");
            assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
        }
        statuses.push(r.status);
    }
    // The burst of 2, plus one more per second the requests took (rate 1/s).
    let refills = started.elapsed().as_secs() as usize;
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert!((2..=2 + refills).contains(&ok), "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        5 - ok,
        "{statuses:?}"
    );
    assert!(ok < 5, "the limit refused something: {statuses:?}");
    assert_eq!(
        server
            .resize(Some(&other_key), "width=50", jpeg, None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn test_hostile_inputs_never_take_the_server_down() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    let seeds = [
        read_corpus("jpeg-256k/a06_Grey.jpg"),
        read_corpus("png/c02_Garden.png"),
        read_corpus("webp/d04_YellowFlower.webp"),
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..90 {
        let mut data = seeds[i % 3].clone();
        match i % 3 {
            0 => data.truncate((next() as usize) % data.len()),
            1 => {
                for _ in 0..8 {
                    let at = (next() as usize) % data.len().min(2048);
                    data[at] ^= (next() & 0xff) as u8;
                }
            }
            _ => {
                let at = (next() as usize) % data.len();
                let len = (next() as usize) % 512;
                let end = (at + len).min(data.len());
                data[at..end].iter_mut().for_each(|b| *b = (next() & 0xff) as u8);
            }
        }
        let r = server.resize(Some(&key), "width=64", data, None).await;
        assert!(
            [200, 400, 415, 422].contains(&r.status),
            "mutation {i}: status {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        if r.status != 200 {
            r.json();
        }
    }
    let health = server
        .client
        .get(format!("{}/healthz", server.public))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn test_in_flight_bound_503_before_reading_the_body() {
    let server = Server::start_env(&[
        ("RESIZER_API__MAX_IN_FLIGHT", "1"),
        ("RESIZER_WORKER__THREADS", "1"),
    ]);
    let (_, key) = server.customer().await;
    let big = read_corpus("jpeg-1m/b01_EveningGlow.jpg");
    let tasks: Vec<_> = (0..6)
        .map(|_| server.spawn_resize(&key, "width=2560&format=png", big.clone()))
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let (r, elapsed) = t.await.unwrap();
        if r.status == 503 {
            r.assert_error(503, "overloaded");
            assert!(r.header("retry-after").is_some());
            assert!(
                elapsed < std::time::Duration::from_secs(2),
                "refusal took {elapsed:?}"
            );
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.iter().all(|s| [200, 503].contains(s)), "{statuses:?}");
}

#[tokio::test]
async fn test_rate_limit_burst_of_50_at_5_rps_leaves_other_tenants_alone() {
    let server = Server::start();
    let limited = server
        .create_tenant(json!({"name": "five", "rate_limit_rps": 5, "burst": 5}))
        .await;
    let (_, five) = server.create_key(limited["id"].as_str().unwrap()).await;
    let other = server
        .create_tenant(json!({"name": "other", "rate_limit_rps": 5, "burst": 5}))
        .await;
    let (_, other_key) = server.create_key(other["id"].as_str().unwrap()).await;
    let image = read_corpus("webp/d05_RainDrops.webp");
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| server.spawn_resize(&five, "width=32", image.clone()))
        .collect();
    // The other tenant, in the same second, within its own limit.
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(
            server
                .resize(Some(&other_key), "width=32", image.clone(), None)
                .await
                .status,
        );
    }
    let (mut ok, mut limited_count) = (0, 0);
    for t in tasks {
        let (r, _) = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            429 => {
                r.assert_error(429, "rate_limited");
                assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
                limited_count += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The burst, plus what the bucket refilled at 5/s while the requests ran.
    let allowed = 5 + (elapsed * 5.0).ceil() as usize;
    assert!((5..=allowed).contains(&ok), "{ok} succeeded in {elapsed:.2} s");
    assert_eq!(ok + limited_count, 50);
    assert!(limited_count >= 50 - allowed);
    assert_eq!(others, vec![200; 4], "the other tenant is unaffected");
}
