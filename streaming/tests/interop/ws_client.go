// A remotecommand v5 WebSocket client on gorilla/websocket (the library client-go's
// websocket executor uses), to check crust-streaming's server against it.
// Usage: ws_client <ws-url> <stdin-text>
// Prints one JSON object: stdout, stderr, error, protocol.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/gorilla/websocket"
)

func main() {
	url, input := os.Args[1], os.Args[2]
	dialer := websocket.Dialer{Subprotocols: []string{"v5.channel.k8s.io", "v4.channel.k8s.io"}}
	conn, resp, err := dialer.Dial(url, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial: %v\n", err)
		os.Exit(1)
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, append([]byte{0}, input...)); err != nil {
		fmt.Fprintf(os.Stderr, "stdin: %v\n", err)
		os.Exit(1)
	}
	// v5: close stdin.
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte{255, 0}); err != nil {
		fmt.Fprintf(os.Stderr, "close stdin: %v\n", err)
		os.Exit(1)
	}
	streams := map[byte][]byte{}
	closeCode := -1
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				closeCode = ce.Code
			}
			break
		}
		if len(msg) > 0 {
			streams[msg[0]] = append(streams[msg[0]], msg[1:]...)
		}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"protocol": resp.Header.Get("Sec-WebSocket-Protocol"),
		"stdout":   string(streams[1]),
		"stderr":   string(streams[2]),
		"error":    string(streams[3]),
		"close":    closeCode,
	})
}
