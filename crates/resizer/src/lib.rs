//! The part of the `resizer` binary other crates may link: its typed
//! configuration, so the config fuzz target (`resizer-fuzz`) drives the very
//! loader `main` uses. Everything else lives in the binary's own modules.

pub mod config;
