//! A scriptable fake registry for bad-input tests: serves fixed manifests and blobs over
//! HTTP/1.1 on a loopback port, whatever their content (wrong digests, truncated bodies,
//! unknown media types), which a real registry would refuse to store.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: content type, body, and the Content-Length to announce.
#[derive(Clone)]
pub struct Reply {
    /// Content-Type.
    pub content_type: String,
    /// Body bytes sent.
    pub body: Vec<u8>,
    /// Content-Length announced (defaults to the body length).
    pub length: Option<usize>,
    /// Whether a `Range: bytes=N-` request gets 206 and the body from N (as a real
    /// registry answers blob requests) rather than 200 and all of it.
    pub ranges: bool,
}

/// The fake registry; stops when dropped.
pub struct Fake {
    /// Port on 127.0.0.1.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    /// Serves `routes` (URL path → reply); anything else is 404 with an OCI error body.
    pub async fn start(routes: HashMap<String, Reply>) -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        let port = l.local_addr().expect("addr").port();
        let routes = Arc::new(routes);
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            buf.drain(..end + 4);
                            let range_start = head
                                .lines()
                                .filter_map(|l| l.split_once(':'))
                                .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
                                .and_then(|(_, v)| v.trim().strip_prefix("bytes="))
                                .and_then(|v| v.strip_suffix('-'))
                                .and_then(|n| n.parse::<usize>().ok());
                            let path = head
                                .split_whitespace()
                                .nth(1)
                                .unwrap_or("/")
                                .split('?')
                                .next()
                                .unwrap_or("/")
                                .to_string();
                            let reply = if path == "/v2/" {
                                Some(Reply {
                                    content_type: "application/json".into(),
                                    body: b"{}".to_vec(),
                                    length: None,
                                    ranges: false,
                                })
                            } else {
                                routes.get(&path).cloned()
                            };
                            let (status, mut r) = match reply {
                                Some(r) => ("200 OK", r),
                                None => ("404 Not Found", Reply {
                                    content_type: "application/json".into(),
                                    body: br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#.to_vec(),
                                    length: None,
                                    ranges: false,
                                }),
                            };
                            let mut extra = String::new();
                            let status = match range_start {
                                Some(n) if r.ranges && n < r.body.len() => {
                                    let total = r.length.unwrap_or(r.body.len());
                                    extra = format!(
                                        "Content-Range: bytes {n}-{}/{total}\r\n",
                                        total - 1
                                    );
                                    r.body.drain(..n);
                                    r.length = r.length.map(|l| l - n);
                                    "206 Partial Content"
                                }
                                _ => status,
                            };
                            let head = format!(
                                "HTTP/1.1 {status}\r\nContent-Type: {}\r\n{extra}Content-Length: {}\r\n\r\n",
                                r.content_type,
                                r.length.unwrap_or(r.body.len())
                            );
                            if s.write_all(head.as_bytes()).await.is_err()
                                || s.write_all(&r.body).await.is_err()
                            {
                                return;
                            }
                            if r.length.is_some_and(|l| l != r.body.len()) {
                                return; // truncated: close the connection
                            }
                        }
                    }
                });
            }
        });
        Self { port, task }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Routes serving `img` as `repo:tag` (and by digest), with `tweak` applied to the blobs.
pub fn routes_for(repo: &str, tag: &str, img: &crate::image::Image) -> HashMap<String, Reply> {
    let mut m = HashMap::new();
    let man = Reply {
        content_type: img.media_type.clone(),
        body: img.manifest.clone(),
        length: None,
        ranges: false,
    };
    m.insert(format!("/v2/{repo}/manifests/{tag}"), man.clone());
    m.insert(format!("/v2/{repo}/manifests/{}", img.manifest_digest), man);
    for (d, data) in &img.blobs {
        m.insert(
            format!("/v2/{repo}/blobs/{d}"),
            Reply {
                content_type: "application/octet-stream".into(),
                body: data.clone(),
                length: None,
                ranges: true,
            },
        );
    }
    m
}
