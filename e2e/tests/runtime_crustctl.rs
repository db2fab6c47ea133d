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
            "port_mappings": [{"protocol": "TCP", "container_port": 80}],
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
    // crictl's shapes: protobuf JSON names, enum names, int64 as strings, RFC 3339 times.
    assert_eq!(v["status"]["state"], "CONTAINER_RUNNING", "{insp}");
    assert!(
        v["status"]["createdAt"].as_str().unwrap().contains('T'),
        "{insp}"
    );
    assert!(v["status"]["logPath"]
        .as_str()
        .unwrap()
        .ends_with("box.log"));
    let (ps, _, _) = ctl(&sock, &["ps", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&ps).unwrap();
    let c0 = &v["containers"][0];
    assert_eq!(
        (c0["id"].as_str(), c0["state"].as_str()),
        (Some(ctr.as_str()), Some("CONTAINER_RUNNING"))
    );
    assert!(
        c0["createdAt"].as_str().unwrap().parse::<i64>().unwrap() > 0,
        "{ps}"
    );
    assert!(
        c0["podSandboxId"].is_string() && c0["labels"].is_object(),
        "{ps}"
    );
    let (pods_yaml, _, _) = ctl(&sock, &["pods", "-o", "yaml"]);
    assert!(pods_yaml.contains("state: SANDBOX_READY"), "{pods_yaml}");
    let (t, e, code) = ctl(
        &sock,
        &[
            "inspect",
            "-o",
            "go-template",
            "--template",
            "{{.status.state}} {{.status.metadata.name}}",
            &ctr,
        ],
    );
    assert_eq!((t.as_str(), code), ("CONTAINER_RUNNING box\n", 0), "{e}");
    let (_, e, code) = ctl(
        &sock,
        &[
            "inspectp",
            "-o",
            "go-template",
            "--template",
            "{{$x}}",
            &pod,
        ],
    );
    assert!(code != 0 && e.contains("variables"), "{e}");
    let (t, _, _) = ctl(&sock, &["inspectp", "-o", "table", &pod]);
    assert!(
        t.contains("Status: SANDBOX_READY") && t.contains("Name: ctl"),
        "{t}"
    );
    let (t, _, _) = ctl(&sock, &["images", "-v"]);
    assert!(
        t.starts_with("ID: sha256:") && t.contains("RepoTags: "),
        "{t}"
    );
    // Logs: tail, timestamps, since; follow sees a new line and ends when the container does.
    let (l, _, _) = ctl(&sock, &["logs", "--tail", "1", "-t", &ctr]);
    assert!(
        l.ends_with(" from-crustctl\n") && l.starts_with("20"),
        "{l}"
    );
    assert_eq!(
        ctl(&sock, &["logs", "--since", "1h", &ctr]).0,
        "from-crustctl\n"
    );
    let (l, _, _) = ctl(&sock, &["logs", "--since", "2099-01-01T00:00:00Z", &ctr]);
    assert_eq!(l, "");
    assert_eq!(ctl(&sock, &["logs", "--limit-bytes", "4", &ctr]).0, "from");
    let follow = Command::new(crust_e2e::workspace_bin("crust-ctl", "crustctl"))
        .arg("-r")
        .arg(format!("unix://{}", sock.display()))
        .args(["--config", "/nonexistent/crictl.yaml", "logs", "-f", &ctr])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        ctl(
            &sock,
            &[
                "exec",
                "-s",
                &ctr,
                "/bin/sh",
                "-c",
                "echo followed > /proc/1/fd/1"
            ]
        )
        .2,
        0
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (st, _, code) = ctl(&sock, &["stats", "-a", "-s", "1"]);
    assert!(
        code == 0 && st.starts_with("CONTAINER") && st.contains("box"),
        "{st}"
    );
    let (st, e, code) = ctl(&sock, &["statsp", "-s", "1"]);
    assert!(code == 0 && st.starts_with("POD"), "{st} {e}");
    assert_eq!(ctl(&sock, &["stop", "-T", "1", &ctr]).2, 0);
    let out = follow.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-crustctl\nfollowed\n"
    );
    // Config files: a typo is a warning naming it, a type error names the field.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"metadata": {"name": "typo"}, "comand": ["true"], "image": {"image": "x"}}"#,
    )
    .unwrap();
    let (_, e, _) = ctl(
        &sock,
        &[
            "create",
            &pod,
            bad.to_str().unwrap(),
            pod_json.to_str().unwrap(),
        ],
    );
    assert!(e.contains("unknown field \"comand\" ignored"), "{e}");
    std::fs::write(&bad, r#"{"metadata": {"name": "typo", "attempt": "one"}}"#).unwrap();
    let (_, e, code) = ctl(
        &sock,
        &[
            "create",
            &pod,
            bad.to_str().unwrap(),
            pod_json.to_str().unwrap(),
        ],
    );
    assert!(
        code != 0 && e.contains("metadata.attempt: invalid type: string \"one\""),
        "{e}"
    );
    let (st, _, code) = ctl(&sock, &["stats", "-o", "json"]);
    assert_eq!(code, 0);
    assert!(st.contains(&ctr));
    let (info, _, _) = ctl(&sock, &["info"]);
    assert!(info.contains("RuntimeReady"), "{info}");
    assert_eq!(ctl(&sock, &["rm", &ctr]).2, 0);
    assert_eq!(ctl(&sock, &["stopp", &pod]).2, 0);
    assert_eq!(ctl(&sock, &["rmp", &pod]).2, 0);
    let (_, e, code) = ctl(&sock, &["inspectp", &pod]);
    assert_ne!(code, 0);
    assert!(e.contains("NotFound"), "{e}");
}
