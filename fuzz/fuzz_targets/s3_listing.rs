#![no_main]
// The properties live in resizer_fuzz::s3_listing's module; see crates/resizer-fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| resizer_fuzz::target("s3_listing").expect("listed")(data));
