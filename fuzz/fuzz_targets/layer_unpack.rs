#![no_main]
//! Fuzz target `layer_unpack`: see [`crust_fuzz::layer_unpack`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| crust_fuzz::layer_unpack(data));
