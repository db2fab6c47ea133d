//! The shipped `deploy/config.toml` is accepted by crustd, both as shipped (every key
//! commented) and with every key uncommented, so the documented keys, types and defaults are
//! ones crustd knows (unknown keys are an error). Runs `deploy/check-config.sh`.

use crust_e2e::require_root;

#[test]
fn shipped_config_is_accepted_by_crustd() {
    require_root!();
    let crustd = crust_e2e::workspace_bin("crust-cri", "crustd");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let out = std::process::Command::new("bash")
        .arg(repo.join("deploy/check-config.sh"))
        .arg(&crustd)
        .output()
        .expect("run deploy/check-config.sh");
    assert!(
        out.status.success(),
        "check-config failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("accepts deploy/config.toml"));
}
