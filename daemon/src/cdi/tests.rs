//! CDI resolution and edits, on spec files written to temp directories.

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

fn base_spec() -> Value {
    json!({
        "process": {"user": {"uid": 1000, "gid": 2000, "additionalGids": [3000]}, "env": ["PATH=/bin", "A=0"]},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"devices": [], "resources": {"devices": [{"allow": false, "access": "rwm"}]}},
    })
}

const YAML: &str = "cdiVersion: 0.6.0
kind: example.com/dev
containerEdits:
  env: [COMMON=1]
devices:
- name: null0
  containerEdits:
    env: [A=1, B=2]
    deviceNodes:
    - path: /dev/cdi-null
      hostPath: /dev/null
      permissions: rw
    mounts:
    - hostPath: /tmp
      containerPath: /cdi-tmp
      options: [ro]
    hooks:
    - hookName: createContainer
      path: /bin/true
      args: [true, x]
    additionalGIDs: [44, 0]
- name: zero
  containerEdits:
    deviceNodes:
    - path: /dev/cdi-zero
      hostPath: /dev/zero
";

#[test]
fn resolves_and_applies_every_kind_of_edit() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "dev.yaml", YAML);
    let reg = Registry::load(&[d.path().to_path_buf()]);
    assert_eq!(
        reg.device_names(),
        ["example.com/dev=null0", "example.com/dev=zero"]
    );
    let mut oci = base_spec();
    inject(&mut oci, &reg, &["example.com/dev=null0".into()]).unwrap();
    assert_eq!(
        oci["process"]["env"],
        json!(["PATH=/bin", "A=1", "COMMON=1", "B=2"])
    );
    let devnull = std::fs::metadata("/dev/null").unwrap();
    let (maj, min) = (libc::major(devnull.rdev()), libc::minor(devnull.rdev()));
    assert_eq!(
        oci["linux"]["devices"],
        json!([{"path": "/dev/cdi-null", "type": "c", "major": maj, "minor": min,
                "fileMode": devnull.mode() & 0o7777, "uid": 1000, "gid": 2000}])
    );
    assert_eq!(
        oci["linux"]["resources"]["devices"][1],
        json!({"allow": true, "type": "c", "major": maj, "minor": min, "access": "rw"})
    );
    assert_eq!(
        oci["mounts"][1],
        json!({"destination": "/cdi-tmp", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]})
    );
    assert_eq!(
        oci["hooks"]["createContainer"],
        json!([{"path": "/bin/true", "args": ["true", "x"]}])
    );
    assert_eq!(oci["process"]["user"]["additionalGids"], json!([3000, 44]));

    // Two devices of one spec: its common edits once.
    let mut oci = base_spec();
    inject(
        &mut oci,
        &reg,
        &[
            "example.com/dev=zero".into(),
            "example.com/dev=null0".into(),
        ],
    )
    .unwrap();
    let env: Vec<&str> = oci["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|e| e.starts_with("COMMON="))
        .collect();
    assert_eq!(env, ["COMMON=1"]);
    assert_eq!(oci["linux"]["devices"].as_array().unwrap().len(), 2);
}

#[test]
fn unknown_devices_and_bad_specs_are_named() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "dev.json",
        r#"{"cdiVersion":"0.5.0","kind":"example.com/dev","devices":[{"name":"a","containerEdits":{"deviceNodes":[{"path":"/dev/a","hostPath":"/dev/null"}]}}]}"#,
    );
    write(d.path(), "broken.yaml", "cdiVersion: [");
    write(
        d.path(),
        "old.json",
        r#"{"cdiVersion":"0.1.0","kind":"example.com/old","devices":[]}"#,
    );
    write(d.path(), "ignored.txt", "not a spec");
    let reg = Registry::load(&[d.path().join("missing"), d.path().to_path_buf()]);
    assert_eq!(reg.device_names(), ["example.com/dev=a"]);
    let mut oci = base_spec();
    let e = inject(&mut oci, &reg, &["example.com/dev=b".into()]).unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("unknown CDI device \"example.com/dev=b\"")
            && m.contains("broken.yaml")
            && m.contains("old.json"),
        "{m}"
    );
    let e = inject(&mut oci, &reg, &["not-qualified".into()]).unwrap_err();
    assert!(e.to_string().contains("not-qualified"), "{e}");
    // Nothing was applied by the failed calls.
    assert_eq!(oci, base_spec());
}

#[test]
fn priority_and_conflicts() {
    let d = tempfile::tempdir().unwrap();
    let (low, high) = (d.path().join("etc"), d.path().join("run"));
    let spec = |env: &str| {
        format!(
            r#"{{"cdiVersion":"0.6.0","kind":"example.com/dev","devices":[{{"name":"a","containerEdits":{{"env":["{env}"]}}}}]}}"#
        )
    };
    write(&low, "a.json", &spec("FROM=etc"));
    write(&high, "a.json", &spec("FROM=run"));
    let reg = Registry::load(&[low.clone(), high.clone()]);
    let mut oci = base_spec();
    inject(&mut oci, &reg, &["example.com/dev=a".into()]).unwrap();
    assert!(oci["process"]["env"]
        .as_array()
        .unwrap()
        .contains(&json!("FROM=run")));
    // The same device twice in one directory: refused by name.
    write(&high, "b.json", &spec("FROM=b"));
    let reg = Registry::load(&[low, high]);
    let e = inject(&mut base_spec(), &reg, &["example.com/dev=a".into()]).unwrap_err();
    assert!(e.to_string().contains("several specs"), "{e}");
}

#[test]
fn unsupported_edits_are_refused() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "n.json",
        r#"{"cdiVersion":"0.6.0","kind":"example.com/net","devices":[{"name":"n","containerEdits":{"netDevices":[{"hostInterfaceName":"eth9","name":"eth1"}]}},{"name":"h","containerEdits":{"hooks":[{"hookName":"bogus","path":"/bin/true"}]}},{"name":"p","containerEdits":{"deviceNodes":[{"path":"/dev/x","hostPath":"/dev/null","permissions":"rwx"}]}}]}"#,
    );
    let reg = Registry::load(&[d.path().to_path_buf()]);
    for (dev, why) in [
        ("example.com/net=n", "netDevices"),
        ("example.com/net=h", "unknown hook \"bogus\""),
        ("example.com/net=p", "not a subset of rwm"),
    ] {
        let e = inject(&mut base_spec(), &reg, &[dev.into()]).unwrap_err();
        let m = e.to_string();
        assert!(m.contains(dev) && m.contains(why), "{m}");
    }
}

#[test]
fn requested_names() {
    let ann = BTreeMap::from([
        (
            "cdi.k8s.io/b".to_string(),
            "v.com/c=2, v.com/c=1".to_string(),
        ),
        ("other".to_string(), "v.com/c=9".to_string()),
    ]);
    assert_eq!(
        requested(&["v.com/c=1".into()], &ann),
        ["v.com/c=1", "v.com/c=2"]
    );
}
