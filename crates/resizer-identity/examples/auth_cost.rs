//! Measures what authentication costs on the request path: key id lookup
//! plus constant-time hash comparison in an [`AuthCache`] of 100,000 keys.
//!
//! `cargo run --release -p resizer-identity --example auth_cost`

use std::time::Instant;

use resizer_core::api_key;
use resizer_core::ids::TenantId;
use resizer_identity::{AuthCache, Snapshot, Tenant};

fn main() {
    const TENANTS: usize = 10_000;
    const KEYS: usize = 100_000;
    const LOOKUPS: usize = 1_000_000;
    let tenants: Vec<Tenant> = (0..TENANTS)
        .map(|i| Tenant {
            id: TenantId::random(),
            name: format!("t{i}"),
            rate_limit_rps: 100,
            burst: 200,
            suspended: false,
            created_at: 0,
            updated_at: 0,
            originals_quota: Default::default(),
        })
        .collect();
    let mut secrets = Vec::with_capacity(KEYS);
    let mut keys = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let k = api_key::issue();
        keys.push((k.key_id, tenants[i % TENANTS].id.clone(), k.hash.to_hex()));
        secrets.push(k.secret);
    }
    let cache = AuthCache::new();
    cache.load(Snapshot {
        seq: 1,
        tenants,
        keys,
        signing_keys: Vec::new(),
        flags: Vec::new(),
    });

    let mut samples = Vec::with_capacity(LOOKUPS);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let started = Instant::now();
    for _ in 0..LOOKUPS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let secret = &secrets[(state % KEYS as u64) as usize];
        let t = Instant::now();
        let ok = cache.authenticate(secret).is_ok();
        samples.push(t.elapsed().as_nanos() as u64);
        assert!(ok);
    }
    let total = started.elapsed();
    // A wrong secret for a real key id costs the same comparison.
    let forged = format!("{}0", &secrets[0][..secrets[0].len() - 1]);
    let t = Instant::now();
    let refused = cache.authenticate(&forged).is_err();
    let forged_ns = t.elapsed().as_nanos();
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)] as f64 / 1000.0;
    println!(
        "auth cache: {KEYS} keys, {TENANTS} tenants, {LOOKUPS} lookups on one thread: \
         p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs; {:.0} lookups/s; forged secret refused={refused} in {:.2} µs",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        *samples.last().unwrap() as f64 / 1000.0,
        LOOKUPS as f64 / total.as_secs_f64(),
        forged_ns as f64 / 1000.0
    );
}
