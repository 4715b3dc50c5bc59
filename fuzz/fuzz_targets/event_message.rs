//! An MQTT events payload as the uplink decodes it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = attendance::fuzz::event_message(data);
});
