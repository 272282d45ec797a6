//! The part of the `resizer` binary other crates and its tests may link: its
//! typed configuration, so the config fuzz target (`resizer-fuzz`) drives the
//! very loader `main` uses, and the adapter that puts originals in the object
//! store. Everything else lives in the binary's own modules.

pub mod blobs;
pub mod config;
