#![no_main]
//! Fuzz target `image_reference`: see [`crust_fuzz::image_reference`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| crust_fuzz::image_reference(data));
