//! ARCHIVE: the HAProxy log lines of one load balancer, gzipped and uploaded to a
//! Swift-compatible object store with an HTTP PUT of `<endpoint>/<basepath>/<lb id>/<name>`,
//! carrying `X-Auth-Token` and the body's MD5 as `ETag` so the store verifies it. The token is
//! never logged.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};

use super::message::{Archive, ArchiveLb};
use super::site::Protocol;

/// Why an upload failed, for `hpcs_error`.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// No log file is configured.
    #[error("no HAProxy log file configured (libra.archive.log)")]
    NoLog,
    /// The log file could not be read.
    #[error("cannot read HAProxy log {path}: {source}")]
    Read {
        /// The log file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store answered with an error status.
    #[error("upload of {object} failed: HTTP {status}")]
    Status {
        /// The object path (without the endpoint).
        object: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The store could not be reached.
    #[error("upload of {object} failed: {message}")]
    Transport {
        /// The object path (without the endpoint).
        object: String,
        /// What went wrong.
        message: String,
    },
}

/// The names HAProxy logs a load balancer's traffic under (its frontend and backend).
pub fn log_names(protocol: Protocol) -> [&'static str; 2] {
    match protocol {
        Protocol::Http => ["http-in", "http-servers"],
        Protocol::Tcp => ["tcp-in", "tcp-servers"],
    }
}

/// The log lines that belong to `protocol`'s load balancer.
pub fn lines_for(log: &str, protocol: Protocol) -> String {
    let names = log_names(protocol);
    let mut out = String::new();
    for line in log.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.iter().any(|w| {
            names
                .iter()
                .any(|n| *w == *n || w.starts_with(&format!("{n}/")))
        }) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Gzips `text`.
pub fn gzip(text: &str) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(text.as_bytes())?;
    enc.finish()
}

/// The object path under the endpoint for one load balancer's upload at `stamp`.
pub fn object_path(archive: &Archive, lb: &ArchiveLb, stamp: &str) -> String {
    format!("{}/{}/haproxy-{}.log.gz", archive.basepath, lb.id, stamp)
}

/// Uploads each load balancer's log lines; blocking (run it off the async threads).
/// Returns the object paths written.
pub fn upload(
    archive: &Archive,
    log: Option<&Path>,
    stamp: &str,
) -> Result<Vec<String>, ArchiveError> {
    let log = log.ok_or(ArchiveError::NoLog)?;
    let text = std::fs::read_to_string(log).map_err(|source| ArchiveError::Read {
        path: log.display().to_string(),
        source,
    })?;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .new_agent();
    let mut written = Vec::new();
    for lb in &archive.loadbalancers {
        let object = object_path(archive, lb, stamp);
        let body = gzip(&lines_for(&text, lb.protocol)).map_err(|e| ArchiveError::Transport {
            object: object.clone(),
            message: format!("gzip: {e}"),
        })?;
        let etag = hex::encode(Md5::digest(&body));
        let url = format!("{}/{}", archive.endpoint, object);
        let response = agent
            .put(&url)
            .header("X-Auth-Token", &archive.token)
            .header("ETag", &etag)
            .header("Content-Type", "application/gzip")
            .send(&body[..])
            .map_err(|e| ArchiveError::Transport {
                object: object.clone(),
                message: e.to_string(),
            })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(ArchiveError::Status { object, status });
        }
        written.push(object);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const LOG: &str = "Nov 23 10:00:00 lb haproxy[1]: 192.0.2.1:5000 [23/Nov/2026:10:00:00.000] http-in http-servers/node-1 0/0/1/2/3 200 120 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\n\
Nov 23 10:00:01 lb haproxy[1]: 192.0.2.2:5001 [23/Nov/2026:10:00:01.000] tcp-in tcp-servers/node-1 1/0/5 300 -- 1/1/0/0/0 0/0\n\
Nov 23 10:00:02 lb haproxy[1]: Server http-servers/node-2 is DOWN\n";

    #[test]
    fn lines_are_split_by_load_balancer() {
        let http = lines_for(LOG, Protocol::Http);
        assert_eq!(http.lines().count(), 2);
        assert!(http.contains("http-servers/node-2 is DOWN"));
        let tcp = lines_for(LOG, Protocol::Tcp);
        assert_eq!(tcp.lines().count(), 1);
        assert!(tcp.contains("tcp-in"));
    }

    #[test]
    fn gzip_round_trips() {
        let gz = gzip(LOG).unwrap();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, LOG);
    }

    #[test]
    fn object_path_is_basepath_id_name() {
        let a = Archive {
            endpoint: "http://127.0.0.1:1/v1/AUTH_x".into(),
            basepath: "lbaaslogs".into(),
            token: "t".into(),
            loadbalancers: vec![],
        };
        let lb = ArchiveLb {
            id: "15".into(),
            protocol: Protocol::Http,
        };
        assert_eq!(
            object_path(&a, &lb, "20261123-100000"),
            "lbaaslogs/15/haproxy-20261123-100000.log.gz"
        );
    }
}
