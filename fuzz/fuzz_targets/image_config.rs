#![no_main]
//! Fuzz target `image_config`: see [`crust_fuzz::image_config`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| crust_fuzz::image_config(data));
