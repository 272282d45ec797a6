//! The workload: open-loop resizes from several tenants through HAProxy, each
//! input a solid colour of its own (per tenant and variant) and aspect, so a 200
//! can be checked against the request's own input — size and colour — and a
//! mix-up between requests or tenants shows.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Distinct colours, far apart in every pair (per channel ≥ 80 somewhere).
const PALETTE: [[u8; 3]; 12] = [
    [220, 40, 40],
    [40, 200, 40],
    [40, 40, 220],
    [220, 220, 40],
    [220, 40, 220],
    [40, 220, 220],
    [240, 140, 20],
    [140, 20, 240],
    [20, 130, 110],
    [128, 128, 128],
    [250, 250, 250],
    [70, 30, 10],
];
const SHAPES: [(u32, u32); 4] = [(320, 240), (240, 320), (300, 300), (400, 200)];
pub const VARIANTS: usize = 4;
/// Most requests in flight at once; a start beyond it is counted, not sent.
const MAX_IN_FLIGHT: usize = 2000;

pub struct Input {
    pub bytes: bytes::Bytes,
    pub width: u32,
    pub height: u32,
    /// Index into the palette: tenant * VARIANTS + variant.
    pub colour: usize,
}

/// A solid-colour JPEG per (tenant, variant).
pub fn inputs(tenants: usize) -> Vec<Input> {
    assert!(tenants * VARIANTS <= PALETTE.len());
    (0..tenants * VARIANTS)
        .map(|colour| {
            let (width, height) = SHAPES[colour % VARIANTS];
            let rgb: Vec<u8> = PALETTE[colour]
                .iter()
                .copied()
                .cycle()
                .take((width * height * 3) as usize)
                .collect();
            let image = turbojpeg::Image {
                pixels: rgb.as_slice(),
                width: width as usize,
                pitch: width as usize * 3,
                height: height as usize,
                format: turbojpeg::PixelFormat::RGB,
            };
            let jpeg = turbojpeg::compress(image, 90, turbojpeg::Subsamp::Sub2x2).unwrap();
            Input {
                bytes: bytes::Bytes::copy_from_slice(&jpeg),
                width,
                height,
                colour,
            }
        })
        .collect()
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The right image for this request's own input.
    Ok,
    /// A contract error from an API node: JSON with a code.
    Refused(String),
    /// HAProxy's own JSON answer (no node could answer, or the node died mid-answer).
    Edge(u16),
    /// A wrong answer: not this request's image, or not the contract's error.
    Wrong(String),
    /// No answer at all (transport error or client timeout).
    NoAnswer(String),
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub tenant: usize,
    /// Scheduled start, from the run's t0.
    pub sent: Duration,
    /// From the scheduled start (no coordinated omission).
    pub latency: Duration,
    pub status: u16,
    pub outcome: Outcome,
}

/// Checks a response against its own request's input.
async fn judge(resp: reqwest::Response, input: &Input, width: u32) -> (u16, Outcome) {
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, edge) = (header("content-type"), header("x-resizer-edge"));
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return (status, Outcome::NoAnswer(format!("body: {e}"))),
    };
    if status == 200 {
        return (status, judge_image(&body, input, width));
    }
    let code = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
    match code {
        Some(_) if !content_type.starts_with("application/json") => (
            status,
            Outcome::Wrong(format!("{status} JSON without its content type")),
        ),
        Some(_) if edge == "haproxy" => (status, Outcome::Edge(status)),
        Some(code) if matches!(status, 429 | 503 | 504) => (status, Outcome::Refused(code)),
        _ => (
            status,
            Outcome::Wrong(format!(
                "{status} outside the contract: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        ),
    }
}

/// The requested width, the input's aspect, and the input's colour.
fn judge_image(body: &[u8], input: &Input, width: u32) -> Outcome {
    let image = match turbojpeg::decompress(body, turbojpeg::PixelFormat::RGB) {
        Ok(i) => i,
        Err(e) => return Outcome::Wrong(format!("200 but not a JPEG: {e}")),
    };
    let want_h = (f64::from(width) * f64::from(input.height) / f64::from(input.width)).round() as i64;
    if image.width as u32 != width || (image.height as i64 - want_h).abs() > 1 {
        return Outcome::Wrong(format!(
            "got {}x{}, asked width {width} of a {}x{} input",
            image.width, image.height, input.width, input.height
        ));
    }
    let mut sum = [0u64; 3];
    for px in image.pixels.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += u64::from(px[c]);
        }
    }
    let n = (image.width * image.height).max(1) as u64;
    let mean = sum.map(|s| (s / n) as i32);
    let nearest = (0..PALETTE.len())
        .min_by_key(|&i| (0..3).map(|c| (i32::from(PALETTE[i][c]) - mean[c]).abs()).max())
        .unwrap_or(0);
    if nearest != input.colour {
        let whose = if nearest / VARIANTS != input.colour / VARIANTS {
            "ANOTHER TENANT's"
        } else {
            "another input's"
        };
        return Outcome::Wrong(format!(
            "the image is {whose} (colour {nearest}, sent {})",
            input.colour
        ));
    }
    Outcome::Ok
}

/// Open-loop load that runs until paused; samples accumulate across runs.
pub struct Load {
    pub samples: Arc<Mutex<Vec<Sample>>>,
    running: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
    pub overflow: Arc<AtomicUsize>,
    driver: Option<tokio::task::JoinHandle<()>>,
    pub t0: Instant,
}

pub struct Target {
    pub url: String,
    pub keys: Vec<String>,
    pub inputs: Arc<Vec<Input>>,
    pub rate: u64,
}

impl Load {
    pub fn new() -> Self {
        Self {
            samples: Arc::default(),
            running: Arc::default(),
            in_flight: Arc::default(),
            overflow: Arc::default(),
            driver: None,
            t0: Instant::now(),
        }
    }

    pub fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Starts (or resumes) sending `rate` requests per second, tenants in turn.
    pub fn start(&mut self, target: Arc<Target>) {
        self.running.store(true, Ordering::SeqCst);
        let (running, in_flight, overflow, samples, t0) = (
            self.running.clone(),
            self.in_flight.clone(),
            self.overflow.clone(),
            self.samples.clone(),
            self.t0,
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        self.driver = Some(tokio::spawn(async move {
            let start = Instant::now();
            let interval = Duration::from_micros(1_000_000 / target.rate);
            let mut i: u64 = 0;
            while running.load(Ordering::SeqCst) {
                let at = start + interval * i as u32;
                tokio::time::sleep_until(at.into()).await;
                i += 1;
                if in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
                    overflow.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                in_flight.fetch_add(1, Ordering::SeqCst);
                let (client, target, samples, in_flight) =
                    (client.clone(), target.clone(), samples.clone(), in_flight.clone());
                tokio::spawn(async move {
                    let sample = one(&client, &target, i, t0.elapsed(), at).await;
                    samples.lock().unwrap().push(sample);
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }));
    }

    /// Stops sending and waits for every request in flight to end.
    pub async fn pause(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(d) = self.driver.take() {
            let _ = d.await;
        }
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }
}

async fn one(client: &reqwest::Client, target: &Target, i: u64, sent: Duration, at: Instant) -> Sample {
    let tenant = (i % target.keys.len() as u64) as usize;
    let variant = ((i / target.keys.len() as u64) % VARIANTS as u64) as usize;
    let input = &target.inputs[tenant * VARIANTS + variant];
    let width = 48 + (i * 7 % 100) as u32;
    let result = client
        .post(format!("{}/v1/resize?width={width}&format=jpeg", target.url))
        .bearer_auth(&target.keys[tenant])
        .body(input.bytes.clone())
        .send()
        .await;
    let (status, outcome) = match result {
        Ok(resp) => judge(resp, input, width).await,
        Err(e) => (0, Outcome::NoAnswer(format!("transport: {e}"))),
    };
    Sample {
        tenant,
        sent,
        latency: at.elapsed(),
        status,
        outcome,
    }
}
