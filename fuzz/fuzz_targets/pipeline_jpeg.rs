#![no_main]
// The properties live in resizer_fuzz::pipeline_jpeg's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("pipeline_jpeg").expect("listed")(data));
