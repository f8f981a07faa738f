//! The `metrics` section: the Prometheus endpoint (its listen address and, for a listener
//! beyond loopback, the credential scrapers must send, the same shape as `api.auth`). Off when
//! the section is absent.

use std::net::SocketAddr;
use std::path::Path;

use super::api::{Auth, listen, read_auth, sub_sections};
use super::fields::SectionReader;

/// The `metrics` section, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// Where `/metrics` is served (default 127.0.0.1:9181).
    pub listen: SocketAddr,
    /// The credential scrapers send; `None`: none (loopback only).
    pub auth: Option<Auth>,
}

/// The default `metrics.listen`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9181);

/// Reads `metrics` and its sub-section `auth`; `None` when `metrics` is absent.
pub fn read_metrics(
    r: &mut SectionReader<'_>,
    auth: &mut SectionReader<'_>,
    workspace: &Path,
    present: bool,
) -> Option<Metrics> {
    sub_sections(r, &["auth"]);
    let listen = listen(r, DEFAULT_LISTEN);
    let auth = read_auth(auth, workspace);
    if present && !listen.ip().is_loopback() && auth.is_none() {
        r.refuse_default(
            "listen",
            format!(
                "{listen} is not a loopback address: set metrics.auth (a token or basic \
                 password file) before listening there"
            ),
        );
        return None;
    }
    present.then_some(Metrics { listen, auth })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{ConfigError, parse};

    const KEEPSTART: &str = "keepstart:\n  vip: 192.0.2.10\n  start: 'true'\n  stop: 'true'\n";

    fn file() -> PathBuf {
        PathBuf::from("/etc/keepserver/config.yaml")
    }

    fn load(metrics: &str) -> Result<Option<Metrics>, Vec<String>> {
        match parse(&format!("{KEEPSTART}{metrics}"), &file()) {
            Ok(loaded) => Ok(loaded.config.metrics),
            Err(ConfigError::Invalid { problems }) => {
                Err(problems.iter().map(ToString::to_string).collect())
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn off_unless_the_section_is_there_and_on_loopback_by_default() {
        assert_eq!(load(""), Ok(None));
        assert_eq!(
            load("metrics: {}\n"),
            Ok(Some(Metrics {
                listen: DEFAULT_LISTEN,
                auth: None
            }))
        );
    }

    #[test]
    fn beyond_loopback_only_with_auth() {
        let refused = load("metrics:\n  listen: 0.0.0.0:9181\n").expect_err("refused");
        assert_eq!(
            refused,
            ["/etc/keepserver/config.yaml:6:3: key `metrics.listen`: \
                 0.0.0.0:9181 is not a loopback address: set metrics.auth (a token or basic \
                 password file) before listening there"]
        );
        let allowed = load("metrics:\n  listen: 0.0.0.0:9181\n  auth:\n    token-file: token\n")
            .expect("allowed");
        assert_eq!(
            allowed,
            Some(Metrics {
                listen: "0.0.0.0:9181".parse().expect("address"),
                auth: Some(Auth::Token {
                    token_file: PathBuf::from("/etc/keepserver/token")
                }),
            })
        );
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let refused =
            load("metrics:\n  listen: localhost\n  auth:\n    username: u\n").expect_err("refused");
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(
            refused[0].contains("6:11: key `metrics.listen`: `localhost` is not"),
            "{refused:?}"
        );
        assert!(
            refused[1].contains("key `metrics.auth.token-file`"),
            "{refused:?}"
        );
    }
}
