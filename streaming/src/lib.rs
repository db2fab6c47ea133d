//! Kubernetes streaming protocols for the CRI streaming server: SPDY/3.1 framing, remotecommand and portforward over SPDY and WebSocket.
