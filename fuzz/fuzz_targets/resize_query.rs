#![no_main]
// The properties live in resizer_fuzz::resize_query's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("resize_query").expect("listed")(data));
