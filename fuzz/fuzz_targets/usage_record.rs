#![no_main]
// The properties live in resizer_fuzz::usage_record's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("usage_record").expect("listed")(data));
