//! The bodies of crust's fuzz targets (`fuzz_targets/*.rs` are one-line wrappers), kept in a
//! library so that `tests/seeds.rs` replays the checked-in seed corpus through exactly the
//! code libFuzzer runs, without instrumentation.
//!
//! Each target feeds untrusted bytes to one decoder crustd runs on input from a registry, an
//! image or a client, and checks more than "no panic" where a property is cheap to state:
//! - [`layer_unpack`]: a layer tarball (plain, gzip or zstd) applied to a snapshot
//!   directory that already holds files (so whiteouts have something to remove); nothing
//!   outside that directory may change, and the image's user files are then read back
//!   the way CreateContainer reads them (symlinks, FIFOs, devices where files belong);
//! - [`image_reference`]: a reference that parses is printed and parses again to itself;
//! - [`image_manifest`], [`image_config`]: manifest/index and config JSON;
//! - [`spdy_frames`]: a SPDY/3.1 byte stream cut at fuzzed points, every frame re-encoded;
//! - [`websocket_frames`]: a client's WebSocket byte stream (tungstenite's framing) and
//!   crust's channel and terminal-resize decoding on top;
//! - [`cri_to_oci`]: a CreateContainer request (pod and container config) converted to the
//!   core's specs, checked as CreateContainer checks it, and built into an OCI spec.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::BytesMut;
use crust_daemon::images::manifest::{self, Document};
use crust_daemon::images::ImageRef;
use crust_daemon::runtime::oci::spec::{build, SpecInput};
use crust_daemon::runtime::oci::user::UserFiles;
use crust_daemon::runtime::{PodRecord, PodState};
use crust_daemon::snapshots::unpack;
use crust_streaming::protocol::{ws_decode, ResizeDecoder, WsFrame};
use crust_streaming::spdy::FrameCodec;
use prost::Message as _;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

/// The largest file a layer may write during fuzzing (RLIMIT_FSIZE): a few input bytes
/// can declare gigabytes (gzip, zstd, sparse entries), and the fuzzer must neither fill
/// the disk nor spend its time writing zeros.
const FILE_SIZE_LIMIT: u64 = 8 << 20;

/// Where the targets make their directories: `CRUST_FUZZ_SCRATCH` (run.sh's temp dir,
/// removed when it ends), else the system's temp dir.
fn scratch_base() -> PathBuf {
    std::env::var_os("CRUST_FUZZ_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

struct Scratch {
    /// Holds `layer` (the snapshot, re-made for every input) and `canary`.
    root: PathBuf,
    /// Everything under `root` but `layer`, as (relative path, size, mtime): must never change.
    outside: Vec<(PathBuf, u64, i64)>,
}

fn scratch() -> &'static Scratch {
    static S: OnceLock<Scratch> = OnceLock::new();
    S.get_or_init(|| {
        // SAFETY: plain syscalls on values we own; SIGXFSZ ignored so that an oversized
        // write fails with EFBIG instead of killing the fuzzer.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: FILE_SIZE_LIMIT,
                rlim_max: FILE_SIZE_LIMIT,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
        }
        let root = scratch_base().join(format!("crust-fuzz-unpack-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let canary = root.join("canary");
        fs::create_dir_all(canary.join("dir")).expect("make the canary dir");
        fs::write(canary.join("passwd"), "root:x:0:0:canary:/root:/bin/sh\n").expect("canary");
        fs::write(canary.join("dir/file"), "canary").expect("canary");
        std::os::unix::fs::symlink("canary/dir", root.join("link-out")).expect("canary link");
        let outside = snapshot_tree(&root);
        Scratch { root, outside }
    })
}

/// Every path under `root` except `root/layer`, with its size and mtime.
fn snapshot_tree(root: &Path) -> Vec<(PathBuf, u64, i64)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, u64, i64)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p == root.join("layer") {
                continue;
            }
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            out.push((rel, m.size(), m.mtime()));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A layer tarball applied over a snapshot holding a small image.
pub fn layer_unpack(data: &[u8]) {
    let s = scratch();
    let layer = s.root.join("layer");
    let _ = fs::remove_dir_all(&layer);
    fs::create_dir_all(layer.join("etc")).expect("make the layer dir");
    fs::create_dir_all(layer.join("bin/sub")).expect("make the layer dir");
    fs::write(
        layer.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/\n",
    )
    .expect("seed the layer");
    fs::write(layer.join("etc/group"), "root:x:0:\n").expect("seed the layer");
    fs::write(layer.join("bin/sh"), "#!").expect("seed the layer");

    let _ = unpack::apply_to_dir(&layer, data);
    // What CreateContainer reads from an image: must come back (content or an error),
    // never hang on a FIFO, never read a host file or a device without end.
    if let Ok(files) = UserFiles::read(std::slice::from_ref(&layer)) {
        assert!(
            !files.passwd.contains("canary"),
            "the image's /etc/passwd was read from outside the image"
        );
    }
    let after = snapshot_tree(&s.root);
    assert_eq!(
        after, s.outside,
        "a layer changed something outside its snapshot"
    );
    let _ = fs::remove_dir_all(&layer);
}

/// An image reference: one that parses is printed and parses again to the same value.
pub fn image_reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = ImageRef::parse(s) else { return };
    let name = r.name();
    let again = ImageRef::parse(&name)
        .unwrap_or_else(|e| panic!("{s:?} parsed, but its name {name:?} does not: {e}"));
    assert_eq!(again, r, "{s:?} and its name {name:?} parse differently");
    let _ = r.with_digest(&crust_daemon::digest::Digest::of(data));
}

/// A manifest or index document, and the platform choice made from an index.
pub fn image_manifest(data: &[u8]) {
    match manifest::parse_document(data) {
        Ok(Document::Index(i)) => {
            let _ = manifest::select_platform(&i, &manifest::host_platform());
        }
        Ok(Document::Manifest(m)) => {
            for l in &m.layers {
                let _ = manifest::is_layer_type(&l.media_type);
            }
        }
        Err(_) => {}
    }
}

/// An image config.
pub fn image_config(data: &[u8]) {
    let _ = manifest::parse_config(data);
}

/// A SPDY/3.1 byte stream: the first byte sets the size of the reads it arrives in.
pub fn spdy_frames(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let Ok(mut codec) = FrameCodec::new() else {
        return;
    };
    let Ok(mut echo) = FrameCodec::new() else {
        return;
    };
    let mut src = BytesMut::new();
    for piece in rest.chunks(chunk) {
        src.extend_from_slice(piece);
        loop {
            match codec.decode(&mut src) {
                Ok(Some(frame)) => {
                    // What was accepted can be written back out.
                    let mut out = BytesMut::new();
                    echo.encode(&frame, &mut out)
                        .unwrap_or_else(|e| panic!("decoded {frame:?} cannot be encoded: {e}"));
                }
                Ok(None) => break,
                Err(_) => return, // the connection ends here
            }
        }
    }
}

/// A client's side of a WebSocket connection as the server reads it.
struct Wire<'a> {
    input: &'a [u8],
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// WebSocket messages (frames as a client sends them, masked or not) through crust's
/// channel decoding, both the binary and the base64 protocols, and the resize stream.
pub fn websocket_frames(data: &[u8]) {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(1 << 20);
    config.max_frame_size = Some(1 << 20);
    let mut ws = WebSocket::from_raw_socket(Wire { input: data }, Role::Server, Some(config));
    let mut resize = ResizeDecoder::default();
    for _ in 0..1024 {
        let Ok(msg) = ws.read() else { return };
        for base64 in [false, true] {
            if let Ok(WsFrame::Data(4, bytes)) = ws_decode(msg.clone(), base64) {
                let _ = resize.push(&bytes);
            }
        }
    }
}

struct OciScratch {
    layer: PathBuf,
}

fn oci_scratch() -> &'static OciScratch {
    static S: OnceLock<OciScratch> = OnceLock::new();
    S.get_or_init(|| {
        let layer = scratch_base().join(format!("crust-fuzz-oci-{}", std::process::id()));
        let _ = fs::remove_dir_all(&layer);
        fs::create_dir_all(layer.join("etc")).expect("make the image dir");
        fs::write(
            layer.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/\nbig:x:4294967294:5::/:/\n",
        )
        .expect("image passwd");
        fs::write(layer.join("etc/group"), "root:x:0:\napp:x:1000:app\n").expect("image group");
        OciScratch { layer }
    })
}

/// A CreateContainer request converted and built into an OCI spec. The input is a 2-byte
/// big-endian length, that many bytes of image config JSON (an empty one is a small
/// default image), then a `CreateContainerRequest` in protobuf.
pub fn cri_to_oci(data: &[u8]) {
    let (config_json, request) = match data {
        [a, b, rest @ ..] => {
            let n = usize::from(u16::from_be_bytes([*a, *b])).min(rest.len());
            rest.split_at(n)
        }
        _ => return,
    };
    let image = if config_json.is_empty() {
        crust_daemon::images::ImageConfig {
            env: vec!["PATH=/bin".into()],
            entrypoint: vec!["/bin/sh".into()],
            ..Default::default()
        }
    } else {
        match manifest::parse_config(config_json) {
            Ok((c, _)) => c,
            Err(_) => return,
        }
    };
    let Ok(req) = k8s_cri::v1::CreateContainerRequest::decode(request) else {
        return;
    };
    let Some(pod_config) = req.sandbox_config else {
        return;
    };
    let Some(config) = req.config else { return };
    let Ok(pod_spec) = crust_cri::runtime::convert::pod_spec(pod_config, String::new()) else {
        return;
    };
    let Ok(spec) = crust_cri::runtime::convert::container_spec(config) else {
        return;
    };
    // CreateContainer's own checks (crust_daemon::runtime::container::create).
    if spec
        .mounts
        .iter()
        .any(|m| crust_daemon::runtime::oci::mounts::check_mount(m).is_err())
    {
        return;
    }
    let pod = PodRecord {
        version: 1,
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        spec: pod_spec,
        state: PodState::Ready,
        created_at: 0,
        ips: vec![],
        netns: Some("/run/crust-fuzz/ns/net".into()),
        ipcns: Some("/run/crust-fuzz/ns/ipc".into()),
        utsns: Some("/run/crust-fuzz/ns/uts".into()),
        dir: "/run/crust-fuzz/pod".into(),
        cgroup_parent: String::new(),
        shim_address: None,
        pidns: None,
        pod_init_pid: 0,
        cgroup_driver: Default::default(),
        userns: None,
    };
    let s = oci_scratch();
    let Ok(user_files) = UserFiles::read(std::slice::from_ref(&s.layer)) else {
        return;
    };
    let Ok(v) = build(&SpecInput {
        id: "c1",
        pod: &pod,
        spec: &spec,
        image: &image,
        image_name: &spec.image,
        user_files: &user_files,
        cgroup_path: "/crust-fuzz/pod/c1",
        pid_ns: None,
        min_oom_score_adj: -1000,
        volumes: &[],
        // Both host layouts, chosen by a bit of the input the seeds already vary (the
        // request's length) so the seed format stays as it is.
        unified_cgroups: request.len() % 2 == 1,
    }) else {
        return;
    };
    // runc refuses ids outside 0..=2^31-1 (issue 18 item 10): a spec crust writes never
    // holds one.
    let user = &v["process"]["user"];
    for id in [&user["uid"], &user["gid"]] {
        let id = id.as_u64().expect("numeric uid/gid in the spec");
        assert!(
            id <= i32::MAX as u64,
            "spec with user/group id {id}: {user}"
        );
    }
    if let Some(gids) = user["additionalGids"].as_array() {
        for g in gids {
            let g = g.as_u64().expect("numeric additional gid");
            assert!(g <= i32::MAX as u64, "spec with additional gid {g}: {user}");
        }
    }
}
