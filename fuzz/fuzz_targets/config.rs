#![no_main]
// The properties live in resizer_fuzz::config's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("config").expect("listed")(data));
