//! An uploaded photo: decode, detection, gates, embedding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| attendance::fuzz::image_upload(data));
