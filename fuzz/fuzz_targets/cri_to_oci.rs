#![no_main]
//! Fuzz target `cri_to_oci`: see [`crust_fuzz::cri_to_oci`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| crust_fuzz::cri_to_oci(data));
