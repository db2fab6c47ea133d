"""crust-interop-python: a CRI client on PyPI's grpcio with default channel options (it sends
the %-encoded socket path as HTTP/2 :authority). CRI stubs are generated at test time from
the CRI api.proto with grpcio-tools into the directory given as --stubs. Runs a whole pod
lifecycle; each step prints "ok STEP" or "FAIL STEP: why", exit status 1 if any failed.

Run by crust's interop suite (e2e/tests/interop.rs); not a test of its own.
"""

import argparse
import queue
import struct
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--stubs", required=True)
    ap.add_argument("--image", default="")
    ap.add_argument("--log-dir", default="")
    ap.add_argument("--version-only", action="store_true")
    a = ap.parse_args()
    sys.path.insert(0, a.stubs)
    import grpc
    import v1_pb2 as pb
    import v1_pb2_grpc as pbg

    failed = []

    def step(name, fn):
        try:
            r = fn()
            print("ok " + name, flush=True)
            return r
        except Exception as e:  # noqa: BLE001 - every failure is reported by step
            detail = e.details() if isinstance(e, grpc.RpcError) else repr(e)
            code = e.code() if isinstance(e, grpc.RpcError) else ""
            print("FAIL %s: %s %s" % (name, code, detail), flush=True)
            failed.append(name)
            return None

    def must(name, fn):
        r = step(name, fn)
        if name in failed:
            sys.exit(1)
        return r

    def check(cond, what):
        if not cond:
            raise AssertionError(what)

    # Default channel options: grpcio picks the :authority itself.
    ch = grpc.insecure_channel("unix:" + a.socket)
    rt = pbg.RuntimeServiceStub(ch)
    im = pbg.ImageServiceStub(ch)
    T = 60

    def version():
        v = rt.Version(pb.VersionRequest(), timeout=T)
        check(v.runtime_name == "crust", "runtime name %r" % v.runtime_name)

    must("Version", version)
    if a.version_only:
        return

    def status():
        s = rt.Status(pb.StatusRequest(), timeout=T)
        check(len(s.status.conditions) > 0, "no conditions")

    step("Status", status)

    events = queue.Queue()
    ev_call = rt.GetContainerEvents(pb.GetEventsRequest())

    def pump():
        try:
            for e in ev_call:
                events.put(e)
        except grpc.RpcError:
            pass

    threading.Thread(target=pump, daemon=True).start()
    print("ok GetContainerEvents", flush=True)

    spec = pb.ImageSpec(image=a.image)
    ref = must("PullImage", lambda: im.PullImage(pb.PullImageRequest(image=spec), timeout=T).image_ref)

    def listed():
        return [i.id for i in im.ListImages(pb.ListImagesRequest(), timeout=T).images]

    step("ListImages", lambda: check(ref in listed(), "%s not listed" % ref))

    def image_status():
        s = im.ImageStatus(pb.ImageStatusRequest(image=spec), timeout=T)
        check(s.image.id == ref, "status %r" % s.image)

    step("ImageStatus", image_status)
    step("ImageFsInfo", lambda: check(len(im.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=T).image_filesystems) > 0, "none"))

    pod_cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="interop-py", uid="interop-py-uid", namespace="default"),
        log_directory=a.log_dir,
        linux=pb.LinuxPodSandboxConfig(),
    )
    pod = must("RunPodSandbox", lambda: rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_cfg), timeout=T).pod_sandbox_id)

    def pod_status():
        s = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod), timeout=T)
        check(s.status.state == pb.SANDBOX_READY, "state %r" % s.status.state)

    step("PodSandboxStatus", pod_status)

    def list_pods():
        r = rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(id=pod)), timeout=T)
        check(len(r.items) == 1, "%d pods" % len(r.items))

    step("ListPodSandbox", list_pods)

    cmd = "mkdir -p /www && echo interop-web > /www/index.html && echo started && exec httpd -f -p 8080 -h /www"
    cfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="web"),
        image=spec,
        command=["sh", "-c", cmd],
        log_path="web.log",
    )
    ctr = must(
        "CreateContainer",
        lambda: rt.CreateContainer(
            pb.CreateContainerRequest(pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), timeout=T
        ).container_id,
    )
    must("StartContainer", lambda: rt.StartContainer(pb.StartContainerRequest(container_id=ctr), timeout=T))

    def ctr_state():
        return rt.ContainerStatus(pb.ContainerStatusRequest(container_id=ctr), timeout=T).status.state

    step("ContainerStatus", lambda: check(ctr_state() == pb.CONTAINER_RUNNING, "state %r" % ctr_state()))

    def list_ctrs():
        r = rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod)), timeout=T)
        check(len(r.containers) == 1, "%d containers" % len(r.containers))

    step("ListContainers", list_ctrs)

    def exec_sync():
        r = rt.ExecSync(
            pb.ExecSyncRequest(container_id=ctr, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10),
            timeout=T,
        )
        check((r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 3), repr(r))

    step("ExecSync", exec_sync)

    url = step("Exec", lambda: rt.Exec(pb.ExecRequest(container_id=ctr, cmd=["echo", "via-exec-url"], stdout=True), timeout=T).url)
    if url:
        step("Exec URL (WebSocket v4.channel.k8s.io)", lambda: check(ws_exec(url) == b"via-exec-url\n", "stdout"))
    step("Attach", lambda: check("/attach/" in rt.Attach(pb.AttachRequest(container_id=ctr, stdout=True), timeout=T).url, "url"))
    url = step("PortForward", lambda: rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod, port=[8080]), timeout=T).url)
    if url:
        step("PortForward URL (WebSocket, HTTP GET through it)", lambda: check(b"interop-web" in ws_port_forward(url, 8080), "body"))

    def ctr_stats():
        s = rt.ContainerStats(pb.ContainerStatsRequest(container_id=ctr), timeout=T).stats
        check(s.HasField("cpu") and s.HasField("memory"), repr(s))

    step("ContainerStats", ctr_stats)
    step("ListContainerStats", lambda: check(len(rt.ListContainerStats(pb.ListContainerStatsRequest(), timeout=T).stats) > 0, "none"))

    def pod_stats():
        s = rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod), timeout=T).stats
        check(s.HasField("linux"), repr(s))

    step("PodSandboxStats", pod_stats)
    step("ListPodSandboxStats", lambda: check(len(rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest(), timeout=T).stats) > 0, "none"))

    step("StopContainer", lambda: rt.StopContainer(pb.StopContainerRequest(container_id=ctr, timeout=5), timeout=T))
    step("ContainerStatus after stop", lambda: check(ctr_state() == pb.CONTAINER_EXITED, "state %r" % ctr_state()))
    step("RemoveContainer", lambda: rt.RemoveContainer(pb.RemoveContainerRequest(container_id=ctr), timeout=T))
    step("StopPodSandbox", lambda: rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=T))
    step("RemovePodSandbox", lambda: rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=T))
    step("RemoveImage", lambda: im.RemoveImage(pb.RemoveImageRequest(image=spec), timeout=T))
    step("ListImages after remove", lambda: check(ref not in listed(), "still listed"))

    def container_events():
        want = {
            pb.CONTAINER_CREATED_EVENT,
            pb.CONTAINER_STARTED_EVENT,
            pb.CONTAINER_STOPPED_EVENT,
            pb.CONTAINER_DELETED_EVENT,
        }
        seen = set()
        deadline = time.time() + 10
        while seen != want and time.time() < deadline:
            try:
                e = events.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                break
            if e.container_id == ctr:
                seen.add(e.container_event_type)
        check(seen == want, "missing %r" % sorted(want - seen))

    step("container events", container_events)
    ev_call.cancel()
    if failed:
        sys.exit(1)


def ws_messages(url, first=None):
    """Opens a streaming URL as kubelet's WebSocket client does (v4.channel.k8s.io), sends
    `first` if given, and yields each binary message until the server closes."""
    import websocket  # websocket-client from PyPI

    ws = websocket.create_connection(
        url.replace("http", "ws", 1), subprotocols=["v4.channel.k8s.io"], timeout=20
    )
    try:
        if first is not None:
            ws.send_binary(first)
        while True:
            try:
                op, data = ws.recv_data()
            except websocket.WebSocketConnectionClosedException:
                return
            if op == websocket.ABNF.OPCODE_CLOSE:
                return
            if data:
                yield data
    finally:
        ws.close()


def ws_exec(url):
    """Runs an exec URL over kubelet's WebSocket protocol; returns stdout."""
    out, status = b"", b""
    for data in ws_messages(url):
        if data[0] == 1:
            out += data[1:]
        elif data[0] == 3:
            status += data[1:]
    if b"Success" not in status:
        raise AssertionError("status %r" % status)
    return out


def ws_port_forward(url, port):
    """Sends an HTTP GET through a port-forward URL; returns the reply."""
    body, opened = b"", set()
    for data in ws_messages(url, b"\x00GET / HTTP/1.0\r\n\r\n"):
        ch, data = data[0], data[1:]
        if ch not in opened:
            opened.add(ch)
            if len(data) < 2 or struct.unpack("<H", data[:2])[0] != port:
                raise AssertionError("channel %d opened with %r" % (ch, data))
            data = data[2:]
        if ch == 0:
            body += data
        elif ch == 1 and data:
            raise AssertionError("port-forward error %r" % data)
    return body


if __name__ == "__main__":
    main()
