//! crustctl's runtime verbs against a real crustd, with crictl-style JSON/YAML configs.

use std::process::Command;

use crust_e2e::pods::setup;
use crust_e2e::require_root;

fn ctl(sock: &std::path::Path, args: &[&str]) -> (String, String, i32) {
    let out = Command::new(crust_e2e::workspace_bin("crust-ctl", "crustctl"))
        .arg("--runtime-endpoint")
        .arg(format!("unix://{}", sock.display()))
        .arg("--config")
        .arg("/nonexistent/crictl.yaml")
        .args(args)
        .output()
        .expect("run crustctl");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn crustctl_pod_verbs() {
    require_root!();
    let (_reg, d, _rt, img, logs, _g) = setup().await;
    let sock = d.socket();
    let dir = tempfile::tempdir().unwrap();
    let pod_json = dir.path().join("pod.json");
    std::fs::write(
        &pod_json,
        serde_json::json!({
            "metadata": {"name": "ctl", "namespace": "default", "uid": "ctl-uid", "attempt": 1},
            "log_directory": logs.path(),
            "linux": {}
        })
        .to_string(),
    )
    .unwrap();
    let ctr_yaml = dir.path().join("ctr.yaml");
    std::fs::write(
        &ctr_yaml,
        format!(
            "metadata:\n  name: box\nimage:\n  image: {img}\ncommand: [\"/bin/sh\", \"-c\", \"echo from-crustctl; sleep 1000\"]\nenvs:\n- key: FOO\n  value: bar\nlog_path: box.log\n"
        ),
    )
    .unwrap();
    let (v, e, code) = ctl(&sock, &["version"]);
    assert_eq!(code, 0, "{e}");
    assert!(v.contains("RuntimeName:  crust"), "{v}");
    let (pod, e, code) = ctl(&sock, &["runp", pod_json.to_str().unwrap()]);
    assert_eq!(code, 0, "{e}");
    let pod = pod.trim().to_string();
    let (ctr, e, code) = ctl(
        &sock,
        &[
            "create",
            &pod,
            ctr_yaml.to_str().unwrap(),
            pod_json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{e}");
    let ctr = ctr.trim().to_string();
    assert_eq!(ctl(&sock, &["start", &ctr]).2, 0);
    let (ps, _, _) = ctl(&sock, &["ps"]);
    assert!(ps.contains("Running") && ps.contains("box"), "{ps}");
    let (pods, _, _) = ctl(&sock, &["pods", "-q"]);
    assert_eq!(pods.trim(), pod);
    let (out, _, code) = ctl(
        &sock,
        &["exec", "-s", &ctr, "/bin/sh", "-c", "echo $FOO; exit 4"],
    );
    assert_eq!((out.as_str(), code), ("bar\n", 4));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (l, le, _) = ctl(&sock, &["logs", &ctr]);
        if l == "from-crustctl\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "logs: {l:?} {le}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (insp, _, _) = ctl(&sock, &["inspect", &ctr]);
    let v: serde_json::Value = serde_json::from_str(&insp).unwrap();
    assert_eq!(v["info"]["sandboxID"], pod.as_str());
    let (st, _, code) = ctl(&sock, &["stats", "-o", "json"]);
    assert_eq!(code, 0);
    assert!(st.contains(&ctr));
    let (info, _, _) = ctl(&sock, &["info"]);
    assert!(info.contains("RuntimeReady"), "{info}");
    assert_eq!(ctl(&sock, &["stop", "-T", "1", &ctr]).2, 0);
    assert_eq!(ctl(&sock, &["rm", &ctr]).2, 0);
    assert_eq!(ctl(&sock, &["stopp", &pod]).2, 0);
    assert_eq!(ctl(&sock, &["rmp", &pod]).2, 0);
    let (_, e, code) = ctl(&sock, &["inspectp", &pod]);
    assert_ne!(code, 0);
    assert!(e.contains("NotFound"), "{e}");
}
