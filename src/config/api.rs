//! The `api` section: the KINX-compatible admin API (its listen address, authentication and
//! TLS), where its objects are kept, the HAProxy it drives and what the node's role means for
//! it. Off when the section is absent.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::fields::{SectionReader, kind, text};
use super::libra::hostname;
use crate::haproxy::model::Name;

/// The default `peers` section name (the KINX seed's).
pub const DEFAULT_PEERS_SECTION: &str = "kinx_loadbalancer_peers";

/// When the HAProxy the API configures serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Only while this node is MASTER (active/standby behind keepalived).
    Master,
    /// In every role (all-active N+1 behind ECMP, the KINX setup).
    Always,
}

/// How clients authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP basic: this user, the password in this file (mode 0600).
    Basic {
        /// The user name.
        username: String,
        /// The file holding the password.
        password_file: PathBuf,
    },
    /// `Authorization: Bearer <token>`, the token in this file (mode 0600).
    Token {
        /// The file holding the token.
        token_file: PathBuf,
    },
}

/// TLS for the API itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTls {
    /// The server's certificate chain (PEM).
    pub certificate: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// Clients must present a certificate signed by one of these CAs (PEM), when given.
    pub client_ca: Option<PathBuf>,
}

/// The HAProxy the API drives (`api.haproxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiHaproxy {
    /// The haproxy.cfg it owns.
    pub config: PathBuf,
    /// The HAProxy binary.
    pub binary: PathBuf,
    /// Pidfile and sockets.
    pub runtime_dir: PathBuf,
}

impl ApiHaproxy {
    /// The HAProxy instance these settings describe.
    pub fn instance(&self) -> crate::haproxy::HaproxySettings {
        crate::haproxy::HaproxySettings {
            binary: self.binary.clone(),
            config: self.config.clone(),
            runtime_dir: self.runtime_dir.clone(),
        }
    }
}

/// The `api` section, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// How clients authenticate; `None`: they do not (loopback only).
    pub auth: Option<Auth>,
    /// TLS for the API, if any.
    pub tls: Option<ApiTls>,
    /// Where `tls_certificate_id`s name PEM files (`<id>.pem`) for TERMINATED_HTTPS listeners.
    pub certificates: PathBuf,
    /// The object store (one JSON file, written atomically on every change).
    pub store: PathBuf,
    /// When HAProxy serves.
    pub serve: Serve,
    /// The address a listener without `vip_address` binds.
    pub bind: IpAddr,
    /// The name of the rendered `peers` section.
    pub peers_section: Name,
    /// This node's name among the peers (HAProxy's `localpeer`).
    pub peer_name: Name,
    /// The HAProxy it drives.
    pub haproxy: ApiHaproxy,
}

/// Reads `api` and its sub-sections `auth`, `tls` and `haproxy`; `None` when `api` is absent.
pub fn read_api(
    r: &mut SectionReader<'_>,
    auth: &mut SectionReader<'_>,
    tls: &mut SectionReader<'_>,
    haproxy: &mut SectionReader<'_>,
    workspace: &Path,
    present: bool,
) -> Option<Api> {
    sub_sections(r, &["auth", "tls", "haproxy"]);
    let listen = listen(r, SocketAddr::from(([127, 0, 0, 1], 9180)));
    let auth = read_auth(auth, workspace);
    let tls = read_tls(tls, workspace);
    let at = |p: String| workspace.join(p);
    let certificates = r
        .optional("certificates", text)
        .map_or_else(|| workspace.join("certificates"), at);
    let store = r
        .optional("store", text)
        .map_or_else(|| workspace.join("api-store.json"), at);
    let serve = r
        .optional("serve", |v| match text(v)?.as_str() {
            "master" => Ok(Serve::Master),
            "always" => Ok(Serve::Always),
            other => Err(format!("`{other}` is not `master` or `always`")),
        })
        .unwrap_or(Serve::Master);
    let bind = r
        .optional("bind", |v| {
            text(v)?
                .parse::<IpAddr>()
                .map_err(|_| format!("{} is not an IP address", kind(v)))
        })
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let name_of = |what: &'static str| {
        move |v: &serde_json::Value| Name::new(what, &text(v)?).map_err(|e| e.to_string())
    };
    let peers_section = r
        .optional("peers-section", name_of("peers-section"))
        .unwrap_or_else(|| known_name(DEFAULT_PEERS_SECTION));
    let peer_name = r.optional("peer-name", name_of("peer-name"));
    let haproxy = ApiHaproxy {
        config: haproxy
            .optional("config", text)
            .map_or_else(|| workspace.join("haproxy.cfg"), at),
        binary: haproxy
            .optional("binary", text)
            .map_or_else(|| PathBuf::from("haproxy"), PathBuf::from),
        runtime_dir: haproxy
            .optional("runtime-dir", text)
            .map_or_else(|| workspace.join("haproxy"), at),
    };
    let unauthenticated_elsewhere = !listen.ip().is_loopback() && auth.is_none();
    if present && unauthenticated_elsewhere {
        r.refuse_default(
            "listen",
            format!(
                "{listen} is not a loopback address: set api.auth (a token or basic password \
                 file) before listening there"
            ),
        );
        return None;
    }
    let peer_name = match peer_name {
        Some(name) => name,
        None => match Name::new("peer name", &hostname()) {
            Ok(name) => name,
            Err(e) => {
                r.refuse_default("peer-name", format!("the default, this host's name: {e}"));
                return None;
            }
        },
    };
    present.then_some(Api {
        listen,
        auth,
        tls,
        certificates,
        store,
        serve,
        bind,
        peers_section,
        peer_name,
        haproxy,
    })
}

/// Checks that each of `subs`, when given, is a mapping (its keys are read by a reader of its
/// own).
pub(super) fn sub_sections(r: &mut SectionReader<'_>, subs: &[&str]) {
    for sub in subs {
        r.optional(sub, |v| match v {
            serde_json::Value::Object(_) => Ok(()),
            other => Err(format!("{} is not a mapping of keys", kind(other))),
        });
    }
}

/// The section's `listen` address, `default` when not given.
pub(super) fn listen(r: &mut SectionReader<'_>, default: SocketAddr) -> SocketAddr {
    r.optional("listen", |v| {
        text(v)?
            .parse::<SocketAddr>()
            .map_err(|_| format!("{} is not an address and port like {default}", kind(v)))
    })
    .unwrap_or(default)
}

/// A name keepserver writes itself.
fn known_name(value: &str) -> Name {
    Name::new("name", value).unwrap_or_else(|e| unreachable!("{e}"))
}

pub(super) fn read_auth(r: &mut SectionReader<'_>, workspace: &Path) -> Option<Auth> {
    let username = r.optional("username", |v| {
        let name = text(v)?;
        let ok =
            !name.is_empty() && !name.contains(':') && name.bytes().all(|b| b.is_ascii_graphic());
        ok.then_some(name)
            .ok_or_else(|| "a user name is visible ASCII without `:`".to_string())
    });
    let password_file = r.optional("password-file", text).map(|p| workspace.join(p));
    let token_file = r.optional("token-file", text).map(|p| workspace.join(p));
    match (username, password_file, token_file) {
        (None, None, None) => None,
        (Some(username), Some(password_file), None) => Some(Auth::Basic {
            username,
            password_file,
        }),
        (None, None, Some(token_file)) => Some(Auth::Token { token_file }),
        _ => {
            r.refuse_default(
                "token-file",
                "give either `username` and `password-file` (HTTP basic) or `token-file` \
                 (bearer), not both and not half of one"
                    .to_string(),
            );
            None
        }
    }
}

fn read_tls(r: &mut SectionReader<'_>, workspace: &Path) -> Option<ApiTls> {
    let certificate = r.optional("certificate", text).map(|p| workspace.join(p));
    let key = r.optional("key", text).map(|p| workspace.join(p));
    let client_ca = r.optional("client-ca", text).map(|p| workspace.join(p));
    match (certificate, key) {
        (None, None) if client_ca.is_none() => None,
        (Some(certificate), Some(key)) => Some(ApiTls {
            certificate,
            key,
            client_ca,
        }),
        _ => {
            r.refuse_default(
                "certificate",
                "TLS needs both `certificate` and `key`".to_string(),
            );
            None
        }
    }
}
