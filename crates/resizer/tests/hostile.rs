//! Clients that attack instead of asking: idle and slow sockets, oversized
//! heads, trickled bodies, too many connections, crafted query values. Each
//! must be refused or dropped within its configured bound, and leave the
//! service serving everyone else.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, read_corpus};

/// Short bounds so each attack is over in about a second.
const FAST_LIMITS: &[(&str, &str)] = &[
    ("RESIZER_HTTP__HEADER_READ_TIMEOUT_MS", "600"),
    ("RESIZER_HTTP__IDLE_TIMEOUT_MS", "600"),
    ("RESIZER_HTTP__MIN_BODY_BYTES_PER_SEC", "4096"),
    ("RESIZER_API__MAX_IN_FLIGHT_PER_TENANT", "1"),
];

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Waits (bounded) until the server closes `stream`: a read returns 0 or fails.
/// Returns how long that took, or `None` if it stayed open past `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn test_idle_and_slow_heads_are_dropped_on_every_port() {
    let server = Server::start_env(FAST_LIMITS);
    for base in [&server.public, &server.admin] {
        // A socket that never sends a byte.
        let mut idle = TcpStream::connect(host_port(base)).unwrap();
        let took = closed_within(&mut idle, Duration::from_secs(5));
        assert!(took.is_some(), "an idle socket on {base} stayed open");

        // A head sent a byte at a time, never finished.
        let mut slow = TcpStream::connect(host_port(base)).unwrap();
        slow.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
        let started = Instant::now();
        let mut cut = false;
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
            if slow.write_all(&[*b]).is_err() || started.elapsed() > Duration::from_secs(5) {
                cut = started.elapsed() <= Duration::from_secs(5);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let closed = cut || closed_within(&mut slow, Duration::from_millis(500)).is_some();
        assert!(closed, "a head trickled at 20 B/s on {base} was not cut off");

        // A kept-alive connection that goes quiet after one request.
        let mut kept = TcpStream::connect(host_port(base)).unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 12];
        kept.read_exact(&mut first).unwrap();
        assert_eq!(&first[..], b"HTTP/1.1 200" as &[u8]);
        assert!(
            closed_within(&mut kept, Duration::from_secs(5)).is_some(),
            "an idle kept-alive connection on {base} stayed open"
        );
    }
    let metrics = server.metrics().await;
    assert!(
        metric_sum(
            &metrics,
            "resizer_http_connections_dropped_total",
            "reason=\"header_timeout\""
        ) >= 4.0,
        "{metrics}"
    );
    assert!(
        metric_sum(
            &metrics,
            "resizer_http_connections_dropped_total",
            "reason=\"idle\""
        ) >= 1.0
    );
    assert!(metrics.contains("resizer_http_connections_open{listener=\"public\"}"));
}

#[tokio::test]
async fn test_an_oversized_head_is_refused_without_buffering_it() {
    let server = Server::start_env(FAST_LIMITS);
    let mut stream = TcpStream::connect(host_port(&server.public)).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 64 * 1024));
    head.extend(b"\r\n\r\n");
    let _ = stream.write_all(&head);
    let mut reply = Vec::new();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "a 64 KiB header was answered: {reply}"
    );
    // Everyone else is still served.
    let ok = reqwest::get(format!("{}/healthz", server.public)).await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn test_connections_beyond_the_cap_are_closed_at_once() {
    let server = Server::start_env(&[
        ("RESIZER_HTTP__MAX_CONNECTIONS", "4"),
        ("RESIZER_HTTP__HEADER_READ_TIMEOUT_MS", "20000"),
    ]);
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(host_port(&server.public)).unwrap())
        .collect();
    // Give the server a moment to accept all four (it accepts in order).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut refused_fast = false;
    while Instant::now() < deadline {
        let mut extra = TcpStream::connect(host_port(&server.public)).unwrap();
        if closed_within(&mut extra, Duration::from_millis(300)).is_some() {
            refused_fast = true;
            break;
        }
    }
    assert!(refused_fast, "a fifth connection was kept while four were open");
    drop(held);
    // Once the held ones are gone, new connections are served again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let client = reqwest::Client::new();
        if let Ok(r) = client.get(format!("{}/healthz", server.public)).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the listener did not recover after the cap"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = server.metrics().await;
    assert!(
        metric_sum(
            &metrics,
            "resizer_http_connections_dropped_total",
            "reason=\"connection_cap\""
        ) >= 1.0
    );
}

#[tokio::test]
async fn test_a_trickled_body_is_cut_off_with_408_and_frees_the_tenants_slot() {
    let server = Server::start_env(FAST_LIMITS);
    let (_, key) = server.customer().await;
    let mut stream = TcpStream::connect(host_port(&server.public)).unwrap();
    let head = format!(
        "POST /v1/resize?width=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let started = Instant::now();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // 16 bytes a second, as in the report, until the server answers (bounded).
    while started.elapsed() < Duration::from_secs(10) {
        let _ = stream.write_all(b"10\r\n0123456789abcdef\r\n");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.windows(4).any(|w| w == b"\r\n\r\n") && reply.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(950));
    }
    let took = started.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "after {took:?}: {reply}");
    assert!(reply.contains("\"request_timeout\""), "{reply}");
    assert!(
        took < Duration::from_secs(6),
        "the slow body held on for {took:?}"
    );
    // The tenant's one slot is free again: a normal request is served.
    let ok = server
        .resize(
            Some(&key),
            "width=100",
            read_corpus("jpeg-256k/a04_EveningGlow.jpg"),
            None,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
}

#[tokio::test]
async fn test_crafted_values_get_clear_answers_not_panics() {
    let server = Server::start();
    let (_, key) = server.customer().await;
    // A time cut inside a multi-byte character used to panic the handler.
    let reply = server
        .client
        .get(format!(
            "{}/v1/usage?to=2026-11-22T02:30:45%2B0%C3%A900",
            server.public
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    assert!(reply.headers().contains_key("x-request-id"));

    let jpeg = read_corpus("jpeg-256k/a04_EveningGlow.jpg");
    // A negative q-value is not a preference; `format=auto` answers vary by Accept.
    let r = server
        .resize(Some(&key), "width=64", jpeg.clone(), Some("image/webp;q=-1"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(r.header("vary").as_deref(), Some("accept"));
    let fixed = server
        .resize(Some(&key), "width=64&format=png", jpeg.clone(), None)
        .await;
    assert_eq!(fixed.header("vary"), None);

    // Integers are decimal digits only; a huge one is too large, not malformed.
    for q in ["width=%2B10", "width=%2010", "width=10&quality=%2B50"] {
        server
            .resize(Some(&key), q, jpeg.clone(), None)
            .await
            .assert_error(400, "invalid_parameter");
    }
    server
        .resize(Some(&key), "width=123456789012345678901234", jpeg, None)
        .await
        .assert_error(400, "output_too_large");

    // Tenant names are printable text.
    for bad in ["a\u{0}b", "red\u{1b}[31m", "two\nlines", "\u{202e}gpj.exe"] {
        let (status, body) = server
            .admin_post("/admin/v1/tenants", Some(serde_json::json!({ "name": bad })))
            .await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter");
    }
}

async fn metric(server: &Server, name: &str) -> f64 {
    metric_sum(&server.metrics().await, name, "")
}

#[tokio::test]
async fn test_refusals_cannot_grow_the_usage_log_at_wire_speed() {
    let server = Server::start();
    let tenant = server
        .create_tenant(serde_json::json!({"name": "hammer", "rate_limit_rps": 1, "burst": 1}))
        .await;
    let (_, key) = server.create_key(tenant["id"].as_str().unwrap()).await;
    let logged_before = metric(&server, "resizer_usage_records_logged_total").await;
    let started = Instant::now();
    let mut refused = 0;
    for _ in 0..300 {
        let r = server.resize(Some(&key), "width=10", b"x".to_vec(), None).await;
        if r.status == 429 {
            refused += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(refused >= 290, "{refused} of 300 refused");
    let logged = metric(&server, "resizer_usage_records_logged_total").await - logged_before;
    // The refusal-record budget: a burst of 50, then 10 a second (and the few answered).
    let allowed = 50.0 + 10.0 * elapsed.ceil() + 10.0;
    assert!(
        logged <= allowed,
        "{logged} records for {refused} refusals in {elapsed:.1} s"
    );
    assert!(
        logged >= 10.0,
        "refusals must still be recorded up to the budget: {logged}"
    );
    let unrecorded = metric(&server, "resizer_usage_refusals_unrecorded_total").await;
    assert!(unrecorded >= f64::from(refused) - logged, "{unrecorded}");
}

#[tokio::test]
async fn test_data_files_are_the_services_alone() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    let (_, key) = server.customer().await;
    let r = server
        .resize(
            Some(&key),
            "width=32",
            read_corpus("jpeg-256k/a04_EveningGlow.jpg"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // Wait until the request is rolled up, so the roll-up store exists too.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let usage: serde_json::Value = server
            .client
            .get(format!("{}/v1/usage", server.public))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if usage["buckets"].as_array().is_some_and(|b| !b.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "never rolled up: {usage}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut open = Vec::new();
    let mut stack = vec![server.data_dir.clone()];
    let mut seen = 0;
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        seen += 1;
        if meta.permissions().mode() & 0o077 != 0 {
            open.push(format!(
                "{:o} {}",
                meta.permissions().mode() & 0o777,
                path.display()
            ));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&path).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    assert!(seen > 3, "only {seen} paths in the data directory");
    assert!(open.is_empty(), "readable by others: {open:#?}");
}

#[tokio::test]
async fn test_wrong_admin_tokens_are_throttled_per_address() {
    let server = Server::start();
    let tenants = format!("{}/admin/v1/tenants", server.admin);
    // Asking without a token guesses nothing: never throttled.
    for _ in 0..30 {
        let r = server.client.get(&tenants).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let mut throttled = None;
    for i in 0..30 {
        let r = server
            .client
            .get(&tenants)
            .bearer_auth("a-wrong-guess-0000")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            throttled = Some((i, r.headers().get("retry-after").cloned()));
            break;
        }
        assert_eq!(r.status(), 401);
    }
    let (tries, retry_after) = throttled.expect("30 wrong admin tokens were all checked");
    assert!(tries >= 10, "throttled after only {tries} wrong tokens");
    assert!(retry_after.is_some());
    // The throttle passes: the right token is served again within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = server
            .client
            .get(&tenants)
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 429);
        assert!(Instant::now() < deadline, "still throttled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn test_a_short_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resizer"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("RESIZER_ADMIN_TOKEN", "change-me")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 16 characters"), "{stderr}");
}
