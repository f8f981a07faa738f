//! One command on one of HAProxy's Unix CLI sockets (the stats socket or the master CLI), in
//! HAProxy's non-interactive mode: connect, send the line and close the sending side, read the
//! answer until HAProxy closes.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long one command may take, connect to close.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `command` on `socket` and returns HAProxy's whole answer. A connection error keeps its
/// kind (`NotFound`, `ConnectionRefused`: nothing listens); a slow answer is `TimedOut`.
pub(crate) async fn command(socket: &Path, command: &str) -> io::Result<String> {
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await?;
        stream.write_all(format!("{command}\n").as_bytes()).await?;
        // The master CLI answers only once the request side is closed.
        stream.shutdown().await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    tokio::time::timeout(CLI_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {}s", CLI_TIMEOUT.as_secs()),
            ))
        })
}

/// Whether a connection error means that nothing serves the socket.
pub(crate) fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Whether an error means that nothing serves the socket right now, including a connection cut
/// short: what the master CLI does while the master re-executes for a reload.
pub(crate) fn is_unavailable(error: &io::Error) -> bool {
    is_absent(error)
        || matches!(
            error.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        )
}
