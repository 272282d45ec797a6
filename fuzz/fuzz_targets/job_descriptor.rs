#![no_main]
// The properties live in resizer_fuzz::job_descriptor's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("job_descriptor").expect("listed")(data));
