//! An /identify or /enroll body: multipart or JSON, base64 images.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = attendance::fuzz::request_form(data);
});
