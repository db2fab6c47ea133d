//! Malformed input on every CRI RPC (issue 18: 164 INTERNAL answers where InvalidArgument or
//! NotFound is right). One crustd with a Ready pod and a running container; each row sends
//! one bad request and names the codes the CRI allows for it (InvalidArgument, NotFound,
//! FailedPrecondition; OK where the CRI says the call is idempotent, e.g. stopping or
//! removing what does not exist). No row may get INTERNAL or UNKNOWN, or any code the row does
//! not allow, and after all rows the pods, containers and images listed, and their states,
//! are what they were.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use crust_e2e::pods::{self, container_config, pod_config, Runtime};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use tonic::transport::Channel;
use tonic::Code;

type Call = Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;

struct Row {
    name: String,
    want: &'static [Code],
    call: Call,
}

const BAD: &[Code] = &[Code::InvalidArgument, Code::NotFound];
const BAD_OR_OK: &[Code] = &[Code::InvalidArgument, Code::NotFound, Code::Ok];
const INVALID: &[Code] = &[Code::InvalidArgument];
/// crust may not support CheckpointContainer at all: Unimplemented says so.
const CHECKPOINT: &[Code] = &[
    Code::InvalidArgument,
    Code::NotFound,
    Code::FailedPrecondition,
    Code::Unimplemented,
];
const MISSING: &[Code] = &[
    Code::InvalidArgument,
    Code::NotFound,
    Code::FailedPrecondition,
];

/// Ids no pod, container or image has, each malformed in its own way.
fn bad_ids() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("unknown", "0".repeat(64)),
        ("short", "nope".into()),
        ("traversal", "../../../../etc/passwd".into()),
        ("slash", "a/b".into()),
        ("newline", "abc\ndef".into()),
        ("nul", "ab\0cd".into()),
        ("glob", "*".into()),
        ("long", "a".repeat(4096)),
    ]
}

macro_rules! row {
    ($rows:expr, $name:expr, $want:expr, $client:expr, |$c:ident| $body:expr) => {{
        let mut $c = $client.clone();
        $rows.push(Row {
            name: $name,
            want: $want,
            call: Box::pin(async move { $body.await.map(|_| ()) }),
        });
    }};
}

/// Rows sending each bad id to every RPC that takes one.
fn id_rows(
    rows: &mut Vec<Row>,
    rt: &Runtime,
    images: &ImageServiceClient<Channel>,
    pc: &kc::PodSandboxConfig,
    img: &str,
) {
    for (what, id) in bad_ids() {
        let i = id.clone();
        // Stop and Remove of what does not exist succeed (CRI); an empty id is invalid.
        let idem = if id.is_empty() { INVALID } else { BAD_OR_OK };
        let lookup = BAD;
        row!(rows, format!("StopPodSandbox {what}"), idem, rt, |c| c
            .stop_pod_sandbox(kc::StopPodSandboxRequest {
                pod_sandbox_id: i.clone()
            }));
        let i = id.clone();
        row!(rows, format!("RemovePodSandbox {what}"), idem, rt, |c| c
            .remove_pod_sandbox(kc::RemovePodSandboxRequest {
                pod_sandbox_id: i.clone()
            }));
        let i = id.clone();
        row!(rows, format!("PodSandboxStatus {what}"), lookup, rt, |c| c
            .pod_sandbox_status(kc::PodSandboxStatusRequest {
                pod_sandbox_id: i.clone(),
                verbose: true
            }));
        let i = id.clone();
        row!(rows, format!("PodSandboxStats {what}"), lookup, rt, |c| c
            .pod_sandbox_stats(kc::PodSandboxStatsRequest {
                pod_sandbox_id: i.clone()
            }));
        let i = id.clone();
        row!(rows, format!("PortForward {what}"), lookup, rt, |c| c
            .port_forward(kc::PortForwardRequest {
                pod_sandbox_id: i.clone(),
                port: vec![80]
            }));
        let (i, pc2, cfg) = (
            id.clone(),
            pc.clone(),
            container_config("row", img, &["/bin/true"]),
        );
        row!(
            rows,
            format!("CreateContainer in pod {what}"),
            lookup,
            rt,
            |c| c.create_container(kc::CreateContainerRequest {
                pod_sandbox_id: i.clone(),
                config: Some(cfg),
                sandbox_config: Some(pc2),
            })
        );
        let i = id.clone();
        row!(rows, format!("StartContainer {what}"), lookup, rt, |c| c
            .start_container(kc::StartContainerRequest {
                container_id: i.clone()
            }));
        let i = id.clone();
        row!(rows, format!("StopContainer {what}"), idem, rt, |c| c
            .stop_container(kc::StopContainerRequest {
                container_id: i.clone(),
                timeout: 0
            }));
        let i = id.clone();
        row!(rows, format!("RemoveContainer {what}"), idem, rt, |c| c
            .remove_container(kc::RemoveContainerRequest {
                container_id: i.clone()
            }));
        let i = id.clone();
        row!(rows, format!("ContainerStatus {what}"), lookup, rt, |c| c
            .container_status(kc::ContainerStatusRequest {
                container_id: i.clone(),
                verbose: true
            }));
        let i = id.clone();
        row!(rows, format!("ContainerStats {what}"), lookup, rt, |c| c
            .container_stats(kc::ContainerStatsRequest {
                container_id: i.clone()
            }));
        let i = id.clone();
        row!(
            rows,
            format!("UpdateContainerResources {what}"),
            lookup,
            rt,
            |c| c.update_container_resources(kc::UpdateContainerResourcesRequest {
                container_id: i.clone(),
                linux: Some(kc::LinuxContainerResources::default()),
                ..Default::default()
            })
        );
        let i = id.clone();
        row!(
            rows,
            format!("ReopenContainerLog {what}"),
            lookup,
            rt,
            |c| c.reopen_container_log(kc::ReopenContainerLogRequest {
                container_id: i.clone()
            })
        );
        let i = id.clone();
        row!(rows, format!("ExecSync {what}"), lookup, rt, |c| c
            .exec_sync(kc::ExecSyncRequest {
                container_id: i.clone(),
                cmd: vec!["true".into()],
                timeout: 5
            }));
        let i = id.clone();
        row!(rows, format!("Exec {what}"), lookup, rt, |c| c.exec(
            kc::ExecRequest {
                container_id: i.clone(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            }
        ));
        let i = id.clone();
        row!(rows, format!("Attach {what}"), lookup, rt, |c| c.attach(
            kc::AttachRequest {
                container_id: i.clone(),
                stdout: true,
                ..Default::default()
            }
        ));
        let i = id.clone();
        row!(
            rows,
            format!("CheckpointContainer {what}"),
            CHECKPOINT,
            rt,
            |c| c.checkpoint_container(kc::CheckpointContainerRequest {
                container_id: i.clone(),
                location: "/tmp/crust-ch-never.tar".into(),
                timeout: 5,
            })
        );
        // ImageStatus of an unknown image answers OK with no image (CRI).
        let i = id.clone();
        row!(
            rows,
            format!("ImageStatus {what}"),
            BAD_OR_OK,
            images,
            |c| c.image_status(kc::ImageStatusRequest {
                image: Some(kc::ImageSpec {
                    image: i.clone(),
                    ..Default::default()
                }),
                verbose: true
            })
        );
        let i = id.clone();
        row!(
            rows,
            format!("RemoveImage {what}"),
            BAD_OR_OK,
            images,
            |c| c.remove_image(kc::RemoveImageRequest {
                image: Some(kc::ImageSpec {
                    image: i.clone(),
                    ..Default::default()
                })
            })
        );
        let i = id.clone();
        row!(
            rows,
            format!("PullImage {what}"),
            &[Code::InvalidArgument, Code::NotFound, Code::Unavailable],
            images,
            |c| c.pull_image(kc::PullImageRequest {
                image: Some(kc::ImageSpec {
                    image: i.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        );
    }
}

fn sec(c: &mut kc::ContainerConfig) -> &mut kc::LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// Rows with a well-formed target and a malformed request.
fn config_rows(
    rows: &mut Vec<Row>,
    rt: &Runtime,
    pod: &str,
    ctr: &str,
    pc: &kc::PodSandboxConfig,
    img: &str,
    logs: &str,
) {
    let pod_edit = |name: &str, f: &dyn Fn(&mut kc::PodSandboxConfig)| {
        let mut p = pod_config(&format!("bad-{name}"), logs);
        f(&mut p);
        p
    };
    let pods: Vec<(&str, kc::PodSandboxConfig)> = vec![
        ("no metadata", pod_edit("m", &|p| p.metadata = None)),
        (
            "empty name",
            pod_edit("n", &|p| p.metadata.as_mut().unwrap().name.clear()),
        ),
        (
            "empty namespace",
            pod_edit("ns", &|p| p.metadata.as_mut().unwrap().namespace.clear()),
        ),
        (
            "relative log dir",
            pod_edit("l", &|p| p.log_directory = "relative/logs".into()),
        ),
        (
            "hostname 65 bytes",
            pod_edit("h", &|p| p.hostname = "h".repeat(65)),
        ),
        (
            "bad sysctl",
            pod_edit("s", &|p| {
                p.linux.as_mut().unwrap().sysctls =
                    HashMap::from([("kernel.nope/../x".into(), "1".into())])
            }),
        ),
        (
            "unknown network mode",
            pod_edit("nm", &|p| {
                p.linux.as_mut().unwrap().security_context = Some(kc::LinuxSandboxSecurityContext {
                    namespace_options: Some(kc::NamespaceOption {
                        network: 17,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            }),
        ),
        (
            "port 70000",
            pod_edit("p", &|p| {
                p.port_mappings = vec![kc::PortMapping {
                    container_port: 70000,
                    host_port: 8080,
                    ..Default::default()
                }]
            }),
        ),
        (
            "negative port",
            pod_edit("np", &|p| {
                p.port_mappings = vec![kc::PortMapping {
                    container_port: 80,
                    host_port: -5,
                    ..Default::default()
                }]
            }),
        ),
        (
            "bad protocol",
            pod_edit("pr", &|p| {
                p.port_mappings = vec![kc::PortMapping {
                    protocol: 9,
                    container_port: 80,
                    ..Default::default()
                }]
            }),
        ),
        (
            "bad host ip",
            pod_edit("hi", &|p| {
                p.port_mappings = vec![kc::PortMapping {
                    container_port: 80,
                    host_port: 8080,
                    host_ip: "not-an-ip".into(),
                    ..Default::default()
                }]
            }),
        ),
        (
            "bad dns server",
            pod_edit("dns", &|p| {
                p.dns_config = Some(kc::DnsConfig {
                    servers: vec!["x\ny".into()],
                    ..Default::default()
                })
            }),
        ),
        (
            "bad cgroup parent",
            pod_edit("cg", &|p| {
                p.linux.as_mut().unwrap().cgroup_parent = "../../../x".into()
            }),
        ),
    ];
    for (what, p) in pods {
        row!(rows, format!("RunPodSandbox {what}"), INVALID, rt, |c| c
            .run_pod_sandbox(kc::RunPodSandboxRequest {
                config: Some(p),
                runtime_handler: String::new()
            }));
    }
    row!(rows, "RunPodSandbox no config".into(), INVALID, rt, |c| c
        .run_pod_sandbox(kc::RunPodSandboxRequest {
            config: None,
            runtime_handler: String::new()
        }));
    let p = pod_config("bad-handler", logs);
    row!(
        rows,
        "RunPodSandbox unknown handler".into(),
        &[Code::InvalidArgument, Code::NotFound],
        rt,
        |c| c.run_pod_sandbox(kc::RunPodSandboxRequest {
            config: Some(p),
            runtime_handler: "nope".into()
        })
    );

    let ctr_edit = |f: &dyn Fn(&mut kc::ContainerConfig)| {
        let mut c = container_config("bad", img, &["/bin/true"]);
        f(&mut c);
        c
    };
    let mount = |host: &str, ctr: &str, prop: i32| kc::Mount {
        host_path: host.into(),
        container_path: ctr.into(),
        propagation: prop,
        ..Default::default()
    };
    let ctrs: Vec<(&str, &'static [Code], kc::ContainerConfig)> = vec![
        ("no metadata", INVALID, ctr_edit(&|c| c.metadata = None)),
        (
            "empty name",
            INVALID,
            ctr_edit(&|c| c.metadata.as_mut().unwrap().name.clear()),
        ),
        ("no image", INVALID, ctr_edit(&|c| c.image = None)),
        (
            "unknown image",
            MISSING,
            ctr_edit(&|c| c.image.as_mut().unwrap().image = "nope.invalid/x:y".into()),
        ),
        (
            "relative container path",
            INVALID,
            ctr_edit(&|c| c.mounts = vec![mount("/tmp", "rel", 0)]),
        ),
        (
            "empty host path",
            INVALID,
            ctr_edit(&|c| c.mounts = vec![mount("", "/x", 0)]),
        ),
        (
            "relative host path",
            INVALID,
            ctr_edit(&|c| c.mounts = vec![mount("rel", "/x", 0)]),
        ),
        (
            "missing host path",
            MISSING,
            ctr_edit(&|c| c.mounts = vec![mount("/nonexistent/crust-ch", "/x", 0)]),
        ),
        (
            "propagation 99",
            INVALID,
            ctr_edit(&|c| c.mounts = vec![mount("/tmp", "/x", 99)]),
        ),
        (
            "relative device",
            INVALID,
            ctr_edit(&|c| {
                c.devices = vec![kc::Device {
                    container_path: "dev/x".into(),
                    host_path: "/dev/null".into(),
                    permissions: "rw".into(),
                }]
            }),
        ),
        (
            "missing device",
            MISSING,
            ctr_edit(&|c| {
                c.devices = vec![kc::Device {
                    container_path: "/dev/x".into(),
                    host_path: "/dev/crust-ch-none".into(),
                    permissions: "rw".into(),
                }]
            }),
        ),
        (
            "bad device permissions",
            INVALID,
            ctr_edit(&|c| {
                c.devices = vec![kc::Device {
                    container_path: "/dev/x".into(),
                    host_path: "/dev/null".into(),
                    permissions: "rwxz".into(),
                }]
            }),
        ),
        (
            "run_as_user 4294967295",
            INVALID,
            ctr_edit(&|c| sec(c).run_as_user = Some(kc::Int64Value { value: 4294967295 })),
        ),
        (
            "run_as_user -1",
            INVALID,
            ctr_edit(&|c| sec(c).run_as_user = Some(kc::Int64Value { value: -1 })),
        ),
        (
            "run_as_group without user",
            INVALID,
            ctr_edit(&|c| sec(c).run_as_group = Some(kc::Int64Value { value: 5 })),
        ),
        (
            "supplemental group 2^32-1",
            INVALID,
            ctr_edit(&|c| sec(c).supplemental_groups = vec![4294967295]),
        ),
        (
            "unknown capability",
            INVALID,
            ctr_edit(&|c| {
                sec(c).capabilities = Some(kc::Capability {
                    add_capabilities: vec!["CAP_NOPE".into()],
                    ..Default::default()
                })
            }),
        ),
        (
            "seccomp localhost relative",
            INVALID,
            ctr_edit(&|c| {
                sec(c).seccomp = Some(kc::SecurityProfile {
                    profile_type: 2,
                    localhost_ref: "rel.json".into(),
                })
            }),
        ),
        (
            "seccomp localhost /dev/zero",
            INVALID,
            ctr_edit(&|c| {
                sec(c).seccomp = Some(kc::SecurityProfile {
                    profile_type: 2,
                    localhost_ref: "/dev/zero".into(),
                })
            }),
        ),
        (
            "seccomp type 42",
            INVALID,
            ctr_edit(&|c| {
                sec(c).seccomp = Some(kc::SecurityProfile {
                    profile_type: 42,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "pid mode 9",
            INVALID,
            ctr_edit(&|c| {
                sec(c).namespace_options = Some(kc::NamespaceOption {
                    pid: 9,
                    ..Default::default()
                })
            }),
        ),
        (
            "target pid without target",
            MISSING,
            ctr_edit(&|c| {
                sec(c).namespace_options = Some(kc::NamespaceOption {
                    pid: 3,
                    target_id: "0".repeat(64),
                    ..Default::default()
                })
            }),
        ),
        (
            "privileged in unprivileged pod",
            INVALID,
            ctr_edit(&|c| sec(c).privileged = true),
        ),
        (
            "relative working dir",
            INVALID,
            ctr_edit(&|c| c.working_dir = "rel/dir".into()),
        ),
        (
            "log path escaping",
            INVALID,
            ctr_edit(&|c| c.log_path = "../../../../etc/crust-ch.log".into()),
        ),
        (
            "absolute log path",
            INVALID,
            ctr_edit(&|c| c.log_path = "/etc/crust-ch.log".into()),
        ),
        (
            "empty env key",
            INVALID,
            ctr_edit(&|c| {
                c.envs = vec![kc::KeyValue {
                    key: String::new(),
                    value: "v".into(),
                }]
            }),
        ),
        (
            "negative cpu shares",
            INVALID,
            ctr_edit(&|c| {
                c.linux
                    .as_mut()
                    .unwrap()
                    .resources
                    .as_mut()
                    .unwrap()
                    .cpu_shares = -5
            }),
        ),
        (
            "bad hugepage size",
            INVALID,
            ctr_edit(&|c| {
                c.linux
                    .as_mut()
                    .unwrap()
                    .resources
                    .as_mut()
                    .unwrap()
                    .hugepage_limits = vec![kc::HugepageLimit {
                    page_size: "7QB".into(),
                    limit: 1,
                }]
            }),
        ),
    ];
    for (n, (what, want, mut cfg)) in ctrs.into_iter().enumerate() {
        // A name of its own: a row that wrongly succeeds must not make the next ones fail
        // as AlreadyExists.
        if let Some(m) = cfg.metadata.as_mut().filter(|m| !m.name.is_empty()) {
            m.name = format!("bad{n}");
        }
        let (p, pc2) = (pod.to_string(), pc.clone());
        row!(rows, format!("CreateContainer {what}"), want, rt, |c| c
            .create_container(kc::CreateContainerRequest {
                pod_sandbox_id: p.clone(),
                config: Some(cfg),
                sandbox_config: Some(pc2),
            }));
    }
    let p = pod.to_string();
    row!(rows, "CreateContainer no config".into(), INVALID, rt, |c| c
        .create_container(kc::CreateContainerRequest {
            pod_sandbox_id: p.clone(),
            config: None,
            sandbox_config: None
        }));
    // Requests about the running container that are malformed themselves.
    let id = ctr.to_string();
    let i = id.clone();
    row!(rows, "ExecSync empty cmd".into(), INVALID, rt, |c| c
        .exec_sync(kc::ExecSyncRequest {
            container_id: i.clone(),
            cmd: vec![],
            timeout: 5
        }));
    let i = id.clone();
    row!(rows, "ExecSync negative timeout".into(), INVALID, rt, |c| c
        .exec_sync(kc::ExecSyncRequest {
            container_id: i.clone(),
            cmd: vec!["true".into()],
            timeout: -1
        }));
    let i = id.clone();
    row!(rows, "Exec no streams".into(), INVALID, rt, |c| c.exec(
        kc::ExecRequest {
            container_id: i.clone(),
            cmd: vec!["true".into()],
            ..Default::default()
        }
    ));
    let i = id.clone();
    row!(rows, "Exec empty cmd".into(), INVALID, rt, |c| c.exec(
        kc::ExecRequest {
            container_id: i.clone(),
            cmd: vec![],
            stdout: true,
            ..Default::default()
        }
    ));
    let i = id.clone();
    row!(rows, "Exec tty with stderr".into(), INVALID, rt, |c| c
        .exec(kc::ExecRequest {
            container_id: i.clone(),
            cmd: vec!["true".into()],
            tty: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        }));
    let i = id.clone();
    row!(rows, "Attach no streams".into(), INVALID, rt, |c| c.attach(
        kc::AttachRequest {
            container_id: i.clone(),
            ..Default::default()
        }
    ));
    let p = pod.to_string();
    row!(rows, "PortForward port 0".into(), INVALID, rt, |c| c
        .port_forward(kc::PortForwardRequest {
            pod_sandbox_id: p.clone(),
            port: vec![0]
        }));
    let p = pod.to_string();
    row!(rows, "PortForward port 70000".into(), INVALID, rt, |c| c
        .port_forward(kc::PortForwardRequest {
            pod_sandbox_id: p.clone(),
            port: vec![70000]
        }));
    let i = id.clone();
    row!(
        rows,
        "UpdateContainerResources negative cpu quota".into(),
        INVALID,
        rt,
        |c| c.update_container_resources(kc::UpdateContainerResourcesRequest {
            container_id: i.clone(),
            linux: Some(kc::LinuxContainerResources {
                cpu_quota: -7,
                cpu_period: -1,
                ..Default::default()
            }),
            ..Default::default()
        })
    );
    let i = id.clone();
    row!(
        rows,
        "CheckpointContainer relative location".into(),
        CHECKPOINT,
        rt,
        |c| c.checkpoint_container(kc::CheckpointContainerRequest {
            container_id: i.clone(),
            location: "rel.tar".into(),
            timeout: 5
        })
    );
    let i = id.clone();
    row!(
        rows,
        "StartContainer already running".into(),
        &[Code::FailedPrecondition],
        rt,
        |c| c.start_container(kc::StartContainerRequest {
            container_id: i.clone()
        })
    );
    row!(
        rows,
        "UpdateRuntimeConfig bad pod CIDR".into(),
        INVALID,
        rt,
        |c| c.update_runtime_config(kc::UpdateRuntimeConfigRequest {
            runtime_config: Some(kc::RuntimeConfig {
                network_config: Some(kc::NetworkConfig {
                    pod_cidr: "not/a/cidr".into()
                })
            }),
        })
    );
}

/// What must not change: every pod and container listed, with its state, and the images.
async fn state(rt: &mut Runtime, images: &mut ImageServiceClient<Channel>) -> Vec<String> {
    let mut out = Vec::new();
    for p in rt
        .list_pod_sandbox(kc::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items
    {
        out.push(format!(
            "pod {} {} {:?}",
            p.id,
            p.state,
            p.metadata.map(|m| m.name)
        ));
    }
    for c in rt
        .list_containers(kc::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers
    {
        out.push(format!(
            "container {} {} {}",
            c.id, c.state, c.pod_sandbox_id
        ));
    }
    for i in images
        .list_images(kc::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images
    {
        out.push(format!("image {} {:?}", i.id, i.repo_tags));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rpc_refuses_malformed_input_with_the_right_code_and_changes_nothing() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = pods::setup().await;
    let mut images = ImageServiceClient::new(d.channel().await);
    let logs_dir = logs.path().to_str().unwrap().to_string();
    let pc = pod_config("table", &logs_dir);
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let ctr = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("table", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .unwrap();
    let before = state(&mut rt, &mut images).await;

    let mut rows = Vec::new();
    id_rows(&mut rows, &rt, &images, &pc, &img);
    config_rows(&mut rows, &rt, &pod, &ctr, &pc, &img, &logs_dir);
    let n = rows.len();
    let mut bad = Vec::new();
    for r in rows {
        let got = match tokio::time::timeout(std::time::Duration::from_secs(30), r.call).await {
            Ok(Ok(())) => Code::Ok,
            Ok(Err(s)) => {
                if matches!(s.code(), Code::Internal | Code::Unknown) || !r.want.contains(&s.code())
                {
                    bad.push(format!(
                        "{}: {:?} {:?} (allowed {:?})",
                        r.name,
                        s.code(),
                        s.message().chars().take(300).collect::<String>(),
                        r.want
                    ));
                }
                continue;
            }
            Err(_) => {
                bad.push(format!("{}: no answer in 30 s", r.name));
                continue;
            }
        };
        if !r.want.contains(&got) {
            bad.push(format!("{}: OK (allowed {:?})", r.name, r.want));
        }
    }
    let after = state(&mut rt, &mut images).await;
    assert!(
        bad.is_empty(),
        "{} of {n} rows wrong:\n{}\ncrustd log:\n{}",
        bad.len(),
        bad.join("\n"),
        d.log()
    );
    assert_eq!(before, after, "state changed by malformed requests");
    // crustd still serves.
    let s = pods::status(&mut rt, &ctr).await;
    assert_eq!(s.state, kc::ContainerState::ContainerRunning as i32);
    pods::remove_pod(&mut rt, &pod).await;
    eprintln!("{n} malformed requests answered with the allowed codes");
}
