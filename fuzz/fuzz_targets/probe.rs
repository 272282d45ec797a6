#![no_main]
// The properties live in resizer_fuzz::probe's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("probe").expect("listed")(data));
