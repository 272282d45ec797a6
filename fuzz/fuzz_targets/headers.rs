#![no_main]
// The properties live in resizer_fuzz::headers's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("headers").expect("listed")(data));
