#![no_main]
//! Fuzz target `spdy_frames`: see [`crust_fuzz::spdy_frames`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| crust_fuzz::spdy_frames(data));
