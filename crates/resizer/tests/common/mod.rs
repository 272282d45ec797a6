//! Test harness: runs the real `resizer` binary on ephemeral ports with a
//! temporary data directory, and decodes outputs with independent decoders.
#![allow(dead_code)]

pub mod cluster;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running `resizer serve`.
pub struct Server {
    pub child: Child,
    pub public: String,
    pub admin: String,
    pub data_dir: PathBuf,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    _tmp: Option<tempfile::TempDir>,
    pub client: reqwest::Client,
    /// What lets this node show `/metrics` and `/readyz`'s detail.
    pub observer_token: &'static str,
}

#[allow(unused_imports)]
pub use resizer_testing::{corpus, read_corpus};

pub const CLUSTER_SECRET: &str = "test-cluster-secret-0123456789";

pub struct Options {
    /// `serve`, `api` or `identity`.
    pub role: &'static str,
    pub env: Vec<(String, String)>,
    pub admin_token_env: bool,
    pub data_dir: Option<PathBuf>,
    /// Fixed admin listen address (to restart a node on the same port).
    pub admin_listen: Option<String>,
    /// Fixed public listen address (for a node others must be told about first).
    pub listen: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            role: "serve",
            env: Vec::new(),
            admin_token_env: true,
            data_dir: None,
            admin_listen: None,
            listen: None,
        }
    }
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Options::default())
    }

    pub fn start_env(env: &[(&str, &str)]) -> Server {
        Self::start_with(Options {
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Options::default()
        })
    }

    pub fn start_with(options: Options) -> Server {
        let (tmp, data_dir) = match options.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().unwrap();
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_resizer"));
        let admin_listen = options
            .admin_listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:0".into());
        cmd.arg(options.role);
        if options.role != "identity" {
            cmd.args(["--listen", options.listen.as_deref().unwrap_or("127.0.0.1:0")]);
        }
        if options.role != "api" {
            cmd.args(["--admin-listen", &admin_listen]);
        }
        cmd.arg("--data-dir")
            .arg(&data_dir)
            .env("RESIZER_CLUSTER_SECRET", CLUSTER_SECRET)
            .env_remove("RESIZER_ADMIN_TOKEN")
            .env("RESIZER_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if options.admin_token_env {
            cmd.env("RESIZER_ADMIN_TOKEN", ADMIN_TOKEN);
        }
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning resizer");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out_pipe = child.stdout.take().unwrap();
        let err_pipe = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<String>();
        {
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                    stdout.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                    if line.contains("ready") && line.contains("INFO") && line.contains("_addr=") {
                        let _ = ready_tx.send(line.clone());
                    }
                    stderr.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        let line = match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("resizer did not become ready:\n{}", stderr.lock().unwrap());
            }
        };
        let field = |name: &str| -> String {
            line.split_whitespace()
                .find_map(|t| t.strip_prefix(&format!("{name}=")))
                .unwrap_or("")
                .to_string()
        };
        Server {
            public: format!("http://{}", field("public_addr")),
            admin: format!("http://{}", field("admin_addr")),
            child,
            data_dir,
            stdout,
            stderr,
            _tmp: tmp,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            observer_token: if options.role == "serve" {
                ADMIN_TOKEN
            } else {
                CLUSTER_SECRET
            },
        }
    }

    pub async fn admin_post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_tenant(&self, body: Value) -> Value {
        let (status, tenant) = self.admin_post("/admin/v1/tenants", Some(body)).await;
        assert_eq!(status, 201, "{tenant}");
        tenant
    }

    pub async fn create_key(&self, tenant_id: &str) -> (String, String) {
        let (status, key) = self
            .admin_post(&format!("/admin/v1/tenants/{tenant_id}/keys"), None)
            .await;
        assert_eq!(status, 201, "{key}");
        (
            key["key_id"].as_str().unwrap().to_string(),
            key["secret"].as_str().unwrap().to_string(),
        )
    }

    /// A tenant with generous limits and one key; returns (tenant id, secret).
    pub async fn customer(&self) -> (String, String) {
        let t = self
            .create_tenant(serde_json::json!({"name": "customer", "rate_limit_rps": 100000}))
            .await;
        let id = t["id"].as_str().unwrap().to_string();
        let (_, secret) = self.create_key(&id).await;
        (id, secret)
    }

    pub async fn resize(&self, key: Option<&str>, query: &str, body: Vec<u8>, accept: Option<&str>) -> Reply {
        let mut req = self
            .client
            .post(format!("{}/v1/resize?{query}", self.public))
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    /// Starts a resize in the background; resolves to the reply and its latency.
    pub fn spawn_resize(
        &self,
        key: &str,
        query: &str,
        body: Vec<u8>,
    ) -> tokio::task::JoinHandle<(Reply, Duration)> {
        let request = self
            .client
            .post(format!("{}/v1/resize?{query}", self.public))
            .bearer_auth(key)
            .body(body);
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = Reply::from(request.send().await.unwrap()).await;
            (reply, started.elapsed())
        })
    }

    /// Stores `body` as the original `name` with `key`.
    pub async fn put_original(&self, key: &str, name: &str, body: Vec<u8>) -> Reply {
        let r = self
            .client
            .put(format!("{}/v1/originals/{name}", self.public))
            .bearer_auth(key)
            .body(body)
            .send()
            .await
            .unwrap();
        Reply::from(r).await
    }

    /// A URL signing key issued by the admin port for `tenant`: (id, secret).
    pub async fn signing_key(&self, tenant: &str) -> (String, String) {
        let (status, body) = self
            .admin_post(&format!("/admin/v1/tenants/{tenant}/signing-keys"), None)
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["signing_key_id"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        )
    }

    /// GETs an admin path with the admin token and returns the JSON body.
    pub async fn admin_get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The public port's `/metrics`, read with the node's observer token.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.public))
            .bearer_auth(self.observer_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Returns the JSON of `/readyz` (with its detail) and its status.
    pub async fn readyz(&self) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}/readyz", self.public))
            .bearer_auth(self.observer_token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Whether this node accepts `key` right now: an empty body gets 400 once
    /// authenticated, 401 or 403 before.
    pub async fn auth_status(&self, key: &str) -> u16 {
        self.client
            .post(format!("{}/v1/resize?width=10", self.public))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Sends SIGKILL and waits for the process to go.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub async fn from(resp: reqwest::Response) -> Reply {
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.unwrap().to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts an error reply with this status and code, in the contract's shape.
    pub fn assert_error(&self, status: u16, code: &str) {
        let v = self.json();
        assert_eq!(self.status, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        assert_eq!(self.header("content-type").as_deref(), Some("application/json"));
    }
}

/// The value of one series (`name{labels}`) in Prometheus text; 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.strip_prefix(series).is_some_and(|r| r.starts_with(' ')))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Decoded image, for assertions.
pub struct Decoded {
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    /// Interleaved samples, 3 or 4 per pixel.
    pub pixels: Vec<u8>,
    pub channels: usize,
}

/// Decodes an output with decoders independent of the pipeline's own code path.
pub fn decode(bytes: &[u8]) -> Decoded {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let img = turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGB).expect("valid JPEG");
        Decoded {
            format: "jpeg",
            width: img.width as u32,
            height: img.height as u32,
            pixels: img.pixels,
            channels: 3,
        }
    } else if bytes.starts_with(b"\x89PNG") {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("valid PNG");
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).expect("valid PNG data");
        buf.truncate(info.buffer_size());
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("unexpected PNG colour type {other:?}"),
        };
        Decoded {
            format: "png",
            width: info.width,
            height: info.height,
            pixels: buf,
            channels,
        }
    } else if bytes.starts_with(b"RIFF") {
        let img = webp::Decoder::new(bytes).decode().expect("valid WebP");
        Decoded {
            format: "webp",
            width: img.width(),
            height: img.height(),
            channels: if img.is_alpha() { 4 } else { 3 },
            pixels: img.to_vec(),
        }
    } else if bytes.get(4..12) == Some(b"ftypavif") {
        let mut d = decode(&to_png_with("avifdec", "avif", bytes));
        d.format = "avif";
        d
    } else if bytes.starts_with(&[0xFF, 0x0A]) {
        let mut d = decode(&to_png_with("djxl", "jxl", bytes));
        d.format = "jxl";
        d
    } else {
        panic!("output is not an image: {:?}", &bytes[..bytes.len().min(16)]);
    }
}

/// Decodes with a reference tool that shares no code with our encoders
/// (both installed by scripts/setup.sh): libavif's `avifdec` (dav1d) for
/// AVIF (ours is libheif + libaom), libjxl's `djxl` for JPEG XL (ours is zune-jpegxl).
fn to_png_with(tool: &str, extension: &str, bytes: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (
        dir.path().join(format!("in.{extension}")),
        dir.path().join("out.png"),
    );
    std::fs::write(&input, bytes).unwrap();
    let status = std::process::Command::new(tool)
        .arg(&input)
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{tool} (installed by scripts/setup.sh): {e}"));
    assert!(status.success(), "{tool} refused our {extension}");
    std::fs::read(output).unwrap()
}

/// A HEIF fixture of the imaging crate's tests (made by independent encoders).
pub fn heif_fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../resizer-imaging/tests/fixtures/heif")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Builds a PNG with the given RGBA pixels.
pub fn make_png_rgba(width: u32, height: u32, rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(rgba).unwrap();
    w.finish().unwrap();
    out
}

/// A PNG whose header claims `width`×`height` but that carries no pixel data.
pub fn png_header_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let w = enc.write_header().unwrap();
    drop(w);
    out
}

/// Inserts an EXIF APP1 segment with `orientation` after the JPEG's SOI marker.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u8) -> Vec<u8> {
    let tiff = resizer_imaging::exif::tiff_with_orientation(orientation);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&seg);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[allow(unused_imports)]
pub use resizer_testing::nats::{Nats, free_port, nats_server_bin, start_nats, start_nats_with};
