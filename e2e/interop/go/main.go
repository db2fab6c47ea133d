// crust-interop-go: a CRI client built from Debian's grpc-go (golang-google-grpc-dev) and
// CRI stubs generated at test time from the CRI api.proto with Debian's protoc,
// protoc-gen-go and protoc-gen-go-grpc. It dials the way kubelet 1.26 and crictl 1.26 do
// (-dial path: the bare socket path as the target with a custom unix dialer, so the path
// becomes the HTTP/2 :authority), or with a "unix://" target (-dial unix), and runs a whole
// pod lifecycle with default client settings. Each step prints "ok STEP" or "FAIL STEP: why";
// the exit status is 1 if any step failed.
//
// Built and run by crust's interop suite (e2e/tests/interop.rs); not a test of its own.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	pb "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	socket  = flag.String("socket", "", "CRI socket path")
	dialAs  = flag.String("dial", "path", "path (kubelet 1.26: bare path + unix dialer) or unix (unix:// target)")
	image   = flag.String("image", "", "image to pull, run and remove")
	logDir  = flag.String("log-dir", "", "directory for the pod's container logs")
	onlyVer = flag.Bool("version-only", false, "call Version and exit")
	failed  = false
)

func step(name string, err error) bool {
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		failed = true
		return false
	}
	fmt.Printf("ok %s\n", name)
	return true
}

func must(name string, err error) {
	if !step(name, err) {
		os.Exit(1)
	}
}

func dial(ctx context.Context) (*grpc.ClientConn, error) {
	switch *dialAs {
	case "path":
		// kubelet 1.26 (util.GetAddressAndDialer) and crictl 1.26: the target is the
		// socket path itself and a dialer connects to it.
		return grpc.DialContext(ctx, *socket, grpc.WithInsecure(), grpc.WithBlock(),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", addr)
			}))
	case "unix":
		return grpc.DialContext(ctx, "unix://"+*socket, grpc.WithInsecure(), grpc.WithBlock())
	}
	return nil, fmt.Errorf("unknown -dial %q", *dialAs)
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

func main() {
	flag.Parse()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	conn, err := dial(c)
	cancel()
	must("dial", err)
	defer conn.Close()
	rt := pb.NewRuntimeServiceClient(conn)
	im := pb.NewImageServiceClient(conn)

	c, cancel = ctx()
	v, err := rt.Version(c, &pb.VersionRequest{})
	cancel()
	if err == nil && v.RuntimeName != "crust" {
		err = fmt.Errorf("runtime name %q", v.RuntimeName)
	}
	must("Version", err)
	if *onlyVer {
		return
	}
	run(rt, im)
	if failed {
		os.Exit(1)
	}
}

func run(rt pb.RuntimeServiceClient, im pb.ImageServiceClient) {
	c, cancel := ctx()
	defer cancel()
	st, err := rt.Status(c, &pb.StatusRequest{})
	if err == nil && (st.Status == nil || len(st.Status.Conditions) == 0) {
		err = fmt.Errorf("no conditions")
	}
	step("Status", err)

	// Container events, streamed for the whole run (server streaming RPC).
	evCtx, evCancel := context.WithCancel(context.Background())
	defer evCancel()
	events := make(chan *pb.ContainerEventResponse, 64)
	evStream, err := rt.GetContainerEvents(evCtx, &pb.GetEventsRequest{})
	step("GetContainerEvents", err)
	if err == nil {
		go func() {
			for {
				e, err := evStream.Recv()
				if err != nil {
					close(events)
					return
				}
				events <- e
			}
		}()
	}

	// Images.
	spec := &pb.ImageSpec{Image: *image}
	p, err := im.PullImage(c, &pb.PullImageRequest{Image: spec})
	must("PullImage", err)
	ref := p.ImageRef
	li, err := im.ListImages(c, &pb.ListImagesRequest{})
	if err == nil && !hasImage(li.Images, ref) {
		err = fmt.Errorf("%s not listed", ref)
	}
	step("ListImages", err)
	is, err := im.ImageStatus(c, &pb.ImageStatusRequest{Image: spec})
	if err == nil && (is.Image == nil || is.Image.Id != ref) {
		err = fmt.Errorf("status %v, want id %s", is.Image, ref)
	}
	step("ImageStatus", err)
	fs, err := im.ImageFsInfo(c, &pb.ImageFsInfoRequest{})
	if err == nil && len(fs.ImageFilesystems) == 0 {
		err = fmt.Errorf("no image filesystems")
	}
	step("ImageFsInfo", err)

	// Pod.
	podCfg := &pb.PodSandboxConfig{
		Metadata:     &pb.PodSandboxMetadata{Name: "interop-go", Uid: "interop-go-uid", Namespace: "default"},
		LogDirectory: *logDir,
		Linux:        &pb.LinuxPodSandboxConfig{},
	}
	rp, err := rt.RunPodSandbox(c, &pb.RunPodSandboxRequest{Config: podCfg})
	must("RunPodSandbox", err)
	pod := rp.PodSandboxId
	ps, err := rt.PodSandboxStatus(c, &pb.PodSandboxStatusRequest{PodSandboxId: pod})
	if err == nil && ps.Status.State != pb.PodSandboxState_SANDBOX_READY {
		err = fmt.Errorf("state %v", ps.Status.State)
	}
	step("PodSandboxStatus", err)
	lp, err := rt.ListPodSandbox(c, &pb.ListPodSandboxRequest{Filter: &pb.PodSandboxFilter{Id: pod}})
	if err == nil && len(lp.Items) != 1 {
		err = fmt.Errorf("%d pods listed", len(lp.Items))
	}
	step("ListPodSandbox", err)

	// Container: busybox httpd on 8080, serving one file.
	cc, err := rt.CreateContainer(c, &pb.CreateContainerRequest{
		PodSandboxId: pod,
		Config: &pb.ContainerConfig{
			Metadata: &pb.ContainerMetadata{Name: "web"},
			Image:    spec,
			Command:  []string{"sh", "-c", "mkdir -p /www && echo interop-web > /www/index.html && echo started && exec httpd -f -p 8080 -h /www"},
			LogPath:  "web.log",
		},
		SandboxConfig: podCfg,
	})
	must("CreateContainer", err)
	ctr := cc.ContainerId
	_, err = rt.StartContainer(c, &pb.StartContainerRequest{ContainerId: ctr})
	must("StartContainer", err)
	cs, err := rt.ContainerStatus(c, &pb.ContainerStatusRequest{ContainerId: ctr})
	if err == nil && cs.Status.State != pb.ContainerState_CONTAINER_RUNNING {
		err = fmt.Errorf("state %v", cs.Status.State)
	}
	step("ContainerStatus", err)
	lc, err := rt.ListContainers(c, &pb.ListContainersRequest{Filter: &pb.ContainerFilter{PodSandboxId: pod}})
	if err == nil && len(lc.Containers) != 1 {
		err = fmt.Errorf("%d containers listed", len(lc.Containers))
	}
	step("ListContainers", err)

	es, err := rt.ExecSync(c, &pb.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Timeout: 10})
	if err == nil && (string(es.Stdout) != "out\n" || string(es.Stderr) != "err\n" || es.ExitCode != 3) {
		err = fmt.Errorf("got stdout %q stderr %q exit %d", es.Stdout, es.Stderr, es.ExitCode)
	}
	step("ExecSync", err)

	// Streaming: Exec and PortForward URLs used over WebSocket; Attach URL requested.
	ex, err := rt.Exec(c, &pb.ExecRequest{ContainerId: ctr, Cmd: []string{"echo", "via-exec-url"}, Stdout: true})
	if step("Exec", err) {
		out, err := wsExec(ex.Url)
		if err == nil && out != "via-exec-url\n" {
			err = fmt.Errorf("stdout %q", out)
		}
		step("Exec URL (WebSocket v4.channel.k8s.io)", err)
	}
	at, err := rt.Attach(c, &pb.AttachRequest{ContainerId: ctr, Stdout: true})
	if err == nil && !strings.Contains(at.Url, "/attach/") {
		err = fmt.Errorf("url %q", at.Url)
	}
	step("Attach", err)
	pf, err := rt.PortForward(c, &pb.PortForwardRequest{PodSandboxId: pod, Port: []int32{8080}})
	if step("PortForward", err) {
		body, err := wsPortForward(pf.Url, 8080)
		if err == nil && !strings.Contains(body, "interop-web") {
			err = fmt.Errorf("response %q", body)
		}
		step("PortForward URL (WebSocket, HTTP GET through it)", err)
	}

	// Stats.
	cst, err := rt.ContainerStats(c, &pb.ContainerStatsRequest{ContainerId: ctr})
	if err == nil && (cst.Stats == nil || cst.Stats.Memory == nil || cst.Stats.Cpu == nil) {
		err = fmt.Errorf("stats %v", cst.Stats)
	}
	step("ContainerStats", err)
	lcs, err := rt.ListContainerStats(c, &pb.ListContainerStatsRequest{})
	if err == nil && len(lcs.Stats) == 0 {
		err = fmt.Errorf("no stats")
	}
	step("ListContainerStats", err)
	pst, err := rt.PodSandboxStats(c, &pb.PodSandboxStatsRequest{PodSandboxId: pod})
	if err == nil && (pst.Stats == nil || pst.Stats.Linux == nil) {
		err = fmt.Errorf("stats %v", pst.Stats)
	}
	step("PodSandboxStats", err)
	lps, err := rt.ListPodSandboxStats(c, &pb.ListPodSandboxStatsRequest{})
	if err == nil && len(lps.Stats) == 0 {
		err = fmt.Errorf("no stats")
	}
	step("ListPodSandboxStats", err)

	// Teardown.
	_, err = rt.StopContainer(c, &pb.StopContainerRequest{ContainerId: ctr, Timeout: 5})
	step("StopContainer", err)
	cs, err = rt.ContainerStatus(c, &pb.ContainerStatusRequest{ContainerId: ctr})
	if err == nil && cs.Status.State != pb.ContainerState_CONTAINER_EXITED {
		err = fmt.Errorf("state %v", cs.Status.State)
	}
	step("ContainerStatus after stop", err)
	_, err = rt.RemoveContainer(c, &pb.RemoveContainerRequest{ContainerId: ctr})
	step("RemoveContainer", err)
	_, err = rt.StopPodSandbox(c, &pb.StopPodSandboxRequest{PodSandboxId: pod})
	step("StopPodSandbox", err)
	_, err = rt.RemovePodSandbox(c, &pb.RemovePodSandboxRequest{PodSandboxId: pod})
	step("RemovePodSandbox", err)
	_, err = im.RemoveImage(c, &pb.RemoveImageRequest{Image: spec})
	step("RemoveImage", err)
	li, err = im.ListImages(c, &pb.ListImagesRequest{})
	if err == nil && hasImage(li.Images, ref) {
		err = fmt.Errorf("%s still listed", ref)
	}
	step("ListImages after remove", err)

	// Events seen for our container: created, started, stopped, deleted.
	want := []pb.ContainerEventType{pb.ContainerEventType_CONTAINER_CREATED_EVENT,
		pb.ContainerEventType_CONTAINER_STARTED_EVENT, pb.ContainerEventType_CONTAINER_STOPPED_EVENT,
		pb.ContainerEventType_CONTAINER_DELETED_EVENT}
	seen := map[pb.ContainerEventType]bool{}
	deadline := time.After(10 * time.Second)
collect:
	for len(seen) < len(want) {
		select {
		case e, ok := <-events:
			if !ok {
				break collect
			}
			if e.ContainerId == ctr {
				seen[e.ContainerEventType] = true
			}
		case <-deadline:
			break collect
		}
	}
	var missing []string
	for _, w := range want {
		if !seen[w] {
			missing = append(missing, w.String())
		}
	}
	err = nil
	if len(missing) > 0 {
		err = fmt.Errorf("missing %v", missing)
	}
	step("container events", err)
}

func hasImage(images []*pb.Image, id string) bool {
	for _, i := range images {
		if i.Id == id {
			return true
		}
	}
	return false
}

// wsDial opens a streaming URL as kubelet's WebSocket client does (v4.channel.k8s.io).
func wsDial(raw string) (*websocket.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	d := websocket.Dialer{Subprotocols: []string{"v4.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial(u.String(), nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	return ws, nil
}

// wsExec runs an exec URL over kubelet's WebSocket protocol and returns its stdout.
func wsExec(raw string) (string, error) {
	ws, err := wsDial(raw)
	if err != nil {
		return "", err
	}
	defer ws.Close()
	var stdout bytes.Buffer
	status := ""
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) || err == io.EOF {
				break
			}
			return stdout.String(), fmt.Errorf("read: %v (stdout %q)", err, stdout.String())
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case 1:
			stdout.Write(msg[1:])
		case 3:
			status += string(msg[1:])
		}
	}
	if !strings.Contains(status, "Success") {
		return stdout.String(), fmt.Errorf("status %q", status)
	}
	return stdout.String(), nil
}

// wsPortForward sends an HTTP GET through a port-forward URL and returns the reply.
func wsPortForward(raw string, port uint16) (string, error) {
	ws, err := wsDial(raw)
	if err != nil {
		return "", err
	}
	defer ws.Close()
	req := []byte("\x00GET / HTTP/1.0\r\n\r\n")
	if err := ws.WriteMessage(websocket.BinaryMessage, req); err != nil {
		return "", err
	}
	var body bytes.Buffer
	opened := map[byte]bool{}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			break
		}
		if len(msg) == 0 {
			continue
		}
		ch, data := msg[0], msg[1:]
		if !opened[ch] {
			// Each channel starts with its port, two bytes little-endian.
			opened[ch] = true
			if len(data) < 2 || binary.LittleEndian.Uint16(data) != port {
				return "", fmt.Errorf("channel %d opened with %v", ch, data)
			}
			data = data[2:]
		}
		switch ch {
		case 0:
			body.Write(data)
		case 1:
			if len(data) > 0 {
				return body.String(), fmt.Errorf("port-forward error %q", data)
			}
		}
	}
	return body.String(), nil
}
