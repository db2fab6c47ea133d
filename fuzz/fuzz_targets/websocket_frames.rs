#![no_main]
//! Fuzz target `websocket_frames`: see [`crust_fuzz::websocket_frames`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| crust_fuzz::websocket_frames(data));
