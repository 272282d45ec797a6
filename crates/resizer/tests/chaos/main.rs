//! Chaos on a real cluster on loopback (`deploy/cluster.sh`: 3 NATS servers,
//! PostgreSQL, Garage, identity, 2 API nodes behind HAProxy, 2 workers, 2
//! aggregators), each component on its own loopback address and in its own
//! cgroup, so nftables can cut any pair; plus kill -9, SIGSTOP, full disks and
//! clock jumps. Open-loop load from three tenants runs through HAProxy; after
//! each fault is healed the load pauses and the checker (checker.rs) verifies
//! the invariants; figures per fault go to a table (docs/reliability.md).
//!
//! `RESIZER_CHAOS_SCHEDULE`: `ci` (default, ≤ 4 min), `full` (every fault once),
//! `pick:N,M` (those of `full`, by position), `soak` (random faults for `RESIZER_CHAOS_SOAK_SECS`, default 3600, seeded by
//! `RESIZER_CHAOS_SEED`, printed), `off`. `RESIZER_CHAOS_HOLD_SECS` (fault
//! length; 8 in ci, 20 otherwise), `RESIZER_CHAOS_RATE` (requests/s, 30),
//! `RESIZER_CHAOS_REPORT` (write the markdown table there).
//! `scripts/chaos.sh` runs each schedule.

mod checker;
mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod faults;
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::{Checker, Window, recovery};
use cluster::Cluster;
use faults::Fault;
use workload::{Load, Target};

/// Steady load before each fault.
const BASELINE: Duration = Duration::from_secs(3);
/// After-heal figures cover this long.
const AFTER: Duration = Duration::from_secs(8);
/// The longest the suite waits for recovery after a heal.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);
const TENANTS: usize = 3;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One fault's row of the report.
struct Row {
    fault: Fault,
    target: String,
    hold: Duration,
    /// From the injection to the end of the recovery wait: the fault's whole effect.
    span: (Duration, Duration),
    during: Window,
    after: Window,
    first_ok: Option<Duration>,
    p99_back: Option<Duration>,
    violations: Vec<String>,
}

/// The schedule: faults with their holds.
fn schedule() -> Option<(String, Vec<(Fault, Duration)>)> {
    let which = std::env::var("RESIZER_CHAOS_SCHEDULE").unwrap_or_else(|_| "ci".into());
    let hold = |default| Duration::from_secs(env_u64("RESIZER_CHAOS_HOLD_SECS", default));
    let list = match which.as_str() {
        "off" => return None,
        "ci" => faults::ci().into_iter().map(|f| (f, hold(8))).collect(),
        "full" => faults::full().into_iter().map(|f| (f, hold(20))).collect(),
        // One or a few faults of the full list by position: "pick:7" replays the identity isolation.
        pick if pick.starts_with("pick:") => {
            let all = faults::full();
            pick[5..]
                .split(',')
                .map(|i| (all[i.trim().parse::<usize>().expect("pick:N,M")], hold(20)))
                .collect()
        }
        "soak" => {
            let seed = env_u64("RESIZER_CHAOS_SEED", resizer_core::time::now_unix_ms());
            println!("chaos soak seed {seed} (RESIZER_CHAOS_SEED={seed} replays it)");
            // More than an hour can hold; the loop stops at the time limit.
            faults::random(seed, 10_000)
        }
        other => panic!("RESIZER_CHAOS_SCHEDULE={other}: ci, full, soak, pick:N,… or off"),
    };
    Some((which, list))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_chaos_schedule_keeps_the_invariants() {
    let Some((which, plan)) = schedule() else {
        println!("RESIZER_CHAOS_SCHEDULE=off: chaos skipped");
        return;
    };
    let soak_limit = Duration::from_secs(env_u64("RESIZER_CHAOS_SOAK_SECS", 3600));
    let cluster = cluster::up();
    let began_unix = resizer_core::time::now_unix_secs();
    let mut tenants = Vec::new();
    for t in 0..TENANTS {
        tenants.push(cluster.tenant(&format!("chaos-{t}")).await);
    }
    let target = Arc::new(Target {
        url: cluster.public_url.clone(),
        keys: tenants.iter().map(|(_, k)| k.clone()).collect(),
        inputs: Arc::new(workload::inputs(TENANTS)),
        rate: env_u64("RESIZER_CHAOS_RATE", 30),
    });
    let probes = warm_up(&cluster, &target).await;
    // Issues keys while identity is cut off; its usage is not checked.
    let probe_tenant = cluster.tenant("chaos-new-keys").await.0;
    let checker = Checker {
        cluster: &cluster,
        tenants: &tenants,
        began_unix,
        probes,
    };
    let mut load = Load::new();
    let mut rows = Vec::new();
    let run_started = Instant::now();
    for (fault, hold) in plan {
        if which == "soak" && run_started.elapsed() >= soak_limit {
            break;
        }
        rows.push(run_fault(&cluster, &checker, &mut load, &target, fault, hold, &probe_tenant).await);
    }
    let healthy = final_service(&checker, &mut load, &target).await;
    let samples = load.snapshot();
    let mut report = report(&which, &rows, &samples, run_started.elapsed());
    report.push_str(&format!("\nAfter the schedule: {}.\n", healthy.summary));
    println!("{report}");
    if let Ok(path) = std::env::var("RESIZER_CHAOS_REPORT") {
        std::fs::write(&path, &report).unwrap();
    }
    let broken: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.violations
                .iter()
                .map(move |v| format!("{}: {v}", r.fault.name()))
        })
        .collect();
    assert!(broken.is_empty(), "invariants broken:\n{}", broken.join("\n"));
    assert!(
        healthy.violations.is_empty(),
        "not back to full service: {:?}",
        healthy.violations
    );
    for r in &rows {
        assert!(
            r.first_ok.is_some() && r.p99_back.is_some(),
            "{} did not recover within {RECOVERY_LIMIT:?}",
            r.fault.name()
        );
    }
}

struct Final {
    summary: String,
    violations: Vec<String>,
}

/// The end: 10 s of steady load all answered 200 with p99 under 500 ms, and
/// the checks over the whole run (every component running and JetStream on
/// every server among them).
async fn final_service(checker: &Checker<'_>, load: &mut Load, target: &Arc<Target>) -> Final {
    let mut violations = Vec::new();
    let from = load.now();
    load.start(target.clone());
    tokio::time::sleep(Duration::from_secs(10)).await;
    load.pause().await;
    let samples = load.snapshot();
    let steady = Window::of(&samples, from, load.now());
    if steady.ok != steady.requests || steady.p99_ms.is_none_or(|p| p >= 500) {
        violations.push(format!(
            "steady load after the schedule: {}/{} 200, p99 {:?} ms",
            steady.ok, steady.requests, steady.p99_ms
        ));
    }
    let verdict = checker.check(&samples).await;
    for e in &verdict.evidence {
        println!("    {e}");
    }
    violations.extend(verdict.violations);
    Final {
        summary: format!(
            "10 s of steady load {}/{} answered 200, p99 {}; invariants over the whole run: {} ({})",
            steady.ok,
            steady.requests,
            ms(steady.p99_ms),
            if violations.is_empty() { "hold" } else { "BROKEN" },
            verdict.evidence.join("; ")
        ),
        violations,
    }
}

/// Waits until every tenant's key works on both API nodes (an empty body: 400
/// once the key is known, 401 before). Returns the probes sent per tenant:
/// they are metered (as failures) too.
async fn warm_up(cluster: &Cluster, target: &Target) -> Vec<u64> {
    let started = Instant::now();
    let mut probes = vec![0u64; target.keys.len()];
    'wait: loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "keys never reached the API nodes"
        );
        for (t, key) in target.keys.iter().enumerate() {
            for (name, port) in [
                ("api-1", cluster.port_base + 51),
                ("api-2", cluster.port_base + 52),
            ] {
                probes[t] += 1;
                let known = cluster
                    .client
                    .post(format!("http://{}:{port}/v1/resize?width=10", cluster.addr(name)))
                    .bearer_auth(key)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 400);
                if !known {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'wait;
                }
            }
        }
        return probes;
    }
}

async fn run_fault(
    cluster: &Cluster,
    checker: &Checker<'_>,
    load: &mut Load,
    target: &Arc<Target>,
    fault: Fault,
    hold: Duration,
    probe_tenant: &str,
) -> Row {
    load.start(target.clone());
    tokio::time::sleep(BASELINE).await;
    let inject_at = load.now();
    let injected = fault.inject(cluster).await;
    let (target_name, heal_cmds, flap) = match injected {
        Ok(i) => (i.target, i.heal, i.flap),
        Err(e) => {
            load.pause().await;
            return failed_row(fault, hold, format!("could not inject: {e}"));
        }
    };
    println!(
        "[{:>6.1}s] inject {} on {target_name}",
        inject_at.as_secs_f64(),
        fault.name()
    );
    let new_key = match fault {
        Fault::IdentityIsolated => Some(new_key_waits(cluster, target, probe_tenant).await),
        _ => None,
    };
    // The hold counts from the injection, probes included.
    hold_fault(cluster, hold.saturating_sub(load.now() - inject_at), flap).await;
    let heal_at = load.now();
    for c in &heal_cmds {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        if let Err(e) = cluster.ctl(&args) {
            println!("heal {args:?} failed: {e}");
        }
    }
    println!("[{:>6.1}s] healed", heal_at.as_secs_f64());
    let (first_ok, p99_back) = wait_recovery(load, heal_at).await;
    load.pause().await;
    let samples = load.snapshot();
    let mut verdict = checker.check(&samples).await;
    if let Some((key, refused)) = new_key {
        let works = new_key_works(cluster, target, &key).await;
        verdict.evidence.push(format!(
            "a key issued while identity was cut off: refused meanwhile: {refused}; works after the heal: {works}"
        ));
        if !works {
            verdict
                .violations
                .push("a key issued during the isolation never worked after the heal".into());
        }
    }
    for e in &verdict.evidence {
        println!("    {e}");
    }
    for v in &verdict.violations {
        println!("    VIOLATION {v}");
    }
    Row {
        fault,
        target: target_name,
        hold,
        span: (inject_at, load.now()),
        during: Window::of(&samples, inject_at, heal_at),
        after: Window::of(&samples, heal_at, heal_at + AFTER),
        first_ok,
        p99_back,
        violations: verdict.violations,
    }
}

/// A key issued while identity is cut off cannot reach the API nodes' caches:
/// returns it and whether HAProxy's nodes refused it (401) 2 s later.
async fn new_key_waits(cluster: &Cluster, target: &Target, tenant: &str) -> (String, bool) {
    let key = cluster.new_key(tenant).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = resize_status(cluster, target, &key).await;
    (key, status == Some(401))
}

/// Whether the key is answered 200 within 15 s (the caches catch up after the heal).
async fn new_key_works(cluster: &Cluster, target: &Target, key: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if resize_status(cluster, target, key).await == Some(200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

async fn resize_status(cluster: &Cluster, target: &Target, key: &str) -> Option<u16> {
    let resp = cluster
        .client
        .post(format!("{}/v1/resize?width=32", target.url))
        .bearer_auth(key)
        .body(target.inputs[0].bytes.clone())
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

/// Holds the fault; a flapping one breaks and mends every 2 s.
async fn hold_fault(cluster: &Cluster, hold: Duration, flap: Option<(Vec<String>, Vec<String>)>) {
    let Some((cut, mend)) = flap else {
        tokio::time::sleep(hold).await;
        return;
    };
    let started = Instant::now();
    let mut broken = false;
    while started.elapsed() < hold {
        let c = if broken { &mend } else { &cut };
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        let _ = cluster.ctl(&args);
        broken = !broken;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Keeps the load on until recovery shows (and `AFTER` of after-heal figures exist).
async fn wait_recovery(load: &Load, heal_at: Duration) -> (Option<Duration>, Option<Duration>) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let samples = load.snapshot();
        let (first_ok, p99_back) = recovery(&samples, heal_at);
        let enough = load.now() >= heal_at + AFTER;
        if (first_ok.is_some() && p99_back.is_some() && enough) || started.elapsed() >= RECOVERY_LIMIT {
            return (first_ok, p99_back);
        }
    }
}

fn failed_row(fault: Fault, hold: Duration, why: String) -> Row {
    Row {
        fault,
        target: "—".into(),
        hold,
        span: (Duration::ZERO, Duration::ZERO),
        during: Window::default(),
        after: Window::default(),
        first_ok: None,
        p99_back: None,
        violations: vec![why],
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn ms(p: Option<u64>) -> String {
    p.map_or("—".into(), |p| format!("{p} ms"))
}

fn report(which: &str, rows: &[Row], samples: &[workload::Sample], took: Duration) -> String {
    let mut out = format!(
        "Schedule `{which}`, {} faults, {:.0} s, {} requests.\n\n\
         | fault | target | hold | availability during | errors during | p99 during | p99 after | first 200 after heal | p99 < 500 ms after heal | invariants |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        rows.len(),
        took.as_secs_f64(),
        samples.len()
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} s | {:.2} % ({}/{}) | {} | {} | {} | {} | {} | {} |\n",
            r.fault.name(),
            r.target.replace('|', "\\|"),
            r.hold.as_secs(),
            r.during.availability(),
            r.during.ok,
            r.during.requests,
            r.during.errors_text(),
            ms(r.during.p99_ms),
            ms(r.after.p99_ms),
            secs(r.first_ok),
            secs(r.p99_back),
            if r.violations.is_empty() { "hold" } else { "BROKEN" }
        ));
    }
    let all = Window::of(samples, Duration::ZERO, Duration::MAX);
    let majority: Vec<&Row> = rows.iter().filter(|r| r.fault.removes_majority()).collect();
    let excluded: Vec<Window> = majority
        .iter()
        .map(|r| Window::of(samples, r.span.0, r.span.1))
        .collect();
    let n = all.requests - excluded.iter().map(|w| w.requests).sum::<usize>();
    let ok = all.ok - excluded.iter().map(|w| w.ok).sum::<usize>();
    out.push_str(&format!(
        "\nAvailability over the schedule: {:.3} % ({ok}/{n} answered 200{}); all errors: {}.\n",
        100.0 * ok as f64 / n.max(1) as f64,
        if majority.is_empty() {
            String::new()
        } else {
            ", majority-loss faults excluded from injection to recovery".into()
        },
        all.errors_text()
    ));
    out
}
