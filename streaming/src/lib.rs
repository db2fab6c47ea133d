//! Kubernetes streaming protocols for the CRI streaming server: SPDY/3.1 framing,
//! remotecommand (exec, attach) and portforward over SPDY and WebSocket, a token cache, an
//! HTTP server that serves `/exec/{token}`, `/attach/{token}`, `/portforward/{token}` on top
//! of a [`StreamingBackend`], and the matching client.

pub mod spdy;
