#![no_main]
// The properties live in resizer_fuzz::identity_feed's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("identity_feed").expect("listed")(data));
