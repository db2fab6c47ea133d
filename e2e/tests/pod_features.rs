//! The Kubernetes 1.31+ pod features (issue 17) through the CRI as kubelet calls them, each
//! checked inside the container: recursively read-only mounts, the supplemental groups
//! policy, image volumes, CDI devices; and the refusals of what is asked wrongly.
//! Run with `CRUST_E2E_RUNTIME=runc` they check Debian's runc applies the same specs.

use crust_e2e::image::{self, Layer};
use crust_e2e::pods::{self, container_config, exec, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;
use tonic::Code;

/// A tmpfs mounted at `<dir>/sub` on the host, unmounted on drop.
struct SubMount(std::path::PathBuf);

impl SubMount {
    fn new(dir: &std::path::Path) -> Self {
        let sub = dir.join("sub");
        std::fs::create_dir_all(&sub).expect("mkdir sub");
        nix::mount::mount(
            Some("tmpfs"),
            &sub,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .expect("mount tmpfs");
        Self(sub)
    }
}

impl Drop for SubMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn bind(dir: &std::path::Path, at: &str, rro: bool) -> kc::Mount {
    kc::Mount {
        container_path: at.into(),
        host_path: dir.display().to_string(),
        readonly: true,
        recursive_read_only: rro,
        propagation: kc::MountPropagation::PropagationPrivate as i32,
        ..Default::default()
    }
}

/// A write under a submount of a recursively read-only mount fails with EROFS inside the
/// container; under a plain read-only mount (the control) the submount stays writable.
/// Status reports the feature; RRO without readonly or with non-private propagation is
/// InvalidArgument and creates nothing.
#[tokio::test(flavor = "multi_thread")]
async fn recursive_read_only_mount_reaches_submounts() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let st = rt
        .status(kc::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let f = st.runtime_handlers[0].features.unwrap();
    assert!(f.recursive_read_only_mounts, "{st:?}");

    let host = tempfile::tempdir().unwrap();
    let _sub = SubMount::new(host.path());
    let pc = pod_config("rro", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let mut c = container_config("c", &img, &["/bin/sleep", "1000"]);
    c.mounts = vec![
        bind(host.path(), "/rro", true),
        bind(host.path(), "/ro", false),
    ];
    let id = pods::run_container(&mut rt, &pod, &pc, c)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", d.log()));
    let (out, code) = exec(&mut rt, &id, "touch /rro/sub/x 2>&1; echo rc=$?").await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "{out:?}"
    );
    assert!(!host.path().join("sub/x").exists());
    // The control: read-only but not recursively, the submount is writable.
    let (out, _) = exec(&mut rt, &id, "touch /ro/sub/y 2>&1; echo rc=$?").await;
    assert!(out.contains("rc=0"), "{out:?}");
    assert!(host.path().join("sub/y").exists());
    // The top of both is read-only.
    let (out, _) = exec(&mut rt, &id, "touch /rro/z /ro/z 2>&1; echo rc=$?").await;
    assert!(out.contains("Read-only file system"), "{out:?}");
    let s = pods::status(&mut rt, &id).await;
    let m = s
        .mounts
        .iter()
        .find(|m| m.container_path == "/rro")
        .unwrap();
    assert!(m.recursive_read_only && m.readonly, "{m:?}");

    type Edit = fn(&mut kc::Mount);
    let bad: [(Edit, &str); 2] = [
        (|m| m.readonly = false, "recursive_read_only needs readonly"),
        (
            |m| m.propagation = kc::MountPropagation::PropagationHostToContainer as i32,
            "recursive_read_only needs private propagation",
        ),
    ];
    for (edit, names) in bad {
        let mut c = container_config("bad", &img, &["/bin/sleep", "1000"]);
        let mut m = bind(host.path(), "/rro", true);
        edit(&mut m);
        c.mounts = vec![m];
        let e = pods::run_container(&mut rt, &pod, &pc, c)
            .await
            .unwrap_err();
        assert!(
            e.code() == Code::InvalidArgument && e.message().contains(names),
            "{names}: {e:?}"
        );
    }
    assert_eq!(
        crust_e2e::daemon::count(&d.dir.path().join("state/bundles")),
        1
    );
    pods::remove_pod(&mut rt, &pod).await;
}

/// A second layer over busybox: user `app` (1000:1000), member of wheel (10) and audio (29)
/// in the image's /etc/group, and a data file.
fn groups_image() -> image::Image {
    let top = Layer::new()
        .dir("etc", 0o755)
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
            0o644,
        )
        .file(
            "etc/group",
            b"root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:other,app\n",
            0o644,
        )
        .dir("data", 0o755)
        .file("data/hello.txt", b"from the image volume\n", 0o644)
        .finish();
    image::build(
        &[image::busybox_layer(), top],
        image::Compression::Gzip,
        image::Flavour::Oci,
        image::host_arch(),
        &[],
    )
}

/// The value of `key` in /proc/self/status text `st`.
fn status_field(st: &str, key: &str) -> String {
    st.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// SupplementalGroupsPolicy: Merge gives the request's groups plus the image's /etc/group
/// memberships of the user, Strict the request's only; seen inside the container (`id -G`,
/// /proc/self/status) and reported in ContainerStatus.user; Status reports the feature.
#[tokio::test(flavor = "multi_thread")]
async fn supplemental_groups_policy_merge_and_strict() {
    require_root!();
    let (reg, d, mut rt, _img, logs, _g) = setup().await;
    let st = rt
        .status(kc::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    assert!(st.features.unwrap().supplemental_groups_policy);
    let gi = groups_image();
    image::push(&reg.host(), "test/groups", "v1", &gi, None).await;
    let name = format!("{}/test/groups:v1", reg.host());
    crust_e2e::cri::Images::new(d.channel().await)
        .pull(&name, None)
        .await
        .unwrap();
    let pc = pod_config("groups", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let rows = [
        (
            kc::SupplementalGroupsPolicy::Merge,
            "1000 10 29 5000",
            vec![1000, 10, 29, 5000],
        ),
        (
            kc::SupplementalGroupsPolicy::Strict,
            "1000 5000",
            vec![1000, 5000],
        ),
    ];
    for (policy, id_g, groups) in rows {
        let mut c = container_config(
            &format!("{policy:?}").to_lowercase(),
            &name,
            &["/bin/sleep", "1000"],
        );
        c.linux.as_mut().unwrap().security_context = Some(kc::LinuxContainerSecurityContext {
            run_as_user: Some(kc::Int64Value { value: 1000 }),
            supplemental_groups: vec![5000],
            supplemental_groups_policy: policy as i32,
            ..Default::default()
        });
        let id = pods::run_container(&mut rt, &pod, &pc, c)
            .await
            .unwrap_or_else(|e| panic!("{policy:?}: {e:?}\n{}", d.log()));
        let (out, code) = exec(&mut rt, &id, "/bin/busybox id -G").await;
        assert_eq!((out.trim(), code), (id_g, 0), "{policy:?}");
        let st = exec(&mut rt, &id, "cat /proc/self/status").await.0;
        // The kernel keeps the groups sorted.
        let mut want = groups.clone();
        want.sort();
        let want: Vec<String> = want.iter().map(|g: &i64| g.to_string()).collect();
        assert_eq!(
            status_field(&st, "Groups:"),
            want.join(" "),
            "{policy:?}: {st}"
        );
        let u = pods::status(&mut rt, &id)
            .await
            .user
            .and_then(|u| u.linux)
            .unwrap_or_else(|| panic!("{policy:?}: no user in ContainerStatus"));
        assert_eq!(
            (u.uid, u.gid, u.supplemental_groups),
            (1000, 1000, groups),
            "{policy:?}"
        );
    }
    pods::remove_pod(&mut rt, &pod).await;
}

fn image_mount(at: &str, image: &str) -> kc::Mount {
    kc::Mount {
        container_path: at.into(),
        image: Some(kc::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        readonly: true,
        propagation: kc::MountPropagation::PropagationPrivate as i32,
        ..Default::default()
    }
}

/// Image volumes: a pulled image mounted read-only at the container path, all its layers
/// seen (the two-layer image is an overlay; busybox, one layer, a bind); writes fail with
/// EROFS; RemoveImage of a mounted image fails with FailedPrecondition, also after a crustd
/// restart, and succeeds once the container is gone; an image not pulled is NotFound.
#[tokio::test(flavor = "multi_thread")]
async fn image_volume_is_mounted_read_only_and_held() {
    require_root!();
    let (reg, mut d, mut rt, img, logs, _g) = setup().await;
    let gi = groups_image();
    image::push(&reg.host(), "test/vol", "v1", &gi, None).await;
    let vol = format!("{}/test/vol:v1", reg.host());
    let mut images = crust_e2e::cri::Images::new(d.channel().await);
    images.pull(&vol, None).await.unwrap();
    let pc = pod_config("vol", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let mut c = container_config("c", &img, &["/bin/sleep", "1000"]);
    c.mounts = vec![image_mount("/vol", &vol), image_mount("/bb", &img)];
    let id = pods::run_container(&mut rt, &pod, &pc, c)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", d.log()));
    let (out, _) = exec(
        &mut rt,
        &id,
        "cat /vol/data/hello.txt /vol/etc/group; ls /vol/bin/busybox /bb/bin/busybox",
    )
    .await;
    assert!(out.contains("from the image volume"), "{out:?}");
    assert!(out.contains("wheel:x:10:app"), "{out:?}");
    assert!(
        out.contains("/vol/bin/busybox") && out.contains("/bb/bin/busybox"),
        "{out:?}"
    );
    let (out, _) = exec(&mut rt, &id, "touch /vol/data/x /bb/x 2>&1; echo rc=$?").await;
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "{out:?}"
    );
    let s = pods::status(&mut rt, &id).await;
    let m = s
        .mounts
        .iter()
        .find(|m| m.container_path == "/vol")
        .unwrap();
    assert_eq!(
        m.image.as_ref().map(|i| i.image.as_str()),
        Some(vol.as_str())
    );
    assert!(m.readonly);

    let held = |e: Result<(), tonic::Status>| {
        let e = e.expect_err("RemoveImage of a mounted image succeeded");
        assert!(
            e.code() == Code::FailedPrecondition && e.message().contains(&id),
            "{e:?}"
        );
    };
    held(images.remove(&vol).await);
    held(images.remove(&img).await);
    // Restarted, crustd still knows which images are mounted.
    d.kill9();
    d.restart();
    let mut rt = pods::Runtime::new(d.channel().await);
    let mut images = crust_e2e::cri::Images::new(d.channel().await);
    held(images.remove(&vol).await);
    let (out, _) = exec(&mut rt, &id, "cat /vol/data/hello.txt").await;
    assert!(out.contains("from the image volume"), "{out:?}");
    assert!(!images.list(Some(&vol)).await.is_empty());

    // An image that was never pulled is refused, and nothing is created: the hold the
    // failed create took on the first volume's image goes too (the RemoveImage at the end).
    let mut c = container_config("missing", &img, &["/bin/sleep", "1000"]);
    c.mounts = vec![
        image_mount("/v", &vol),
        image_mount("/m", &format!("{}/test/none:v1", reg.host())),
    ];
    let e = pods::run_container(&mut rt, &pod, &pc, c)
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::NotFound && e.message().contains("test/none"),
        "{e:?}"
    );
    assert_eq!(
        crust_e2e::daemon::count(&d.dir.path().join("state/bundles")),
        1
    );

    pods::remove_pod(&mut rt, &pod).await;
    rt.remove_container(kc::RemoveContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    images.remove(&vol).await.unwrap();
    assert!(images.list(Some(&vol)).await.is_empty());
}

/// CDI devices through the CRI: a spec file in the configured directory exposes /dev/null
/// as /dev/cdi-null (asked by `CDI_devices`) and /dev/zero as /dev/cdi-zero (asked by a
/// `cdi.k8s.io/` annotation); inside the container the nodes are there and usable (the
/// cgroup lets them be written and read), the spec's env and mount are applied and its
/// createRuntime hook ran with the container's state. An unknown device is InvalidArgument
/// naming it and creates nothing.
#[tokio::test(flavor = "multi_thread")]
async fn cdi_devices_are_injected() {
    require_root!();
    let specs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("file"), "cdi mount\n").unwrap();
    let hook_out = data.path().join("hook-state.json");
    let spec = serde_json::json!({
        "cdiVersion": "0.6.0",
        "kind": "crust.test/dev",
        "containerEdits": {
            "env": ["CDI_SPEC=common"],
            "hooks": [{"hookName": "createRuntime", "path": "/bin/sh",
                       "args": ["sh", "-c", format!("cat > {}", hook_out.display())]}],
        },
        "devices": [
            {"name": "null", "containerEdits": {
                "env": ["CDI_DEVICE=null"],
                "deviceNodes": [{"path": "/dev/cdi-null", "hostPath": "/dev/null", "permissions": "rw"}],
                "mounts": [{"hostPath": data.path(), "containerPath": "/cdi-data", "options": ["ro"]}],
            }},
            {"name": "zero", "containerEdits": {
                "deviceNodes": [{"path": "/dev/cdi-zero", "hostPath": "/dev/zero"}],
            }},
        ],
    });
    std::fs::write(
        specs.path().join("test.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let config = format!(
        "{}cdi_spec_dirs = [\"{}\"]\n",
        pods::config(),
        specs.path().display()
    );
    let (_reg, d, mut rt, img, logs, _g) = pods::setup_with(&config).await;
    let pc = pod_config("cdi", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();

    let mut c = container_config("bad", &img, &["/bin/sleep", "1000"]);
    c.cdi_devices = vec![kc::CdiDevice {
        name: "crust.test/dev=nosuch".into(),
    }];
    let e = pods::run_container(&mut rt, &pod, &pc, c)
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("crust.test/dev=nosuch"),
        "{e:?}"
    );
    assert_eq!(
        crust_e2e::daemon::count(&d.dir.path().join("state/bundles")),
        0
    );

    let mut c = container_config("c", &img, &["/bin/sleep", "1000"]);
    c.cdi_devices = vec![kc::CdiDevice {
        name: "crust.test/dev=null".into(),
    }];
    c.annotations
        .insert("cdi.k8s.io/test".into(), "crust.test/dev=zero".into());
    let id = pods::run_container(&mut rt, &pod, &pc, c)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", d.log()));
    let null = std::fs::metadata("/dev/null").unwrap();
    use std::os::unix::fs::MetadataExt;
    let (maj, min) = (libc::major(null.rdev()), libc::minor(null.rdev()));
    let (out, code) = exec(
        &mut rt,
        &id,
        "/bin/busybox stat -c '%F %t %T' /dev/cdi-null && echo x > /dev/cdi-null && echo wrote \
         && /bin/busybox head -c 5 /dev/cdi-zero | /bin/busybox wc -c \
         && echo $CDI_SPEC $CDI_DEVICE && cat /cdi-data/file",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("character special file {maj:x} {min:x}\nwrote\n5\ncommon null\ncdi mount\n")
    );
    let (out, _) = exec(&mut rt, &id, "touch /cdi-data/x 2>&1; echo rc=$?").await;
    assert!(out.contains("rc=1"), "{out}");
    let state = std::fs::read_to_string(&hook_out).unwrap_or_default();
    assert!(state.contains(&id), "hook state: {state:?}");
    pods::remove_pod(&mut rt, &pod).await;
}
