//! An uploaded photo: decode, detection, gates, embedding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = attendance::fuzz::image_upload(data);
});
