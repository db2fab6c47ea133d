//! CRI defaults and validations that clients nobody here wrote rely on (issue 13, found with
//! critest v1.26.1): a pod without a hostname gets the node's; no NamespaceOption means
//! POD for the PID namespace too; runAsGroup alone is refused; a container with no log
//! path can be attached to.

use crust_e2e::pods::{self, container_config, exec, pod_config, setup};
use crust_e2e::require_root;
use crust_e2e::session::read_until;
use crust_streaming::client::{remote_command, ClientStdio, RemoteCommandOptions, Transport};
use k8s_cri::v1 as kc;
use tonic::Code;

fn node_hostname() -> String {
    nix::unistd::gethostname()
        .expect("gethostname")
        .into_string()
        .expect("utf-8 hostname")
}

/// critest's pod names are up to 72 bytes, more than a hostname may have: with no
/// hostname asked, the pod gets the node's (as with containerd), not its name.
#[tokio::test(flavor = "multi_thread")]
async fn pod_without_hostname_gets_the_nodes() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let ld = logs.path().to_str().unwrap();
    let mut pc = pod_config(&"p".repeat(72), ld);
    pc.hostname = String::new();
    let pod = pods::run_pod(&mut rt, &pc)
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e:?}\n{}", d.log()));
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("c", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .unwrap();
    let host = node_hostname();
    assert_eq!(
        exec(&mut rt, &c, "cat /etc/hostname /proc/sys/kernel/hostname")
            .await
            .0,
        format!("{host}\n{host}\n")
    );
    pods::remove_pod(&mut rt, &pod).await;
    // An asked hostname longer than sethostname(2) takes is refused up front.
    let mut pc = pod_config("long", ld);
    pc.hostname = "h".repeat(65);
    let e = pods::run_pod(&mut rt, &pc).await.unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("hostname"),
        "{e:?}"
    );
    let left = rt
        .list_pod_sandbox(kc::ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(left.is_empty(), "{left:?}");
}

/// No NamespaceOption in a container's security context (or none at all) is POD for the
/// PID namespace: the container's processes are not PID 1, and its neighbours see them.
#[tokio::test(flavor = "multi_thread")]
async fn no_namespace_options_share_the_pod_pid_namespace() {
    require_root!();
    let (_reg, _d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("pidns", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let mut a = container_config("a", &img, &["/bin/sleep", "1001"]);
    a.linux.as_mut().unwrap().security_context = None;
    let a = pods::run_container(&mut rt, &pod, &pc, a).await.unwrap();
    let b = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("b", &img, &["/bin/sleep", "1002"]),
    )
    .await
    .unwrap();
    for (id, own) in [(&a, "1001"), (&b, "1002")] {
        let init = exec(&mut rt, id, "cat /proc/1/cmdline").await.0;
        assert!(!init.contains(own), "{own} is PID 1: {init:?}");
    }
    let (ps, _) = exec(&mut rt, &b, "cat /proc/[0-9]*/cmdline").await;
    assert!(ps.contains("1001") && ps.contains("1002"), "{ps:?}");
    pods::remove_pod(&mut rt, &pod).await;
}

/// runAsGroup without runAsUser or runAsUsername is refused (InvalidArgument) and creates
/// nothing; with a user it applies.
#[tokio::test(flavor = "multi_thread")]
async fn run_as_group_needs_a_user() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("group", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let with = |user: Option<i64>| {
        let mut c = container_config("g", &img, &["/bin/sleep", "1000"]);
        c.linux.as_mut().unwrap().security_context = Some(kc::LinuxContainerSecurityContext {
            run_as_user: user.map(|value| kc::Int64Value { value }),
            run_as_group: Some(kc::Int64Value { value: 4321 }),
            ..Default::default()
        });
        c
    };
    let e = pods::run_container(&mut rt, &pod, &pc, with(None))
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("runAsGroup"),
        "{e:?}"
    );
    assert_eq!(
        crust_e2e::daemon::count(&d.dir.path().join("state/bundles")),
        0
    );
    let c = pods::run_container(&mut rt, &pod, &pc, with(Some(1234)))
        .await
        .unwrap();
    let st = exec(&mut rt, &c, "cat /proc/self/status").await.0;
    let ids = |key: &str| {
        st.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .map(String::from)
    };
    assert_eq!(ids("Uid:").as_deref(), Some("1234"), "{st}");
    assert_eq!(ids("Gid:").as_deref(), Some("4321"), "{st}");
    pods::remove_pod(&mut rt, &pod).await;
}

/// A container created without a log path still has its output copied for Attach.
#[tokio::test(flavor = "multi_thread")]
async fn attach_without_a_log_path() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("nolog", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let mut c = container_config(
        "nolog",
        &img,
        &["/bin/sh", "-c", "while read l; do echo got:$l; done"],
    );
    c.log_path = String::new();
    c.stdin = true;
    let id = pods::run_container(&mut rt, &pod, &pc, c).await.unwrap();
    let url = rt
        .attach(kc::AttachRequest {
            container_id: id.clone(),
            stdin: true,
            tty: false,
            stdout: true,
            stderr: false,
        })
        .await
        .unwrap_or_else(|e| panic!("Attach: {e:?}\n{}", d.log()))
        .into_inner()
        .url;
    let (mut input, client_in) = tokio::io::duplex(4096);
    let (out_w, mut out_r) = tokio::io::duplex(4096);
    let session = tokio::spawn(async move {
        remote_command(
            &url,
            &RemoteCommandOptions::new(Transport::WebSocket, false),
            ClientStdio {
                stdin: Some(Box::new(client_in)),
                stdout: Some(Box::new(out_w)),
                ..Default::default()
            },
        )
        .await
    });
    let poke = Some((&mut input, &b"ping\n"[..]));
    read_until(&mut out_r, poke, "got:ping", || d.log()).await;
    session.abort();
    let s = pods::status(&mut rt, &id).await;
    assert_eq!(s.log_path, "");
    pods::remove_pod(&mut rt, &pod).await;
}
