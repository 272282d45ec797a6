#![no_main]
// The properties live in resizer_fuzz::pipeline_heif's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("pipeline_heif").expect("listed")(data));
