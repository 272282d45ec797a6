#![no_main]
// The properties live in resizer_fuzz::pipeline_gif's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("pipeline_gif").expect("listed")(data));
