// A remotecommand v4 client built on moby/spdystream (the SPDY library kubelet, kubectl and
// crictl use), to check crust-streaming's server against the real thing.
// Usage: spdy_client exec <url-path> <host:port> <stdin-text>
//        spdy_client portforward <url-path> <host:port> <port> <data>
// Prints one JSON object: exec: stdout, stderr, error (the error stream), protocol;
// portforward: data (what came back), error, protocol.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/moby/spdystream"
)

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	mode, path, addr := os.Args[1], os.Args[2], os.Args[3]
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		fail("dial: %v", err)
	}
	protocols := "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io\r\n"
	if mode == "portforward" {
		protocols = "X-Stream-Protocol-Version: portforward.k8s.io\r\n"
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n%s\r\n", path, addr, protocols)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		fail("response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		fail("status %d", resp.StatusCode)
	}
	sc, err := spdystream.NewConnection(&bufConn{conn, br}, false)
	if err != nil {
		fail("spdy: %v", err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	if mode == "portforward" {
		portForward(sc, resp.Header.Get("X-Stream-Protocol-Version"), os.Args[4], os.Args[5])
		return
	}
	input := os.Args[4]
	open := func(kind string) *spdystream.Stream {
		h := http.Header{}
		h.Set("streamType", kind)
		s, err := sc.CreateStream(h, nil, false)
		if err != nil {
			fail("create %s: %v", kind, err)
		}
		if err := s.Wait(); err != nil {
			fail("wait %s: %v", kind, err)
		}
		return s
	}
	errS, stdin, stdout, stderr := open("error"), open("stdin"), open("stdout"), open("stderr")
	var wg sync.WaitGroup
	out := map[string]string{"protocol": resp.Header.Get("X-Stream-Protocol-Version")}
	var mu sync.Mutex
	for name, s := range map[string]*spdystream.Stream{"stdout": stdout, "stderr": stderr, "error": errS} {
		wg.Add(1)
		go func(name string, s *spdystream.Stream) {
			defer wg.Done()
			b, _ := io.ReadAll(s)
			mu.Lock()
			out[name] = string(b)
			mu.Unlock()
		}(name, s)
	}
	if _, err := stdin.Write([]byte(input)); err != nil {
		fail("write stdin: %v", err)
	}
	stdin.Close()
	wg.Wait()
	sc.Close()
	json.NewEncoder(os.Stdout).Encode(out)
}

// portForward does what client-go's portforward does for one connection.
func portForward(sc *spdystream.Connection, protocol, port, data string) {
	open := func(kind string) *spdystream.Stream {
		h := http.Header{}
		h.Set("streamType", kind)
		h.Set("port", port)
		h.Set("requestID", "0")
		s, err := sc.CreateStream(h, nil, false)
		if err != nil {
			fail("create %s: %v", kind, err)
		}
		if err := s.Wait(); err != nil {
			fail("wait %s: %v", kind, err)
		}
		return s
	}
	errS := open("error")
	errS.Close() // client-go never writes to the error stream
	dataS := open("data")
	errCh := make(chan string)
	go func() {
		b, _ := io.ReadAll(errS)
		errCh <- string(b)
	}()
	if _, err := dataS.Write([]byte(data)); err != nil {
		fail("write data: %v", err)
	}
	back, _ := io.ReadAll(dataS)
	dataS.Close()
	out := map[string]string{"protocol": protocol, "data": string(back), "error": <-errCh}
	sc.Close()
	json.NewEncoder(os.Stdout).Encode(out)
}
