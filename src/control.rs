//! The control socket: a Unix stream socket in the workspace (mode 0600) on which the running
//! daemon answers one JSON request per connection with one JSON line. The server side hands each
//! request to the runtime; the client side is what `keepserver status`, `reload` and `notify`
//! use.
//!
//! The protocol is typed and versioned: a request is `{"version": N, "cmd": ...}` ([`Request`]),
//! an answer is `{"version": N, ...}` with the fields of the [`Answer`] (the [`Snapshot`] for
//! `status`), or `{"version": N, "error": "..."}`. Each side checks the other's version
//! ([`PROTOCOL`]) before reading anything else, so a client and a daemon from different
//! keepservers say so ([`ControlError::Protocol`]) instead of misreading each other; a request
//! without a version (a keepserver from before the protocol was versioned) gets an error answer
//! saying why.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, warn};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::keepalived::KeepalivedEvent;
use crate::snapshot::Snapshot;
use crate::supervisor::Role;

/// The control protocol this keepserver speaks. Bumped whenever a request or an answer changes
/// in a way the other side would misread.
pub const PROTOCOL: u32 = 1;

/// A request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The client's control protocol ([`PROTOCOL`]).
    pub version: u32,
    /// What it asks.
    #[serde(flatten)]
    pub command: Command,
}

impl Request {
    /// `command` in this keepserver's protocol.
    pub fn new(command: Command) -> Self {
        Request {
            version: PROTOCOL,
            command,
        }
    }
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Command {
    /// The status snapshot.
    Status,
    /// A keepalived notify hook fired (`keepserver notify`); answered as soon as it is received.
    Notify(KeepalivedEvent),
}

/// The daemon's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// To [`Command::Status`].
    Status(Box<Snapshot>),
    /// To [`Command::Notify`].
    Notified(Notified),
    /// The request was not carried out, and why.
    Refused(String),
}

/// The answer to a notify: the event was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notified {
    /// The role keepserver acts on now (the VIP is re-read at once after the event).
    pub role: Role,
}

/// An answer on the wire: the version, then the answer's own fields.
#[derive(Serialize)]
struct Wire<'a, T: Serialize> {
    version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// A refusal's fields.
#[derive(Serialize)]
struct Refusal<'a> {
    error: &'a str,
}

impl Answer {
    /// The answer as one JSON line, newline included.
    pub fn to_line(&self) -> String {
        fn line<T: Serialize>(body: &T) -> String {
            let wire = Wire {
                version: PROTOCOL,
                body,
            };
            serde_json::to_string(&wire).unwrap_or_else(|e| {
                format!(r#"{{"version":{PROTOCOL},"error":"cannot write the answer: {e}"}}"#)
            })
        }
        let mut text = match self {
            Answer::Status(snapshot) => line(snapshot),
            Answer::Notified(notified) => line(notified),
            Answer::Refused(error) => line(&Refusal { error }),
        };
        text.push('\n');
        text
    }
}

/// A request received by the server, with the way back to its client.
#[derive(Debug)]
pub struct Incoming {
    /// What was asked.
    pub command: Command,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Answer>,
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
    /// The daemon speaks another control protocol (`None`: one from before it was versioned).
    #[error("{}", protocol_mismatch(*daemon))]
    Protocol {
        /// The daemon's protocol version, if it gave one.
        daemon: Option<u32>,
    },
    /// The daemon's answer could not be read.
    #[error("the daemon's answer on {} cannot be read as control protocol {PROTOCOL}: {reason}", path.display())]
    BadAnswer {
        /// The socket path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The daemon answered with an error.
    #[error("the daemon refused the request: {0}")]
    Refused(String),
}

/// What a client says when the daemon's protocol is not its own.
fn protocol_mismatch(daemon: Option<u32>) -> String {
    match daemon {
        None => format!(
            "the running daemon speaks the unversioned control protocol of an older keepserver, \
             this keepserver speaks control protocol {PROTOCOL}: restart the daemon"
        ),
        Some(v) if v < PROTOCOL => format!(
            "the running daemon speaks control protocol {v}, this keepserver speaks \
             {PROTOCOL}: restart the daemon"
        ),
        Some(v) => format!(
            "the running daemon speaks control protocol {v}, this keepserver speaks \
             {PROTOCOL}: use the keepserver binary the daemon was started from"
        ),
    }
}

/// The longest request read; keepserver's own are a few hundred bytes.
const MAX_REQUEST: u64 = 64 * 1024;

/// How long a client waits for the daemon (a status asks bgpd, within 2 s).
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
    let answer = match parse_request(&line) {
        Ok(command) => {
            let (tx, rx) = oneshot::channel();
            if to_runtime.send(Incoming { command, reply: tx }).is_err() {
                return Ok(());
            }
            rx.await
                .unwrap_or_else(|_| Answer::Refused("daemon is shutting down".into()))
        }
        Err(e) => Answer::Refused(e),
    };
    write.write_all(answer.to_line().as_bytes()).await
}

/// The version field alone, read before the rest of a request or an answer.
#[derive(Deserialize)]
struct Version {
    version: Option<u32>,
}

/// Parses one request line as a client sent it (its newline may still be there). The error is
/// the text of the answer's `error` field; a request in another protocol says so.
pub fn parse_request(line: &str) -> Result<Command, String> {
    let bad = |e: serde_json::Error| format!("bad request: {e}");
    match serde_json::from_str::<Version>(line).map_err(bad)?.version {
        Some(PROTOCOL) => {}
        Some(v) => {
            return Err(format!(
                "the client speaks control protocol {v}, this daemon speaks {PROTOCOL}: use the \
                 keepserver binary the daemon was started from, or restart the daemon with this one"
            ));
        }
        None => {
            return Err(format!(
                "the request has no control protocol version: it comes from a keepserver older \
                 than this daemon, which speaks control protocol {PROTOCOL}; use the keepserver \
                 binary the daemon was started from"
            ));
        }
    }
    serde_json::from_str::<Request>(line)
        .map(|r| r.command)
        .map_err(bad)
}

/// Reads the daemon's answer `line` as a `T`, after its version and error (`path` is for the
/// messages).
pub fn parse_answer<T: DeserializeOwned>(path: &Path, line: &str) -> Result<T, ControlError> {
    let bad = |e: serde_json::Error| ControlError::BadAnswer {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    #[derive(Deserialize)]
    struct Head {
        #[serde(flatten)]
        version: Version,
        error: Option<String>,
    }
    let head: Head = serde_json::from_str(line).map_err(bad)?;
    match head.version.version {
        Some(PROTOCOL) => {}
        daemon => return Err(ControlError::Protocol { daemon }),
    }
    if let Some(error) = head.error {
        return Err(ControlError::Refused(error));
    }
    serde_json::from_str(line).map_err(bad)
}

/// Asks the daemon listening on `path` for its status.
pub fn status(path: &Path) -> Result<Snapshot, ControlError> {
    exchange(path, &Request::new(Command::Status))
}

/// Hands `event` to the daemon listening on `path`.
pub fn notify(path: &Path, event: KeepalivedEvent) -> Result<Notified, ControlError> {
    exchange(path, &Request::new(Command::Notify(event)))
}

/// Sends `request` to the daemon listening on `path` and reads its answer as a `T`.
fn exchange<T: DeserializeOwned>(path: &Path, request: &Request) -> Result<T, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(io)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    let mut text = serde_json::to_string(request).map_err(|e| io(std::io::Error::other(e)))?;
    text.push('\n');
    stream.write_all(text.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    parse_answer(path, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notify_round_trip_permissions_and_a_refused_request() {
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
                assert!(matches!(incoming.command, Command::Notify(_)));
                let answer = Answer::Notified(Notified { role: Role::Master });
                let _ = incoming.reply.send(answer);
            }
        });
        let event =
            crate::keepalived::parse_notify_args(&["INSTANCE", "VI_1", "MASTER", "100"]).unwrap();
        let p = path.clone();
        let answer = tokio::task::spawn_blocking(move || notify(&p, event))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.role, Role::Master);
        let p = path.clone();
        let bad = tokio::task::spawn_blocking(move || {
            let mut s = UnixStream::connect(&p).unwrap();
            s.write_all(b"{\"version\":1,\"cmd\":\"explode\"}\n")
                .unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        assert!(
            bad.starts_with(r#"{"version":1,"error":"bad request"#),
            "{bad}"
        );
        assert!(matches!(
            parse_answer::<Notified>(&path, &bad),
            Err(ControlError::Refused(e)) if e.starts_with("bad request")
        ));
    }

    #[test]
    fn requests_parse_with_their_newline_and_bad_ones_say_why() {
        assert_eq!(
            parse_request("{\"version\":1,\"cmd\":\"status\"}\n"),
            Ok(Command::Status)
        );
        for bad in [
            "",
            "{\"version\":1,\"cmd\":\"explode\"}",
            "{\"version\":1,\"cmd\":\"notify\"}",
            "[1]",
        ] {
            let error = parse_request(bad).expect_err(bad);
            assert!(error.starts_with("bad request: "), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_request_in_another_protocol_is_refused_saying_which() {
        let old = parse_request("{\"cmd\":\"status\"}\n").expect_err("unversioned");
        assert!(
            old.starts_with(
                "the request has no control protocol version: it comes from a \
                 keepserver older than this daemon, which speaks control protocol 1"
            ),
            "{old}"
        );
        let newer = parse_request("{\"version\":7,\"cmd\":\"status\"}").expect_err("v7");
        assert!(
            newer.starts_with("the client speaks control protocol 7, this daemon speaks 1"),
            "{newer}"
        );
    }

    #[test]
    fn an_answer_in_another_protocol_is_a_protocol_error_before_anything_else() {
        let path = Path::new("/run/k.sock");
        // What a daemon from before the protocol was versioned answers: its status, unversioned.
        let old = r#"{"role":"MASTER","running":true,"pid":7}"#;
        let error = parse_answer::<Snapshot>(path, old).expect_err("unversioned");
        assert!(matches!(error, ControlError::Protocol { daemon: None }));
        assert_eq!(
            error.to_string(),
            "the running daemon speaks the unversioned control protocol of an older keepserver, \
             this keepserver speaks control protocol 1: restart the daemon"
        );
        let newer = parse_answer::<Notified>(path, r#"{"version":2,"role":"MASTER"}"#)
            .expect_err("v2")
            .to_string();
        assert_eq!(
            newer,
            "the running daemon speaks control protocol 2, this keepserver speaks 1: use the \
             keepserver binary the daemon was started from"
        );
        let garbled = parse_answer::<Notified>(path, r#"{"version":1,"role":"BOSS"}"#)
            .expect_err("bad role")
            .to_string();
        assert!(
            garbled.starts_with(
                "the daemon's answer on /run/k.sock cannot be read as control protocol 1: "
            ),
            "{garbled}"
        );
    }

    #[test]
    fn notify_is_one_json_line_with_the_version_and_the_event_inline() {
        let event =
            crate::keepalived::parse_notify_args(&["INSTANCE", "VI_1", "FAULT", "90"]).unwrap();
        let request = Request::new(Command::Notify(event.clone()));
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"cmd":"notify","instance":{"kind":"INSTANCE","name":"VI_1"},"state":"FAULT","priority":90}"#
        );
        assert_eq!(parse_request(&text), Ok(Command::Notify(event)));
        let answer = Answer::Notified(Notified { role: Role::Slave }).to_line();
        assert_eq!(answer, "{\"version\":1,\"role\":\"SLAVE\"}\n");
    }
}
