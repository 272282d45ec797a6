//! Fuzz targets: for every parser that reads bytes from outside, the
//! properties it must keep on *any* input, as plain functions.
//!
//! Each `fn(&[u8])` panics when a property breaks. Two drivers call them:
//! the libFuzzer binaries under `/fuzz` (coverage-guided search, see
//! `scripts/fuzz.sh`), and this crate's tests, which replay the kept corpus
//! and every past crash on each `cargo test`. [`TARGETS`] is the one list
//! both read, so a target cannot exist in one and not the other.
//!
//! - [`images`]: the header probe and the whole pipeline per input format.
//! - [`grammar`]: the resize query, `Accept`, RFC 3339 and the usage query,
//!   the headers we parse (`traceparent`, bearer keys, job tokens).
//! - [`messages`]: what crosses the network between roles: job
//!   descriptors, usage records, the identity feed's frames.
//! - [`storage`]: usage log segments (torn and truncated) and S3 listings.
//! - [`config`]: the configuration loader.

pub mod config;
pub mod grammar;
pub mod images;
pub mod messages;
pub mod storage;

/// A fuzz target: panics when a property breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its libFuzzer binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("probe", images::probe),
    ("pipeline_jpeg", images::pipeline_jpeg),
    ("pipeline_png", images::pipeline_png),
    ("pipeline_webp", images::pipeline_webp),
    ("pipeline_heif", images::pipeline_heif),
    ("pipeline_gif", images::pipeline_gif),
    ("resize_query", grammar::resize_query),
    ("accept", grammar::accept),
    ("usage_query", grammar::usage_query),
    ("headers", grammar::headers),
    ("job_descriptor", messages::job_descriptor),
    ("usage_record", messages::usage_record),
    ("identity_feed", messages::identity_feed),
    ("usage_segment", storage::usage_segment),
    ("s3_listing", storage::s3_listing),
    ("config", config::config),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Splits the input at the first occurrence of `sep`: two documents in one
/// input, for targets that read a pair (a snapshot then its changes).
pub(crate) fn split_once(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
