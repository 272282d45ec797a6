//! A real cluster for the tests that run one (`cluster.rs`, `chaos/`):
//! `deploy/cluster.sh` on its own port base and directory, and what those tests
//! read from its engines (JetStream state, PostgreSQL roll-ups, the admin API,
//! role metrics).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

pub struct Cluster {
    pub dir: PathBuf,
    pub port_base: u16,
    /// Settings for every role (`RESIZER_…`), passed to each `cluster.sh` call.
    env: Vec<(String, String)>,
    pub public_url: String,
    pub admin_url: String,
    pub admin_token: String,
    /// Whether `up` could set up network faults (root, nftables, cgroup v2).
    pub faults: bool,
    pub client: reqwest::Client,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cluster.sh")
}

fn command(dir: &Path, port_base: u16, env: &[(String, String)], args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .env("RESIZER_CLUSTER_DIR", dir)
        .env("RESIZER_CLUSTER_PORT_BASE", port_base.to_string())
        .env("RESIZER_BIN", env!("CARGO_BIN_EXE_resizer"))
        .env("RESIZER_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("running deploy/cluster.sh")
}

impl Cluster {
    /// Starts the cluster in `dir` on ports `port_base`+1..+91 with extra role
    /// settings, first stopping whatever an interrupted run left in `dir`.
    pub fn up(dir: PathBuf, port_base: u16, env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let _ = command(&dir, port_base, &env, &["down"]);
        let out = command(&dir, port_base, &env, &["up"]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() {
            let _ = command(&dir, port_base, &env, &["down"]);
            panic!("cluster up failed:\n{stdout}\n{stderr}");
        }
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("`up` printed no {name}=: {stdout}"))
                .to_string()
        };
        Self {
            public_url: field("public_url"),
            admin_url: field("admin_url"),
            admin_token: field("admin_token"),
            faults: !stderr.contains("faults unavailable"),
            dir,
            port_base,
            env,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Output {
        command(&self.dir, self.port_base, &self.env, args)
    }

    /// Runs `deploy/cluster.sh ARGS`, which must succeed.
    pub fn must(&self, args: &[&str]) {
        if let Err(e) = self.ctl(args) {
            panic!("cluster.sh {args:?} failed: {e}");
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Runs `deploy/cluster.sh ARGS`; returns its stderr on failure.
    pub fn ctl(&self, args: &[&str]) -> Result<(), String> {
        let out = self.command(args);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// `deploy/cluster.sh status`: one line per component, `NAME running pid=…` or `NAME stopped`.
    pub fn status(&self) -> String {
        String::from_utf8_lossy(&self.command(&["status"]).stdout).to_string()
    }

    pub fn addr(&self, name: &str) -> String {
        let out = self.command(&["addr", name]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .post(format!("{}{path}", self.admin_url))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{path}");
        resp.json().await.unwrap()
    }

    pub async fn admin_get(&self, path_and_query: &str) -> Result<Value, String> {
        let resp = self
            .client
            .get(format!("{}{path_and_query}", self.admin_url))
            .bearer_auth(&self.admin_token)
            // An audit read scans the day's archive objects: seconds, not milliseconds.
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    /// A new tenant (no rate limit in the way) and one key for it.
    pub async fn tenant(&self, name: &str) -> (String, String) {
        let tenant = self
            .admin_post(
                "/admin/v1/tenants",
                json!({"name": name, "rate_limit_rps": 10000}),
            )
            .await;
        let id = tenant["id"].as_str().unwrap().to_string();
        let key = self.new_key(&id).await;
        (id, key)
    }

    /// A new key of the tenant.
    pub async fn new_key(&self, tenant_id: &str) -> String {
        self.admin_post(&format!("/admin/v1/tenants/{tenant_id}/keys"), json!({}))
            .await["secret"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every job stream as the most advanced live server reports it.
    pub async fn job_streams(&self) -> Vec<StreamState> {
        let mut best: Vec<StreamState> = Vec::new();
        for n in 1..=3u16 {
            let url = format!(
                "http://{}:{}/jsz?streams=true&consumers=true&config=true",
                self.addr(&format!("nats-{n}")),
                self.port_base + 20 + n
            );
            let Ok(resp) = self.client.get(url).timeout(Duration::from_secs(2)).send().await else {
                continue;
            };
            let Ok(v) = resp.json::<Value>().await else {
                continue;
            };
            for account in v["account_details"].as_array().into_iter().flatten() {
                for s in account["stream_detail"].as_array().into_iter().flatten() {
                    let name = s["name"].as_str().unwrap_or_default();
                    if !name.starts_with("RESIZER_JOBS") {
                        continue;
                    }
                    // With single-replica consumers a replaced one may linger
                    // until its server is back: the newest epoch counts.
                    let epoch = |c: &&Value| {
                        let name = c["name"].as_str().unwrap_or_default();
                        name.strip_prefix("workers-").and_then(|e| e.parse::<u64>().ok())
                    };
                    let consumers = s["consumer_detail"].as_array().into_iter().flatten();
                    let c = consumers.max_by_key(epoch).unwrap_or(&Value::Null);
                    let state = StreamState {
                        keeps_acked: s["config"]["retention"].as_str() == Some("limits"),
                        name: name.to_string(),
                        leader: s["cluster"]["leader"].as_str().unwrap_or_default().to_string(),
                        consumer_leader: c["cluster"]["leader"].as_str().unwrap_or_default().to_string(),
                        published: s["state"]["last_seq"].as_u64().unwrap_or(0),
                        messages: s["state"]["messages"].as_u64().unwrap_or(0),
                        acked: c["ack_floor"]["stream_seq"].as_u64().unwrap_or(0),
                        pending: c["num_pending"].as_u64().unwrap_or(0),
                        ack_pending: c["num_ack_pending"].as_u64().unwrap_or(0),
                    };
                    match best.iter_mut().find(|b| b.name == state.name) {
                        Some(b) if (b.published, b.acked) < (state.published, state.acked) => *b = state,
                        Some(_) => {}
                        None => best.push(state),
                    }
                }
            }
        }
        best.sort_by(|a, b| a.name.cmp(&b.name));
        best
    }

    /// How many NATS servers run JetStream now (`/healthz?js-enabled-only=true`).
    pub async fn jetstream_servers(&self) -> usize {
        let mut up = 0;
        for n in 1..=3u16 {
            let url = format!(
                "http://{}:{}/healthz?js-enabled-only=true",
                self.addr(&format!("nats-{n}")),
                self.port_base + 20 + n
            );
            let ok = self.client.get(url).timeout(Duration::from_secs(2)).send().await;
            if ok.is_ok_and(|r| r.status().is_success()) {
                up += 1;
            }
        }
        up
    }

    /// One role's Prometheus text (API nodes want the cluster secret).
    pub async fn metrics(&self, name: &str, port: u16) -> String {
        let secret = std::fs::read_to_string(self.dir.join("cluster-secret")).unwrap_or_default();
        let Ok(resp) = self
            .client
            .get(format!("http://{}:{port}/metrics", self.addr(name)))
            .bearer_auth(secret.trim())
            .timeout(Duration::from_secs(2))
            .send()
            .await
        else {
            return String::new();
        };
        resp.text().await.unwrap_or_default()
    }

    /// Which aggregator holds the lease now, if one does.
    pub async fn active_aggregator(&self) -> Option<&'static str> {
        for (name, port) in [
            ("aggregator", self.port_base + 76),
            ("aggregator-2", self.port_base + 77),
        ] {
            let text = self.metrics(name, port).await;
            if text
                .lines()
                .any(|l| l.starts_with("resizer_aggregator_active") && l.ends_with(" 1"))
            {
                return Some(name);
            }
        }
        None
    }

    /// The PostgreSQL roll-up store, as the checker's own client.
    pub async fn usage_db(&self) -> Option<tokio_postgres::Client> {
        let password = std::fs::read_to_string(self.dir.join("pg/password")).ok()?;
        let url = format!(
            "postgres://resizer:{}@{}:{}/postgres",
            password.trim(),
            self.addr("postgres"),
            self.port_base + 30
        );
        let (db, connection) = tokio::time::timeout(
            Duration::from_secs(3),
            tokio_postgres::connect(&url, tokio_postgres::NoTls),
        )
        .await
        .ok()?
        .ok()?;
        tokio::spawn(connection);
        Some(db)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command(&["down"]);
    }
}

/// One job stream and its shared consumer, counted from both ends.
#[derive(Debug, Clone)]
pub struct StreamState {
    pub name: String,
    pub leader: String,
    pub consumer_leader: String,
    /// Jobs the API nodes published into it (its last sequence number).
    pub published: u64,
    /// Jobs still stored.
    pub messages: u64,
    /// Jobs workers acknowledged (the consumer's ack floor).
    pub acked: u64,
    pub pending: u64,
    pub ack_pending: u64,
    /// Limits retention (single-replica consumers): acked jobs stay until they age out.
    pub keeps_acked: bool,
}

impl StreamState {
    pub fn drained(&self) -> bool {
        (self.keeps_acked || self.messages == 0)
            && self.pending == 0
            && self.ack_pending == 0
            && self.acked == self.published
    }
}
