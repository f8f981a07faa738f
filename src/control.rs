//! The control socket: a Unix stream socket in the workspace (mode 0600) on which the running
//! daemon answers one JSON request per connection with one JSON line. The server side hands each
//! request to the runtime; the client side is what `keepserver status` and `keepserver notify` use.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, warn};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::keepalived::KeepalivedEvent;

/// A request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// The status snapshot.
    Status,
    /// A keepalived notify hook fired (`keepserver notify`); answered as soon as it is received.
    Notify(KeepalivedEvent),
}

/// A request received by the server, with the way back to its client.
#[derive(Debug)]
pub struct Incoming {
    /// What was asked.
    pub request: Request,
    /// Where the answer goes (one JSON value).
    pub reply: oneshot::Sender<serde_json::Value>,
}

/// Why talking to the control socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be created.
    #[error("cannot create control socket {}: {source}", path.display())]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The daemon could not be reached or did not answer.
    #[error("cannot talk to the daemon on {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The daemon's answer was not JSON.
    #[error("the daemon's answer on {} is not JSON: {source}", path.display())]
    BadAnswer {
        /// The socket path.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// The longest request read; keepserver's own are a few hundred bytes.
const MAX_REQUEST: u64 = 64 * 1024;

/// How long a client waits for the daemon.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the socket at `path` (replacing a leftover file: we hold the pidfile lock, so no
/// other instance owns it) with mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let err = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

/// Accepts connections until `to_runtime` is closed, forwarding each request.
pub async fn serve(listener: UnixListener, to_runtime: mpsc::UnboundedSender<Incoming>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("control socket accept failed error=\"{e}\"");
                continue;
            }
        };
        let to_runtime = to_runtime.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, to_runtime).await {
                debug!("control connection ended error=\"{e}\"");
            }
        });
    }
}

async fn answer(
    stream: tokio::net::UnixStream,
    to_runtime: mpsc::UnboundedSender<Incoming>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    AsyncBufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let reply = match parse_request(&line) {
        Ok(request) => {
            let (tx, rx) = oneshot::channel();
            if to_runtime.send(Incoming { request, reply: tx }).is_err() {
                return Ok(());
            }
            rx.await
                .unwrap_or_else(|_| serde_json::json!({"error": "daemon is shutting down"}))
        }
        Err(e) => serde_json::json!({ "error": e }),
    };
    let mut text = reply.to_string();
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

/// Parses one request line as a client sent it (its newline may still be there). The error is
/// the text of the answer's `error` field.
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line).map_err(|e| format!("bad request: {e}"))
}

/// Sends `request` to the daemon listening on `path` and returns its answer.
pub fn request(path: &Path, request: &Request) -> Result<serde_json::Value, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(io)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    let mut text = serde_json::to_string(request).map_err(|source| ControlError::BadAnswer {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    stream.write_all(text.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|source| ControlError::BadAnswer {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sock");
        std::fs::write(&path, "leftover").unwrap();
        let listener = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(serve(listener, tx));
        tokio::spawn(async move {
            while let Some(incoming) = rx.recv().await {
                assert_eq!(incoming.request, Request::Status);
                let _ = incoming.reply.send(serde_json::json!({"role": "MASTER"}));
            }
        });
        let p = path.clone();
        let answer = tokio::task::spawn_blocking(move || request(&p, &Request::Status))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer["role"], "MASTER");
        let p = path.clone();
        let bad = tokio::task::spawn_blocking(move || {
            let mut s = UnixStream::connect(&p).unwrap();
            s.write_all(b"{\"cmd\":\"explode\"}\n").unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        assert!(bad.contains("bad request"), "{bad}");
    }

    #[test]
    fn requests_parse_with_their_newline_and_bad_ones_say_why() {
        assert_eq!(parse_request("{\"cmd\":\"status\"}\n"), Ok(Request::Status));
        for bad in ["", "{\"cmd\":\"explode\"}", "{\"cmd\":\"notify\"}", "[1]"] {
            let error = parse_request(bad).expect_err(bad);
            assert!(error.starts_with("bad request: "), "{bad:?}: {error}");
        }
    }

    #[test]
    fn notify_is_one_json_line_with_the_event_inline() {
        let event =
            crate::keepalived::parse_notify_args(&["INSTANCE", "VI_1", "FAULT", "90"]).unwrap();
        let text = serde_json::to_string(&Request::Notify(event.clone())).unwrap();
        assert_eq!(
            text,
            r#"{"cmd":"notify","instance":{"kind":"INSTANCE","name":"VI_1"},"state":"FAULT","priority":90}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(&text).unwrap(),
            Request::Notify(event)
        );
    }
}
