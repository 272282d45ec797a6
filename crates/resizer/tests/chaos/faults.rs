//! The faults and the schedules that order them. A fault is a `deploy/cluster.sh`
//! command to inject and one to heal; targets that depend on the cluster's
//! state (a stream's leader, the aggregator holding the lease) are resolved at
//! injection.

use std::time::Duration;

use crate::cluster::Cluster;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// One NATS server cut from the other two (clients still reach it).
    NatsMinority,
    /// The leader of a job stream cut from everyone.
    NatsStreamLeader,
    /// Packets from one NATS server to the others lost; the other way passes.
    NatsOneWay,
    /// nats-1 and nats-2 cut from each other; nats-3 sees both.
    NatsBridge,
    /// All three NATS servers cut from each other: no quorum anywhere.
    NatsMajority,
    /// api-1 cut from every NATS server: it must turn not-ready.
    ApiFromNats,
    /// api-1's NATS links cut and healed every 2 s.
    ApiFromNatsFlapping,
    /// worker-1 cut from api-1 (its internal port).
    WorkerFromApi,
    /// Identity cut from the API nodes, NATS and the object store: auth caches
    /// keep serving; a key issued meanwhile waits for the heal.
    IdentityIsolated,
    PostgresDown,
    ObjectStoreDown,
    /// The aggregator holding the lease cut from NATS.
    AggregatorCut,
    Kill(&'static str),
    Pause(&'static str),
    KillActiveAggregator,
    PauseActiveAggregator,
    /// api-2's data filesystem (its usage log) full.
    ApiDiskFull,
    /// nats-3's JetStream store full.
    NatsDiskFull,
    /// api-1's wall clock jumped by this many seconds.
    ApiClock(i32),
    /// The active aggregator's wall clock jumped.
    AggregatorClock(i32),
}

/// (target, inject commands, heal commands), each a `deploy/cluster.sh` argument list.
type Plan = (String, Vec<Vec<String>>, Vec<Vec<String>>);

/// A fault in place: what heals it.
pub struct Injected {
    pub target: String,
    pub heal: Vec<Vec<String>>,
    /// Toggled during the hold: (break, mend).
    pub flap: Option<(Vec<String>, Vec<String>)>,
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

const NATS: &str = "nats-1 nats-2 nats-3";

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Self::NatsMinority => "NATS minority partition".into(),
            Self::NatsStreamLeader => "NATS stream leader isolated".into(),
            Self::NatsOneWay => "NATS one-way loss".into(),
            Self::NatsBridge => "NATS bridge".into(),
            Self::NatsMajority => "NATS majority lost (all split)".into(),
            Self::ApiFromNats => "API node cut from NATS".into(),
            Self::ApiFromNatsFlapping => "API node ↔ NATS flapping (2 s)".into(),
            Self::WorkerFromApi => "worker cut from an API node".into(),
            Self::IdentityIsolated => "identity isolated".into(),
            Self::PostgresDown => "PostgreSQL down".into(),
            Self::ObjectStoreDown => "object store down".into(),
            Self::AggregatorCut => "active aggregator cut from NATS".into(),
            Self::Kill(n) => format!("kill -9 {n}"),
            Self::Pause(n) => format!("pause {n}"),
            Self::KillActiveAggregator => "kill -9 active aggregator".into(),
            Self::PauseActiveAggregator => "pause active aggregator".into(),
            Self::ApiDiskFull => "API node disk full (usage log)".into(),
            Self::NatsDiskFull => "NATS server disk full".into(),
            Self::ApiClock(s) => format!("API node clock {s:+} s"),
            Self::AggregatorClock(s) => format!("active aggregator clock {s:+} s"),
        }
    }

    /// Faults that remove a majority of a replicated engine (or the only one of
    /// something): clean refusals are expected, not availability.
    pub fn removes_majority(&self) -> bool {
        matches!(self, Self::NatsMajority)
    }

    /// Injects the fault; returns what heals it.
    pub async fn inject(&self, cluster: &Cluster) -> Result<Injected, String> {
        if *self == Self::ApiFromNatsFlapping {
            return Ok(Injected {
                target: "api-1".into(),
                heal: vec![cmd(&["net", "heal"])],
                flap: Some((cmd(&["net", "cut", "api-1", NATS]), cmd(&["net", "heal"]))),
            });
        }
        let (target, inject, heal) = match self.fixed() {
            Some(plan) => plan,
            None => self.resolved(cluster).await?,
        };
        for c in &inject {
            let args: Vec<&str> = c.iter().map(String::as_str).collect();
            cluster.ctl(&args)?;
        }
        Ok(Injected {
            target,
            heal,
            flap: None,
        })
    }

    /// Faults whose target is fixed: (target, inject commands, heal commands).
    fn fixed(&self) -> Option<Plan> {
        let one = |target: &str, inject: &[&str], heal: &[&str]| {
            (target.to_string(), vec![cmd(inject)], vec![cmd(heal)])
        };
        let cut = |a: &str, b: &str| one(a, &["net", "cut", a, b], &["net", "heal"]);
        Some(match *self {
            Self::NatsMinority => cut("nats-1", "nats-2 nats-3"),
            Self::NatsOneWay => (
                "nats-1 → nats-2, nats-3".into(),
                vec![
                    cmd(&["net", "drop", "nats-1", "nats-2"]),
                    cmd(&["net", "drop", "nats-1", "nats-3"]),
                ],
                vec![cmd(&["net", "heal"])],
            ),
            Self::NatsBridge => {
                // nats-3 is the bridge: it still sees both.
                let (_, inject, heal) = cut("nats-1", "nats-2");
                ("nats-1 / nats-2 split, nats-3 sees both".into(), inject, heal)
            }
            Self::NatsMajority => (
                NATS.into(),
                vec![
                    cmd(&["net", "cut", "nats-1", "nats-2 nats-3"]),
                    cmd(&["net", "cut", "nats-2", "nats-3"]),
                ],
                vec![cmd(&["net", "heal"])],
            ),
            Self::ApiFromNats => cut("api-1", NATS),
            Self::WorkerFromApi => cut("worker-1", "api-1"),
            // Its own database stays reachable, so keys can still be issued.
            Self::IdentityIsolated => {
                let (_, inject, heal) = cut("identity", "api-1 api-2 nats-1 nats-2 nats-3 garage");
                ("identity (from API nodes, NATS, Garage)".into(), inject, heal)
            }
            Self::PostgresDown => one("postgres", &["stop", "postgres"], &["start", "postgres"]),
            Self::ObjectStoreDown => one("garage", &["stop", "garage"], &["start", "garage"]),
            Self::Kill(n) => one(n, &["kill", n], &["start", n]),
            Self::Pause(n) => one(n, &["pause", n], &["resume", n]),
            Self::ApiDiskFull => one("api-2", &["disk", "fill", "api-2"], &["disk", "free", "api-2"]),
            // nats-server shuts JetStream down on a failed write and never re-enables it
            // when space returns: the runbook's heal is free space, then a restart.
            Self::NatsDiskFull => (
                "nats-3".into(),
                vec![cmd(&["disk", "fill", "nats-3"])],
                vec![cmd(&["disk", "free", "nats-3"]), cmd(&["restart", "nats-3"])],
            ),
            Self::ApiClock(s) => one(
                "api-1",
                &["skew", "api-1", &s.to_string()],
                &["skew", "api-1", "0"],
            ),
            _ => return None,
        })
    }

    /// Faults aimed at whoever holds a role now: a stream's leader, the
    /// aggregator holding the lease.
    async fn resolved(&self, cluster: &Cluster) -> Result<Plan, String> {
        if *self == Self::NatsStreamLeader {
            let streams = cluster.job_streams().await;
            let first = streams
                .first()
                .filter(|s| !s.leader.is_empty())
                .ok_or("no job stream leader")?;
            let leader = first.leader.as_str();
            return Ok((
                format!("{leader} (leads {})", first.name),
                vec![cmd(&["net", "cut", leader, "rest"])],
                vec![cmd(&["net", "heal"])],
            ));
        }
        let a = cluster
            .active_aggregator()
            .await
            .ok_or_else(|| "no aggregator holds the lease".to_string())?;
        let (inject, heal) = match *self {
            Self::AggregatorCut => (cmd(&["net", "cut", a, NATS]), cmd(&["net", "heal"])),
            Self::KillActiveAggregator => (cmd(&["kill", a]), cmd(&["start", a])),
            Self::PauseActiveAggregator => (cmd(&["pause", a]), cmd(&["resume", a])),
            Self::AggregatorClock(s) => (cmd(&["skew", a, &s.to_string()]), cmd(&["skew", a, "0"])),
            other => return Err(format!("{} has no plan", other.name())),
        };
        Ok((a.to_string(), vec![inject], vec![heal]))
    }
}

/// Every fault the suite knows, each once.
pub fn full() -> Vec<Fault> {
    use Fault::*;
    vec![
        NatsMinority,
        NatsStreamLeader,
        NatsOneWay,
        NatsBridge,
        ApiFromNats,
        ApiFromNatsFlapping,
        WorkerFromApi,
        IdentityIsolated,
        PostgresDown,
        ObjectStoreDown,
        AggregatorCut,
        Kill("api-1"),
        Kill("worker-1"),
        Kill("identity"),
        Kill("nats-2"),
        KillActiveAggregator,
        Pause("api-2"),
        Pause("worker-2"),
        Pause("identity"),
        Pause("nats-3"),
        PauseActiveAggregator,
        ApiDiskFull,
        NatsDiskFull,
        ApiClock(300),
        ApiClock(-300),
        AggregatorClock(300),
        AggregatorClock(-300),
        NatsMajority,
    ]
}

/// The short schedule CI runs (≤ 4 minutes): one fault of each family.
pub fn ci() -> Vec<Fault> {
    use Fault::*;
    vec![
        NatsStreamLeader,
        ApiFromNats,
        IdentityIsolated,
        Kill("worker-1"),
        AggregatorCut,
        ApiDiskFull,
        ApiClock(300),
    ]
}

/// `count` faults drawn from [`full`] (majority loss excluded) by a seeded
/// generator, each with its own hold: the soak's schedule, replayable by seed.
pub fn random(seed: u64, count: usize) -> Vec<(Fault, Duration)> {
    let pool: Vec<Fault> = full().into_iter().filter(|f| !f.removes_majority()).collect();
    let mut state = seed;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|_| {
            let fault = pool[(next() % pool.len() as u64) as usize];
            (fault, Duration::from_secs(5 + next() % 26))
        })
        .collect()
}
