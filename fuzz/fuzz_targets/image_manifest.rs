#![no_main]
//! Fuzz target `image_manifest`: see [`crust_fuzz::image_manifest`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| crust_fuzz::image_manifest(data));
