//! End-to-end tests of crustd's streaming server: CRI `Exec`, `Attach` and `PortForward`
//! URLs driven with crust's own client over SPDY/3.1 and WebSocket, against real crustd,
//! shim and runtime processes; and the bad-input cases (reused and expired tokens, unknown
//! and stopped containers, a client vanishing mid-stream).

use std::time::{Duration, Instant};

use crust_e2e::pods::{self, container_config, pod_config, setup_with};
use crust_e2e::require_root;
use crust_streaming::client::{
    forward_websocket, remote_command, ClientError, ClientStdio, PortForwarder,
    RemoteCommandOptions, Transport,
};
use crust_streaming::TerminalSize;
use k8s_cri::v1 as kc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::Code;

const TRANSPORTS: [Transport; 2] = [Transport::Spdy, Transport::WebSocket];

/// A local output: the writer to hand to the client and a task collecting what arrives.
fn sink() -> (Box<DuplexStream>, JoinHandle<String>) {
    let (w, mut r) = tokio::io::duplex(1 << 20);
    let h = tokio::spawn(async move {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v).await;
        String::from_utf8_lossy(&v).into_owned()
    });
    (Box::new(w), h)
}

/// A TCP relay in front of the streaming server whose task can be aborted to make a
/// client vanish the way a killed process does (both sockets closed at once); returns the
/// rewritten URL and the relay task.
async fn relay(url: &str) -> (String, JoinHandle<()>) {
    let rest = url.trim_start_matches("http://");
    let (upstream, path) = rest.split_once('/').expect("url path");
    let upstream = upstream.to_string();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind relay");
    let addr = l.local_addr().expect("relay address");
    let h = tokio::spawn(async move {
        let (mut a, _) = l.accept().await.expect("relay accept");
        let mut b = tokio::net::TcpStream::connect(&upstream)
            .await
            .expect("relay connect");
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
    (format!("http://{addr}/{path}"), h)
}

/// `crustctl -r unix://SOCK ARGS...` as a command, stdio piped.
fn crustctl(d: &crust_e2e::daemon::Crustd, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(crust_e2e::workspace_bin("crust-ctl", "crustctl"));
    c.arg("--runtime-endpoint")
        .arg(format!("unix://{}", d.socket().display()))
        .arg("--config")
        .arg("/nonexistent/crictl.yaml")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// Runs crustctl with `input` on its stdin; returns (stdout, stderr, exit code).
fn crustctl_with_input(
    d: &crust_e2e::daemon::Crustd,
    args: &[&str],
    input: &[u8],
) -> (String, String, i32) {
    use std::io::Write as _;
    let mut child = crustctl(d, args).spawn().expect("run crustctl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write crustctl stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("crustctl output");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

async fn exec_url(
    rt: &mut pods::Runtime,
    id: &str,
    cmd: Vec<String>,
    tty: bool,
    stdin: bool,
    stderr: bool,
) -> Result<String, tonic::Status> {
    Ok(rt
        .exec(kc::ExecRequest {
            container_id: id.into(),
            cmd,
            tty,
            stdin,
            stdout: true,
            stderr,
        })
        .await?
        .into_inner()
        .url)
}

/// A pod with one long-running busybox container; returns (pod, container).
async fn sleeper(
    rt: &mut pods::Runtime,
    logs: &tempfile::TempDir,
    name: &str,
    image: &str,
    cfg: impl FnOnce(&mut kc::ContainerConfig),
) -> (String, String, kc::PodSandboxConfig) {
    let pc = pod_config(name, logs.path().to_str().expect("utf-8 log dir"));
    let pod = pods::run_pod(rt, &pc).await.expect("RunPodSandbox");
    let mut c = container_config(name, image, &["/bin/sleep", "1000"]);
    cfg(&mut c);
    let id = pods::run_container(rt, &pod, &pc, c)
        .await
        .expect("create+start");
    (pod, id, pc)
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_streams_exit_codes_tty_and_stdin() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup_with(&pods::config()).await;
    let (_pod, id, _) = sleeper(&mut rt, &logs, "exec", &img, |_| {}).await;
    for t in TRANSPORTS {
        // Two output streams and an exit code.
        let url = exec_url(
            &mut rt,
            &id,
            sh("echo out; echo err >&2; exit 3"),
            false,
            false,
            true,
        )
        .await
        .expect("Exec");
        let ((o, oh), (e, eh)) = (sink(), sink());
        let outcome = remote_command(
            &url,
            &RemoteCommandOptions::new(t, false),
            ClientStdio {
                stdout: Some(o),
                stderr: Some(e),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{t:?}: {e}\n{}", d.log()));
        assert_eq!(outcome.exit_code, 3, "{t:?}");
        assert_eq!(oh.await.unwrap(), "out\n", "{t:?}");
        assert_eq!(eh.await.unwrap(), "err\n", "{t:?}");

        // A terminal whose size the client sets.
        let url = exec_url(
            &mut rt,
            &id,
            sh("for i in $(busybox seq 100); do s=$(busybox stty size); \
                [ \"$s\" = '33 101' ] && break; busybox sleep 0.05; done; echo size=$s"),
            true,
            false,
            false,
        )
        .await
        .expect("Exec tty");
        let (o, oh) = sink();
        let (tx, rx) = mpsc::channel(4);
        tx.send(TerminalSize {
            width: 101,
            height: 33,
        })
        .await
        .unwrap();
        let outcome = remote_command(
            &url,
            &RemoteCommandOptions::new(t, true),
            ClientStdio {
                stdout: Some(o),
                resize: Some(rx),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{t:?} tty: {e}\n{}", d.log()));
        drop(tx);
        assert_eq!(outcome.exit_code, 0);
        let out = oh.await.unwrap();
        assert!(out.contains("size=33 101"), "{t:?}: {out:?}");

        // stdin round trip, ended by EOF.
        let url = exec_url(&mut rt, &id, vec!["/bin/cat".into()], false, true, false)
            .await
            .expect("Exec stdin");
        let (o, oh) = sink();
        let payload: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let outcome = remote_command(
            &url,
            &RemoteCommandOptions::new(t, false),
            ClientStdio {
                stdin: Some(Box::new(std::io::Cursor::new(payload.clone().into_bytes()))),
                stdout: Some(o),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{t:?} stdin: {e}\n{}", d.log()));
        assert_eq!(outcome.exit_code, 0);
        let back = oh.await.unwrap();
        assert!(
            back == payload,
            "{t:?}: cat returned {} of {} bytes",
            back.len(),
            payload.len()
        );
    }

    // crustctl: plain exec is ExecSync, -i streams stdin (SPDY and WebSocket).
    let (out, _, code) =
        crustctl_with_input(&d, &["exec", &id, "sh", "-c", "echo sync; exit 5"], b"");
    assert_eq!((out.as_str(), code), ("sync\n", 5));
    for transport in ["spdy", "websocket"] {
        let (out, err, code) = crustctl_with_input(
            &d,
            &[
                "exec",
                "-i",
                "--transport",
                transport,
                &id,
                "sh",
                "-c",
                "cat; echo to-err >&2; exit 4",
            ],
            b"piped through crustctl\n",
        );
        assert_eq!(out, "piped through crustctl\n", "{transport}: {err}");
        assert_eq!(err, "to-err\n", "{transport}");
        assert_eq!(code, 4, "{transport}");
    }
    // crustctl exec -it on a pseudo-terminal (util-linux `script`): raw mode, the local
    // window size reaches the container, the exit code comes back.
    let ctl = crust_e2e::workspace_bin("crust-ctl", "crustctl");
    let inner = format!(
        "stty cols 91 rows 27; {} --runtime-endpoint unix://{} --config /nonexistent exec -it {id} \
         sh -c 'for i in $(busybox seq 50); do s=$(busybox stty size); \
         [ \"$s\" = \"27 91\" ] && break; busybox sleep 0.05; done; echo size=$s; exit 6'",
        ctl.display(),
        d.socket().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script (bsdutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("size=27 91"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");

    let (_, err, code) = crustctl_with_input(&d, &["exec", "-i", "nosuch", "true"], b"");
    assert_eq!(code, 1);
    assert!(err.contains("NotFound"), "{err}");
    assert_no_session_files(&d);
}

fn assert_no_session_files(d: &crust_e2e::daemon::Crustd) {
    for sub in ["state/exec", "state/attach"] {
        let dir = d.dir.path().join(sub);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            left.is_empty(),
            "left behind in {}: {left:?}",
            dir.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_sees_output_sends_input_and_keeps_the_log() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup_with(&pods::config()).await;
    let (_pod, id, _) = sleeper(&mut rt, &logs, "attach", &img, |c| {
        c.command = sh(
            "echo started; while read l; do [ \"$l\" = quit ] && exit 0; \
                        echo got:$l; echo err:$l >&2; done",
        );
        c.stdin = true;
    })
    .await;
    for (i, t) in TRANSPORTS.into_iter().enumerate() {
        let url = rt
            .attach(kc::AttachRequest {
                container_id: id.clone(),
                stdin: true,
                tty: false,
                stdout: true,
                stderr: true,
            })
            .await
            .expect("Attach")
            .into_inner()
            .url;
        let (url, cut) = relay(&url).await;
        let (mut input, client_in) = tokio::io::duplex(4096);
        let (out_w, mut out_r) = tokio::io::duplex(4096);
        let (e, eh) = sink();
        let session = tokio::spawn(async move {
            remote_command(
                &url,
                &RemoteCommandOptions::new(t, false),
                ClientStdio {
                    stdin: Some(Box::new(client_in)),
                    stdout: Some(Box::new(out_w)),
                    stderr: Some(e),
                    ..Default::default()
                },
            )
            .await
        });
        // The subscription starts once the session is up: repeat until an answer arrives.
        let word = format!("ping{i}");
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.contains(&format!("got:{word}")) {
            assert!(
                Instant::now() < deadline,
                "{t:?}: no output, got {seen:?}\n{}",
                d.log()
            );
            input
                .write_all(format!("{word}\n").as_bytes())
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(300), out_r.read(&mut buf)).await
            {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        if t == Transport::Spdy {
            // Detach by vanishing: the container goes on.
            cut.abort();
            let _ = cut.await;
            let _ = session.await;
            let _ = eh.await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let s = pods::status(&mut rt, &id).await;
            assert_eq!(s.state, kc::ContainerState::ContainerRunning as i32);
        } else {
            // Ask the container to exit: the attach ends with it.
            input.write_all(b"quit\n").await.unwrap();
            let outcome = tokio::time::timeout(Duration::from_secs(20), session)
                .await
                .expect("attach ends when the container exits")
                .unwrap()
                .unwrap_or_else(|e| panic!("{t:?}: {e}\n{}", d.log()));
            assert_eq!(outcome.exit_code, 0);
            assert!(eh.await.unwrap().contains(&format!("err:{word}")));
        }
    }
    // A tty container: the attach's terminal size reaches it.
    let (_pod2, tty_id, _) = sleeper(&mut rt, &logs, "attach-tty", &img, |c| {
        c.command = sh("while true; do echo size=$(busybox stty size); busybox sleep 0.1; done");
        c.tty = true;
        c.stdin = true;
    })
    .await;
    let url = rt
        .attach(kc::AttachRequest {
            container_id: tty_id.clone(),
            stdin: true,
            tty: true,
            stdout: true,
            stderr: false,
        })
        .await
        .expect("Attach tty")
        .into_inner()
        .url;
    let (url, cut) = relay(&url).await;
    let (_input, client_in) = tokio::io::duplex(64);
    let (out_w, mut out_r) = tokio::io::duplex(1 << 16);
    let (tx, rx) = mpsc::channel(4);
    tx.send(TerminalSize {
        width: 120,
        height: 44,
    })
    .await
    .unwrap();
    let session = tokio::spawn(async move {
        remote_command(
            &url,
            &RemoteCommandOptions::new(Transport::Spdy, true),
            ClientStdio {
                stdin: Some(Box::new(client_in)),
                stdout: Some(Box::new(out_w)),
                resize: Some(rx),
                ..Default::default()
            },
        )
        .await
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("size=44 120") {
        assert!(
            Instant::now() < deadline,
            "tty attach: {seen:?}\n{}",
            d.log()
        );
        let mut buf = [0u8; 1024];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), out_r.read(&mut buf)).await
        {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    drop(tx);
    cut.abort();
    let _ = cut.await;
    let _ = session.await;

    let s = pods::wait_exited(&mut rt, &id).await;
    assert_eq!(s.exit_code, 0);
    let log = std::fs::read_to_string(logs.path().join("attach.log")).unwrap();
    for line in [
        " stdout F started",
        " stdout F got:ping0",
        " stderr F err:ping0",
        " stdout F got:ping1",
    ] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
    assert!(log.lines().all(|l| l.split(' ').count() >= 4), "{log}");
    assert_no_session_files(&d);
}

#[tokio::test(flavor = "multi_thread")]
async fn port_forward_parallel_connections() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup_with(&pods::config()).await;
    let (pod, _id, _) = sleeper(&mut rt, &logs, "pf", &img, |c| {
        c.command = sh(
            "busybox mkdir /tmp/www && echo hello-http > /tmp/www/index.html && \
             busybox httpd -p 8081 -h /tmp/www && \
             exec busybox nc -ll -p 8080 -e /bin/cat",
        );
    })
    .await;
    let pf_url = |rt: &mut pods::Runtime, ports: Vec<i32>| {
        let pod = pod.clone();
        let mut rt = rt.clone();
        async move {
            rt.port_forward(kc::PortForwardRequest {
                pod_sandbox_id: pod,
                port: ports,
            })
            .await
            .expect("PortForward")
            .into_inner()
            .url
        }
    };
    // Wait for the server in the pod to listen.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (out, _) = pods::exec(
            &mut rt,
            &_id,
            "busybox netstat -ltn 2>/dev/null | busybox grep -cE ':808[01] ' || true",
        )
        .await;
        if out.trim() == "2" {
            break;
        }
        assert!(Instant::now() < deadline, "nc does not listen\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SPDY: one session, eight connections at once.
    let fwd = std::sync::Arc::new(
        PortForwarder::connect(&pf_url(&mut rt, vec![]).await)
            .await
            .expect("SPDY port-forward"),
    );
    let mut conns = Vec::new();
    for i in 0..8 {
        let fwd = fwd.clone();
        conns.push(tokio::spawn(async move {
            let (mut ours, theirs) = tokio::io::duplex(1 << 16);
            let f = tokio::spawn(async move { fwd.forward(8080, theirs).await });
            let payload: String = (0..500).map(|j| format!("conn {i} line {j}\n")).collect();
            ours.write_all(payload.as_bytes()).await.unwrap();
            // Read the echo before the half-close: after it the pod side only gets
            // crustd's 1 s grace, which a loaded machine's forked `cat` can miss.
            let mut back = vec![0u8; payload.len()];
            let got = ours.read_exact(&mut back).await;
            ours.shutdown().await.unwrap();
            let mut rest = Vec::new();
            ours.read_to_end(&mut rest).await.unwrap();
            f.await.unwrap().expect("forward");
            let back = match got {
                Ok(_) => {
                    String::from_utf8_lossy(&back).into_owned() + &String::from_utf8_lossy(&rest)
                }
                Err(_) => String::new(),
            };
            assert!(
                back == payload,
                "connection {i}: {} of {} bytes",
                back.len(),
                payload.len()
            );
        }));
    }
    for c in conns {
        tokio::time::timeout(Duration::from_secs(30), c)
            .await
            .expect("SPDY connections finish")
            .unwrap();
    }
    fwd.close().await;

    // WebSocket: one connection per session (no half-close in this protocol: the HTTP
    // server in the pod ends each), three sessions at once.
    let mut sessions = Vec::new();
    for i in 0..3 {
        let url = pf_url(&mut rt, vec![8081]).await;
        sessions.push(tokio::spawn(async move {
            let (mut ours, theirs) = tokio::io::duplex(1 << 16);
            let s = tokio::spawn(async move { forward_websocket(&url, vec![theirs]).await });
            ours.write_all(format!("GET /index.html?{i} HTTP/1.0\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let errs = s.await.unwrap().expect("websocket session");
            assert!(errs.iter().all(String::is_empty), "{errs:?}");
            let mut back = String::new();
            let _ = ours.read_to_string(&mut back).await;
            assert!(back.contains("hello-http"), "{back}");
        }));
    }
    // A port nobody listens on: the error reaches the client.
    let fwd = PortForwarder::connect(&pf_url(&mut rt, vec![]).await)
        .await
        .unwrap();
    let (_ours, theirs) = tokio::io::duplex(1024);
    let e = fwd.forward(8089, theirs).await.unwrap_err();
    assert!(e.to_string().contains("8089"), "{e}");
    fwd.close().await;

    // crustctl port-forward POD 0:8080, driven without a terminal.
    use std::io::{BufRead as _, Read as _, Write as _};
    let mut child = crustctl(&d, &["port-forward", &pod, "0:8080"])
        .spawn()
        .expect("crustctl port-forward");
    let guard = ChildGuard(child.id());
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read crustctl output");
    let local: std::net::SocketAddr = line
        .strip_prefix("Forwarding from ")
        .and_then(|l| l.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected crustctl output {line:?}"));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(local).expect("connect forwarded port");
                let msg = format!("through crustctl {i}\n");
                c.write_all(msg.as_bytes()).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = String::new();
                c.read_to_string(&mut back).unwrap();
                assert_eq!(back, msg);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("forwarded connection");
    }
    drop(guard);
    let _ = child.wait();
}

/// Sends SIGINT to a child process on drop (Ctrl-C for crustctl port-forward).
struct ChildGuard(u32);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGINT,
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_vanishing_clients() {
    require_root!();
    let cfg = format!("{}[streaming]\ntoken_ttl_secs = 1\n", pods::config());
    let (_reg, d, mut rt, img, logs, _g) = setup_with(&cfg).await;
    let (pod, id, pc) = sleeper(&mut rt, &logs, "bad", &img, |_| {}).await;

    // Unknown container, no streams, unknown pod.
    let e = exec_url(&mut rt, "nosuchcontainer", sh("true"), false, false, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = rt
        .exec(kc::ExecRequest {
            container_id: id.clone(),
            cmd: sh("true"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = rt
        .attach(kc::AttachRequest {
            container_id: "nosuchcontainer".into(),
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = rt
        .port_forward(kc::PortForwardRequest {
            pod_sandbox_id: "nosuchpod".into(),
            port: vec![80],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // A stopped container.
    let done = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("done", &img, &["/bin/true"]),
    )
    .await
    .unwrap();
    pods::wait_exited(&mut rt, &done).await;
    let e = exec_url(&mut rt, &done, sh("true"), false, false, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // The runtime's error, as ExecSync says it (one error-to-status mapping).
    assert!(e.message().ends_with(" is exited: cannot exec"), "{e:?}");

    // A token works once.
    let url = exec_url(&mut rt, &id, sh("echo once"), false, false, false)
        .await
        .unwrap();
    let run = |url: String| async move {
        let (o, oh) = sink();
        let r = remote_command(
            &url,
            &RemoteCommandOptions::new(Transport::Spdy, false),
            ClientStdio {
                stdout: Some(o),
                ..Default::default()
            },
        )
        .await;
        (r, oh.await.unwrap())
    };
    let (r, out) = run(url.clone()).await;
    assert_eq!(r.expect("first use").exit_code, 0);
    assert_eq!(out, "once\n");
    match run(url).await.0 {
        Err(ClientError::Upgrade { status, body }) => {
            assert_eq!(status.as_u16(), 404, "{body}")
        }
        other => panic!("reused token: {other:?}"),
    }
    // An expired token.
    let url = exec_url(&mut rt, &id, sh("echo late"), false, false, false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    match run(url).await.0 {
        Err(ClientError::Upgrade { status, body }) => {
            assert_eq!(status.as_u16(), 404);
            assert!(
                body.contains("expired") || body.contains("unknown"),
                "{body}"
            );
        }
        other => panic!("expired token: {other:?}"),
    }

    // Clients that vanish mid-stream, over both transports: the process loses its stdin
    // and exits, its exec record and FIFOs go, crustd goes on.
    for t in TRANSPORTS {
        let url = exec_url(&mut rt, &id, vec!["/bin/cat".into()], false, true, false)
            .await
            .unwrap();
        let (url, cut) = relay(&url).await;
        let (mut input, client_in) = tokio::io::duplex(4096);
        let (out_w, mut out_r) = tokio::io::duplex(4096);
        let session = tokio::spawn(async move {
            remote_command(
                &url,
                &RemoteCommandOptions::new(t, false),
                ClientStdio {
                    stdin: Some(Box::new(client_in)),
                    stdout: Some(Box::new(out_w)),
                    ..Default::default()
                },
            )
            .await
        });
        input.write_all(b"hello\n").await.unwrap();
        let mut buf = [0u8; 6];
        tokio::time::timeout(Duration::from_secs(10), out_r.read_exact(&mut buf))
            .await
            .expect("echo")
            .unwrap();
        cut.abort();
        let _ = cut.await;
        let _ = session.await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (ps, _) = pods::exec(&mut rt, &id, "busybox ps -o comm").await;
            if !ps.lines().any(|l| l.trim() == "cat") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{t:?}: cat still runs:\n{ps}\n{}",
                d.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A tty session that vanishes: the exec's FIFOs are gone anyway.
    let url = exec_url(&mut rt, &id, sh("busybox sleep 2"), true, true, false)
        .await
        .unwrap();
    let (url, cut) = relay(&url).await;
    let (_input, client_in) = tokio::io::duplex(64);
    let (o, _oh) = sink();
    let session = tokio::spawn(async move {
        remote_command(
            &url,
            &RemoteCommandOptions::new(Transport::WebSocket, true),
            ClientStdio {
                stdin: Some(Box::new(client_in)),
                stdout: Some(o),
                ..Default::default()
            },
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cut.abort();
    let _ = cut.await;
    let _ = session.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_no_session_files(&d);

    // A malformed request to the streaming server itself.
    let url = exec_url(&mut rt, &id, sh("true"), false, false, false)
        .await
        .unwrap();
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /exec/not-a-token HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut resp = vec![0u8; 512];
    let n = tcp.read(&mut resp).await.unwrap();
    assert!(
        String::from_utf8_lossy(&resp[..n]).starts_with("HTTP/1.1 404"),
        "{}",
        String::from_utf8_lossy(&resp[..n])
    );

    // crustd is still fine.
    let (out, code) = pods::exec(&mut rt, &id, "echo alive").await;
    assert_eq!((out.as_str(), code), ("alive\n", 0), "{}", d.log());
    assert!(d.pid().is_some());
}
