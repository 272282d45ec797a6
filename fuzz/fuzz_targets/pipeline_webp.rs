#![no_main]
// The properties live in resizer_fuzz::pipeline_webp's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("pipeline_webp").expect("listed")(data));
