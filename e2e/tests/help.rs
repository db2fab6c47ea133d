//! `-h`/`--help` of every installed binary: exits 0, prints usage on stdout, and says what
//! the program is and which configuration it reads (issue 15: an operator who runs
//! `crust-shim -h` on a node got "flag -h needs a value").

use std::process::Command;

/// Runs `bin flag`; its stdout, after checking the exit status and that stderr is empty.
fn help(package: &str, bin: &str, flag: &str) -> String {
    let path = crust_e2e::workspace_bin(package, bin);
    let out = Command::new(&path)
        .arg(flag)
        .output()
        .unwrap_or_else(|e| panic!("run {bin} {flag}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{bin} {flag} exited {}: {stdout}{stderr}",
        out.status
    );
    assert!(stderr.is_empty(), "{bin} {flag} wrote to stderr: {stderr}");
    assert!(
        stdout.starts_with(&format!(
            "{}: ",
            bin.replace("containerd-shim-crust-v2", "crust-shim")
        )),
        "{bin} {flag} does not start by naming itself: {stdout}"
    );
    stdout
}

#[test]
fn each_binary_says_what_it_is_and_what_it_reads() {
    // (package, binary, words the help must contain: what it is, what configures it)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "crust-cri",
            "crustd",
            &["CRI v1 daemon", "/etc/crust/config.toml", "Usage:"],
        ),
        (
            "crust-ctl",
            "crustctl",
            &["crictl-compatible", "/etc/crictl.yaml", "Usage:"],
        ),
        (
            "crust-shim",
            "crust-shim",
            &[
                "containerd shim v2",
                "CRUST_SHIM_",
                "Usage: crust-shim",
                "-keep-empty",
            ],
        ),
        (
            "crust-shim",
            "containerd-shim-crust-v2",
            &["containerd shim v2"],
        ),
        (
            "crust-runc",
            "crust-runc",
            &["Open Container Initiative runtime", "config.json", "Usage:"],
        ),
    ];
    for (package, bin, words) in cases {
        for flag in ["-h", "--help"] {
            let text = help(package, bin, flag);
            for w in *words {
                assert!(text.contains(w), "{bin} {flag} lacks {w:?}:\n{text}");
            }
        }
    }
}
