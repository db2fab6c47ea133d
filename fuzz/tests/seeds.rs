//! Every checked-in seed (and every regression input under `regressions/`) through its
//! target's body, uninstrumented: `cargo test` in `fuzz/` (the CI `fuzz` stage runs it).

use std::fs;
use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(target);
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd {
            let p = e.expect("read a seed dir").path();
            let data = fs::read(&p).expect("read a seed");
            eprintln!("{target}: {}", p.display());
            f(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no seeds for {target}");
}

#[test]
fn layer_unpack() {
    replay("layer_unpack", crust_fuzz::layer_unpack);
}

#[test]
fn image_reference() {
    replay("image_reference", crust_fuzz::image_reference);
}

#[test]
fn image_manifest() {
    replay("image_manifest", crust_fuzz::image_manifest);
}

#[test]
fn image_config() {
    replay("image_config", crust_fuzz::image_config);
}

#[test]
fn spdy_frames() {
    replay("spdy_frames", crust_fuzz::spdy_frames);
}

#[test]
fn websocket_frames() {
    replay("websocket_frames", crust_fuzz::websocket_frames);
}

#[test]
fn cri_to_oci() {
    replay("cri_to_oci", crust_fuzz::cri_to_oci);
}
