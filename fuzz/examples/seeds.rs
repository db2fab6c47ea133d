//! Writes the checked-in seed corpus, `fuzz/seeds/<target>/<case>`: well-formed inputs of
//! every target and every hostile case of issue 18 that reaches it. Run from `fuzz/`:
//! `cargo run --example seeds` (it rewrites the files; git shows what changed).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use k8s_cri::v1 as cri;
use prost::Message as _;
use tar::{EntryType as T, Header};

// Built with the fuzz targets' flags (run.sh), so it shares their build; the coverage
// instrumentation then needs libFuzzer's runtime.
use libfuzzer_sys as _;

/// A tar entry with a raw name and link name (the tar crate's setters refuse `..` and `/`).
fn raw(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: T, link: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).expect("append to an in-memory tar");
}

fn tar(entries: &[(&str, T, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        raw(&mut b, name, *kind, link, data);
    }
    b.into_inner().expect("finish an in-memory tar")
}

fn device(name: &str, kind: T, major: u32, minor: u32) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_device_major(major).expect("major");
    h.set_device_minor(minor).expect("minor");
    h.set_mode(0o666);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_path(name).expect("device name");
    h.set_cksum();
    b.append(&h, &[][..]).expect("append");
    b.into_inner().expect("finish")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// A regular file of `size` zero bytes, in a tar, gzip-compressed: a small layer that
/// writes a big file (bounded by the fuzz harness's RLIMIT_FSIZE).
fn zero_file_gz(size: u64) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut h = Header::new_gnu();
    h.set_entry_type(T::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_path("big").expect("name");
    h.set_cksum();
    e.write_all(h.as_bytes()).expect("gzip");
    let zeros = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        e.write_all(&zeros[..n]).expect("gzip");
        left -= n as u64;
    }
    e.write_all(&[0u8; 1024]).expect("gzip");
    e.finish().expect("gzip")
}

/// A GNU sparse entry declaring a `real` byte file with one 1-byte data block at its end.
fn sparse(real: u64) -> Vec<u8> {
    let mut h = Header::new_gnu();
    h.set_entry_type(T::GNUSparse);
    h.set_path("sparse").expect("name");
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(512);
    {
        let g = h.as_gnu_mut().expect("gnu header");
        let octal = |dst: &mut [u8], v: u64| {
            let s = format!("{:0w$o}", v, w = dst.len() - 1);
            dst[..s.len()].copy_from_slice(s.as_bytes());
        };
        octal(&mut g.sparse[0].offset, real - 1);
        octal(&mut g.sparse[0].numbytes, 1);
        octal(&mut g.realsize, real);
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    let mut block = [0u8; 512];
    block[0] = b'x';
    out.extend_from_slice(&block);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn layer_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let passwd = b"alice:x:1234:1235::/:/bin/sh\n".as_slice();
    vec![
        (
            "plain",
            tar(&[
                ("etc/", T::Directory, "", b""),
                ("etc/passwd", T::Regular, "", passwd),
                ("bin/link", T::Symlink, "sh", b""),
                ("bin/hard", T::Link, "bin/sh", b""),
                ("fifo", T::Fifo, "", b""),
            ]),
        ),
        (
            "plain-gzip",
            gzip(&tar(&[("etc/passwd", T::Regular, "", passwd)])),
        ),
        (
            "plain-zstd",
            zstd::encode_all(&tar(&[("etc/passwd", T::Regular, "", passwd)])[..], 3).expect("zstd"),
        ),
        // Issue 18 item 1: a whiteout of `..` removed every snapshot.
        ("whiteout-dotdot", tar(&[(".wh...", T::Regular, "", b"")])),
        ("whiteout-dot", tar(&[("etc/.wh..", T::Regular, "", b"")])),
        ("whiteout-empty", tar(&[("etc/.wh.", T::Regular, "", b"")])),
        (
            "whiteout-opaque",
            tar(&[("bin/.wh..wh..opq", T::Regular, "", b"")]),
        ),
        (
            "whiteout-of-file",
            tar(&[("etc/.wh.passwd", T::Regular, "", b"")]),
        ),
        ("whiteout-of-dir", tar(&[(".wh.bin", T::Regular, "", b"")])),
        (
            "whiteout-through-symlink",
            tar(&[
                ("up", T::Symlink, "..", b""),
                ("up/.wh.canary", T::Regular, "", b""),
            ]),
        ),
        // Item 2: /etc/passwd a symlink to /dev/zero.
        (
            "passwd-dev-zero",
            tar(&[("etc/passwd", T::Symlink, "/dev/zero", b"")]),
        ),
        // Item 3: /etc/passwd a FIFO.
        ("passwd-fifo", tar(&[("etc/passwd", T::Fifo, "", b"")])),
        ("passwd-char-device", device("etc/passwd", T::Char, 1, 5)),
        (
            "passwd-directory",
            tar(&[("etc/passwd/", T::Directory, "", b"")]),
        ),
        // Item 4: /etc a symlink to a host directory (the harness's canary is `../canary`).
        ("etc-to-host", tar(&[("etc", T::Symlink, "/etc", b"")])),
        (
            "etc-to-canary",
            tar(&[("etc", T::Symlink, "../canary", b"")]),
        ),
        (
            "passwd-to-canary",
            tar(&[("etc/passwd", T::Symlink, "../../canary/passwd", b"")]),
        ),
        // Traversal and absolute names.
        ("dotdot", tar(&[("../canary/evil", T::Regular, "", b"x")])),
        (
            "dotdot-deep",
            tar(&[("a/../../canary/evil", T::Regular, "", b"x")]),
        ),
        (
            "absolute",
            tar(&[("/tmp/crust-fuzz-evil", T::Regular, "", b"x")]),
        ),
        (
            "root-entry",
            tar(&[("/", T::Directory, "", b""), ("./", T::Directory, "", b"")]),
        ),
        // Symlink and hardlink escapes.
        (
            "symlink-parent-escape",
            tar(&[
                ("out", T::Symlink, "../canary", b""),
                ("out/evil", T::Regular, "", b"x"),
            ]),
        ),
        (
            "symlink-absolute-parent",
            tar(&[
                ("out", T::Symlink, "/", b""),
                ("out/tmp/crust-fuzz-evil", T::Regular, "", b"x"),
            ]),
        ),
        (
            "symlink-then-dir-entry",
            tar(&[
                ("d", T::Symlink, "../canary/dir", b""),
                ("d/", T::Directory, "", b""),
                ("d/file", T::Regular, "", b"overwritten"),
            ]),
        ),
        (
            "hardlink-escape",
            tar(&[("h", T::Link, "../canary/passwd", b"")]),
        ),
        (
            "hardlink-absolute",
            tar(&[("h", T::Link, "/etc/shadow", b"")]),
        ),
        (
            "hardlink-through-symlink",
            tar(&[
                ("s", T::Symlink, "../canary", b""),
                ("h", T::Link, "s/passwd", b""),
            ]),
        ),
        (
            "hardlink-then-write",
            tar(&[
                ("h", T::Link, "etc/passwd", b""),
                ("h", T::Regular, "", b"replaced"),
            ]),
        ),
        // Device nodes and special files.
        ("device-block", device("dev/sda", T::Block, 8, 0)),
        ("device-mem", device("dev/mem", T::Char, 1, 1)),
        // Gzip bomb and huge files.
        ("gzip-bomb", zero_file_gz(64 << 20)),
        ("sparse-huge", sparse((1 << 33) - 1)),
        (
            "truncated",
            tar(&[("etc/passwd", T::Regular, "", passwd)])[..700].to_vec(),
        ),
    ]
}

fn spdy_frame(control: bool, kind_or_stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let word = if control {
        0x8003_0000 | kind_or_stream
    } else {
        kind_or_stream & 0x7fff_ffff
    };
    out.extend_from_slice(&word.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    out
}

fn spdy_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crust_streaming::spdy::{Frame, FrameCodec, Headers};
    let mut codec = FrameCodec::new().expect("codec");
    let mut enc = |f: Frame| {
        let mut b = bytes::BytesMut::new();
        codec.encode(&f, &mut b).expect("encode");
        b.to_vec()
    };
    let headers = Headers::new()
        .with("streamtype", "stdout")
        .with("port", "80");
    let syn = enc(Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        slot: 0,
        flags: 0,
        headers: headers.clone(),
    });
    let data = enc(Frame::Data {
        stream_id: 1,
        flags: 1,
        data: bytes::Bytes::from_static(b"hello"),
    });
    let ping = enc(Frame::Ping { id: 7 });
    let mut conversation = vec![1u8];
    conversation.extend_from_slice(&syn);
    conversation.extend_from_slice(&data);
    conversation.extend_from_slice(&ping);
    let mut slow = vec![3u8];
    slow.extend_from_slice(&conversation[1..]);
    let with_chunk = |c: u8, v: Vec<u8>| {
        let mut out = vec![c];
        out.extend(v);
        out
    };
    vec![
        ("conversation", conversation),
        ("conversation-3-byte-reads", slow),
        (
            "data-stream-zero",
            with_chunk(255, spdy_frame(false, 0, 0, b"x")),
        ),
        (
            "syn-stream-garbage-headers",
            with_chunk(
                255,
                spdy_frame(true, 1, 0, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            ),
        ),
        (
            "settings-huge-count",
            with_chunk(255, spdy_frame(true, 4, 0, &[0xff, 0xff, 0xff, 0xff])),
        ),
        (
            "length-16m",
            with_chunk(255, vec![0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff]),
        ),
        (
            "unknown-control",
            with_chunk(255, spdy_frame(true, 0x7777, 0, b"abc")),
        ),
        (
            "goaway-short",
            with_chunk(255, spdy_frame(true, 7, 0, b"\0")),
        ),
    ]
}

/// A client WebSocket frame (masked, FIN set).
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn ws_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let cat = |frames: &[Vec<u8>]| frames.concat();
    vec![
        (
            "binary-channels",
            cat(&[
                ws_frame(2, b"\0stdin data"),
                ws_frame(2, b"\x04{\"Width\":80,\"Height\":24}"),
                ws_frame(2, b""),
                ws_frame(8, b"\x03\xe8"),
            ]),
        ),
        (
            "base64-channels",
            cat(&[
                ws_frame(1, b"0aGVsbG8="),
                ws_frame(1, b"4eyJXaWR0aCI6ODAsIkhlaWdodCI6MjR9"),
                ws_frame(1, b"x!!"),
            ]),
        ),
        (
            "resize-split",
            cat(&[
                ws_frame(2, b"\x04{\"Width\":"),
                ws_frame(2, b"\x0480,\"Height\":24}{\"Wid"),
                ws_frame(2, b"\x04th\":1,\"Height\":1}"),
            ]),
        ),
        ("resize-garbage", ws_frame(2, b"\x04}}}{{{")),
        (
            "declared-64bit-length",
            vec![0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        ("unmasked", vec![0x82, 0x02, 0x00, 0x41]),
        ("ping-pong", cat(&[ws_frame(9, b"p"), ws_frame(10, b"q")])),
        (
            "fragmented",
            [
                vec![0x02, 0x81, 0, 0, 0, 0, 1],
                vec![0x80, 0x81, 0, 0, 0, 0, 2],
            ]
            .concat(),
        ),
    ]
}

/// The fuzz input of `cri_to_oci`: length-prefixed image config, then the request.
fn cri_input(image_config: &str, req: &cri::CreateContainerRequest) -> Vec<u8> {
    let mut out = (image_config.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(image_config.as_bytes());
    out.extend(req.encode_to_vec());
    out
}

fn pod_config() -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".into(),
            uid: "u1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: "/var/log/pods/u1".into(),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

fn container(edit: impl FnOnce(&mut cri::ContainerConfig)) -> cri::CreateContainerRequest {
    let mut c = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: "busybox:1".into(),
            ..Default::default()
        }),
        command: vec!["/bin/sh".into()],
        args: vec!["-c".into(), "true".into()],
        envs: vec![cri::KeyValue {
            key: "A".into(),
            value: "b".into(),
        }],
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources::default()),
            security_context: Some(cri::LinuxContainerSecurityContext::default()),
        }),
        ..Default::default()
    };
    edit(&mut c);
    cri::CreateContainerRequest {
        pod_sandbox_id: "0123456789abcdef".into(),
        config: Some(c),
        sandbox_config: Some(pod_config()),
    }
}

fn sc(c: &mut cri::ContainerConfig) -> &mut cri::LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

fn cri_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let image = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
        "config":{"User":"app","Env":["PATH=/bin"],"Entrypoint":["/bin/sh"],"WorkingDir":"/"}}"#;
    let big_user_image =
        r#"{"rootfs":{"type":"layers","diff_ids":[]},"config":{"User":"4294967295:4294967295"}}"#;
    let mount = |host: &str, ctr: &str| cri::Mount {
        host_path: host.into(),
        container_path: ctr.into(),
        ..Default::default()
    };
    vec![
        ("plain", cri_input("", &container(|_| {}))),
        ("image-user", cri_input(image, &container(|_| {}))),
        // Issue 18 item 10: run_as_user 4294967295 ran as root.
        (
            "run-as-user-u32-max",
            cri_input(
                "",
                &container(|c| sc(c).run_as_user = Some(cri::Int64Value { value: 4294967295 })),
            ),
        ),
        (
            "run-as-user-negative",
            cri_input(
                "",
                &container(|c| sc(c).run_as_user = Some(cri::Int64Value { value: -1 })),
            ),
        ),
        (
            "run-as-group-u32-max",
            cri_input(
                "",
                &container(|c| {
                    sc(c).run_as_user = Some(cri::Int64Value { value: 0 });
                    sc(c).run_as_group = Some(cri::Int64Value { value: 4294967295 });
                }),
            ),
        ),
        (
            "supplemental-group-u32-max",
            cri_input(
                "",
                &container(|c| sc(c).supplemental_groups = vec![4294967295]),
            ),
        ),
        (
            "image-user-u32-max",
            cri_input(big_user_image, &container(|_| {})),
        ),
        (
            "image-user-passwd-big-uid",
            cri_input(
                r#"{"rootfs":{"type":"layers","diff_ids":[]},"config":{"User":"big"}}"#,
                &container(|_| {}),
            ),
        ),
        // Medium: many env vars (100,000 in the attack; fewer here, the shape is the same).
        (
            "many-envs",
            cri_input(
                "",
                &container(|c| {
                    c.envs = (0..2000)
                        .map(|i| cri::KeyValue {
                            key: format!("K{i}"),
                            value: "v".into(),
                        })
                        .collect()
                }),
            ),
        ),
        (
            "env-with-newline-and-equals",
            cri_input(
                "",
                &container(|c| {
                    c.envs = vec![cri::KeyValue {
                        key: "A=B\nC".into(),
                        value: "\0".into(),
                    }]
                }),
            ),
        ),
        // Bad mounts.
        (
            "mount-relative",
            cri_input("", &container(|c| c.mounts = vec![mount("rel", "/x")])),
        ),
        (
            "mount-empty",
            cri_input("", &container(|c| c.mounts = vec![mount("", "")])),
        ),
        (
            "mount-dotdot",
            cri_input(
                "",
                &container(|c| c.mounts = vec![mount("/tmp", "/../../etc")]),
            ),
        ),
        (
            "mount-bad-propagation",
            cri_input(
                "",
                &container(|c| {
                    let mut m = mount("/tmp", "/x");
                    m.propagation = 99;
                    c.mounts = vec![m];
                }),
            ),
        ),
        // Seccomp: Localhost profiles that are not regular files (FIFO, device, huge).
        (
            "seccomp-localhost-dev-zero",
            cri_input(
                "",
                &container(|c| {
                    sc(c).seccomp = Some(cri::SecurityProfile {
                        profile_type: cri::security_profile::ProfileType::Localhost as i32,
                        localhost_ref: "/dev/zero".into(),
                    })
                }),
            ),
        ),
        (
            "seccomp-bad-enum",
            cri_input(
                "",
                &container(|c| {
                    sc(c).seccomp = Some(cri::SecurityProfile {
                        profile_type: 42,
                        localhost_ref: String::new(),
                    })
                }),
            ),
        ),
        (
            "namespace-bad-enum",
            cri_input(
                "",
                &container(|c| {
                    sc(c).namespace_options = Some(cri::NamespaceOption {
                        network: 7,
                        ..Default::default()
                    })
                }),
            ),
        ),
        (
            "device-relative",
            cri_input(
                "",
                &container(|c| {
                    c.devices = vec![cri::Device {
                        container_path: "dev/x".into(),
                        host_path: "../../dev/mem".into(),
                        permissions: "rwmx".into(),
                    }]
                }),
            ),
        ),
        (
            "working-dir-relative",
            cri_input("", &container(|c| c.working_dir = "relative/dir".into())),
        ),
        (
            "privileged-in-unprivileged-pod",
            cri_input("", &container(|c| sc(c).privileged = true)),
        ),
        (
            "capability-garbage",
            cri_input(
                "",
                &container(|c| {
                    sc(c).capabilities = Some(cri::Capability {
                        add_capabilities: vec!["CAP_NOPE".into(), "ALL".into()],
                        drop_capabilities: vec!["".into()],
                        ..Default::default()
                    })
                }),
            ),
        ),
    ]
}

fn write(target: &str, seeds: Vec<(&str, Vec<u8>)>) {
    let dir = Path::new("seeds").join(target);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("make the seed dir");
    let mut seen = HashMap::new();
    for (name, bytes) in seeds {
        assert!(seen.insert(name, ()).is_none(), "seed {name} twice");
        fs::write(dir.join(name), bytes).expect("write a seed");
    }
}

fn main() {
    write("layer_unpack", layer_seeds());
    write(
        "image_reference",
        [
            ("short", "busybox"),
            ("tagged", "busybox:1.36"),
            ("registry-port", "127.0.0.1:5000/a/b:c"),
            ("digest", "docker.io/library/busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000"),
            ("tag-and-digest", "localhost/x:y@sha256:1111111111111111111111111111111111111111111111111111111111111111"),
            ("uppercase", "Docker.IO/Library/BusyBox"),
            ("dotdot", "registry/../../etc:latest"),
            ("newline", "busybox\n:latest"),
            ("too-long", &format!("a/{}", "b".repeat(300))),
            ("empty-components", "docker.io//busybox"),
        ]
        .map(|(n, s)| (n, s.as_bytes().to_vec()))
        .to_vec(),
    );
    let digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    write(
        "image_manifest",
        vec![
            (
                "manifest",
                format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":10}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{digest}","size":-1}}]}}"#).into_bytes(),
            ),
            (
                "index",
                format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":1,"platform":{{"os":"linux","architecture":"amd64","variant":"v9"}}}}]}}"#).into_bytes(),
            ),
            ("schema1", br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec()),
            (
                "bad-digest",
                br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:../../etc","size":1},"layers":[]}"#.to_vec(),
            ),
            ("deep-nesting", format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes()),
        ],
    );
    write(
        "image_config",
        vec![
            (
                "config",
                br#"{"architecture":"amd64","os":"linux","config":{"User":"1000:1000","Env":["A=b"],"Cmd":["sh"],"Volumes":{"/data":{}},"ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":["sha256:2222222222222222222222222222222222222222222222222222222222222222"]}}"#.to_vec(),
            ),
            (
                "user-u32-max",
                br#"{"config":{"User":"4294967295:4294967295"},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec(),
            ),
            ("rootfs-not-layers", br#"{"rootfs":{"type":"x","diff_ids":[]}}"#.to_vec()),
            ("env-null", br#"{"config":{"Env":null,"Entrypoint":null},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec()),
        ],
    );
    write("spdy_frames", spdy_seeds());
    write("websocket_frames", ws_seeds());
    write("cri_to_oci", cri_seeds());
}
