//! Hit ratio of the variant cache under a Zipf workload, against an LRU of
//! the same byte budget, and of two API nodes behind consistent hashing
//! against round robin (issue 20). Pure simulation of the real cache type:
//! every request is a `get`, every miss an `insert` of the variant's bytes.
//!
//! `cargo run --release -p resizer-api --example variant_cache_zipf -- [VARIANTS] [REQUESTS] [ZIPF_S]`

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use resizer_api::variant_cache::{Variant, VariantCache};
use resizer_core::ImageFormat;
use resizer_core::ids::TenantId;

/// xorshift64*: deterministic, good enough to draw ranks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ranks drawn with probability ∝ 1 / rank^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / (k as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Self { cdf }
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// The baseline: least recently used, bounded by the same bytes.
struct Lru {
    budget: u64,
    used: u64,
    tick: u64,
    by_key: HashMap<usize, (u64, u64)>,
    by_tick: BTreeMap<u64, usize>,
}

impl Lru {
    fn new(budget: u64) -> Self {
        Self {
            budget,
            used: 0,
            tick: 0,
            by_key: HashMap::new(),
            by_tick: BTreeMap::new(),
        }
    }

    fn get_or_insert(&mut self, key: usize, size: u64) -> bool {
        self.tick += 1;
        if let Some((t, s)) = self.by_key.get(&key).copied() {
            self.by_tick.remove(&t);
            self.by_tick.insert(self.tick, key);
            self.by_key.insert(key, (self.tick, s));
            return true;
        }
        while self.used + size > self.budget {
            let Some((_, old)) = self.by_tick.pop_first() else {
                break;
            };
            self.used -= self.by_key.remove(&old).map_or(0, |(_, s)| s);
        }
        self.by_key.insert(key, (self.tick, size));
        self.by_tick.insert(self.tick, key);
        self.used += size;
        false
    }
}

fn variant(size: usize) -> Variant {
    Variant {
        bytes: Bytes::from(vec![0u8; size]),
        format: ImageFormat::Webp,
        width: 320,
        height: 240,
    }
}

/// A node's key from the variant's key, as HAProxy's consistent hash ring would pick it.
fn node_of(key: usize, nodes: usize) -> usize {
    // SplitMix64 of the key: a stand-in for the ring's hash of the URL path.
    let mut z = key as u64 ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % nodes as u64) as usize
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let variants: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let requests: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let s: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.9);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    // Thumbnail sizes 10–50 KB, fixed per variant.
    let sizes: Vec<usize> = (0..variants)
        .map(|_| 10_000 + (rng.next() % 40_000) as usize)
        .collect();
    let working_set: u64 = sizes.iter().map(|&s| s as u64).sum();
    let zipf = Zipf::new(variants, s);
    let trace: Vec<usize> = (0..requests).map(|_| zipf.draw(&mut rng)).collect();
    let tenant = TenantId::random();
    let etags: Vec<String> = (0..variants).map(|k| format!("\"{k:040}\"")).collect();
    println!(
        "{variants} variants, {:.0} MB working set, {requests} requests, Zipf s = {s}",
        working_set as f64 / 1e6
    );
    println!(
        "| cache / working set | S3-FIFO (ours) | LRU | 2 nodes, consistent hash | 2 nodes, round robin |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for fraction in [0.05, 0.10, 0.20, 0.40] {
        let budget = (working_set as f64 * fraction) as u64;
        let ours = VariantCache::new(budget);
        let mut lru = Lru::new(budget);
        let hashed = [VariantCache::new(budget), VariantCache::new(budget)];
        let round_robin = [VariantCache::new(budget), VariantCache::new(budget)];
        let (mut h_ours, mut h_lru, mut h_hash, mut h_rr) = (0u64, 0u64, 0u64, 0u64);
        for (i, &k) in trace.iter().enumerate() {
            let serve = |cache: &VariantCache| -> u64 {
                if cache.get(&tenant, &etags[k]).is_some() {
                    1
                } else {
                    cache.insert(&tenant, &etags[k], variant(sizes[k]));
                    0
                }
            };
            h_ours += serve(&ours);
            h_hash += serve(&hashed[node_of(k, 2)]);
            h_rr += serve(&round_robin[i % 2]);
            h_lru += u64::from(lru.get_or_insert(k, sizes[k] as u64 + 168));
        }
        let pct = |h: u64| 100.0 * h as f64 / requests as f64;
        println!(
            "| {:.0} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % |",
            fraction * 100.0,
            pct(h_ours),
            pct(h_lru),
            pct(h_hash),
            pct(h_rr)
        );
    }
}
