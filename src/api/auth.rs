//! Who may use the admin API: the secret of `api.auth` read from its file (HTTP basic's
//! password, or a bearer token), refused when the file is readable by group or others, and the
//! check of a request's `Authorization` header against it in constant time. Reading the files
//! is the only I/O; the check itself is pure. The runtime reads them again on every reload.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use subtle::ConstantTimeEq;

use crate::config::api::Auth;

/// The realm named in `WWW-Authenticate`.
const REALM: &str = "keepserver";

/// Why a secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read.
    #[error("cannot read the API's {what} file {}: {source}", path.display())]
    Read {
        /// Which secret (`password`, `token`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error(
        "the API's {what} file {} has mode {mode:04o}: group and others must have no access \
         (chmod 600)",
        path.display()
    )]
    Mode {
        /// Which secret.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It holds nothing (besides a final newline).
    #[error("the API's {what} file {} is empty", path.display())]
    Empty {
        /// Which secret.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
}

/// The credential a request must carry.
#[derive(Clone, PartialEq, Eq)]
enum Credential {
    Basic { username: String, password: Vec<u8> },
    Token(Vec<u8>),
}

/// The gate in front of the API: open (no `api.auth`, loopback only) or a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Gate(Option<Credential>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match &self.0 {
            None => "Gate(open)",
            Some(Credential::Basic { .. }) => "Gate(basic)",
            Some(Credential::Token(_)) => "Gate(token)",
        })
    }
}

/// A refused request: the value of the `WWW-Authenticate` header to answer with, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The `WWW-Authenticate` header.
    pub header: String,
    /// For the 401 body.
    pub reason: &'static str,
}

impl Gate {
    /// The gate for `auth`, its secret read from its file.
    pub fn load(auth: Option<&Auth>) -> Result<Gate, AuthError> {
        Ok(Gate(match auth {
            None => None,
            Some(Auth::Basic {
                username,
                password_file,
            }) => Some(Credential::Basic {
                username: username.clone(),
                password: read_secret("password", password_file)?,
            }),
            Some(Auth::Token { token_file }) => {
                Some(Credential::Token(read_secret("token", token_file)?))
            }
        }))
    }

    /// Checks a request's `Authorization` header (`None`: it has none).
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), Challenge> {
        let Some(credential) = &self.0 else {
            return Ok(());
        };
        let scheme = match credential {
            Credential::Basic { .. } => "Basic",
            Credential::Token(_) => "Bearer",
        };
        let refuse = |reason| Challenge {
            header: format!("{scheme} realm=\"{REALM}\""),
            reason,
        };
        let Some(given) = authorization else {
            return Err(refuse(
                "this API needs credentials (the Authorization header)",
            ));
        };
        let given = given.trim_ascii();
        let ok = match credential {
            Credential::Basic { username, password } => {
                let encoded = strip_scheme(given, b"basic ")
                    .ok_or_else(|| refuse("the Authorization header is not HTTP basic"))?;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim_ascii())
                    .map_err(|_| refuse("the HTTP basic credentials are not base64"))?;
                let (user, pass) = match decoded.iter().position(|&b| b == b':') {
                    Some(at) => (&decoded[..at], &decoded[at + 1..]),
                    None => return Err(refuse("the HTTP basic credentials have no `:`")),
                };
                let user_ok = user.ct_eq(username.as_bytes());
                let pass_ok = pass.ct_eq(password);
                bool::from(user_ok & pass_ok)
            }
            Credential::Token(token) => {
                let presented = strip_scheme(given, b"bearer ")
                    .ok_or_else(|| refuse("the Authorization header is not a bearer token"))?;
                bool::from(presented.trim_ascii().ct_eq(token))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(refuse("wrong credentials"))
        }
    }
}

/// `value` without its (case-insensitive) scheme prefix, `None` for another scheme.
fn strip_scheme<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    (value.len() >= scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme))
        .then(|| &value[scheme.len()..])
}

/// The secret in `path`, without a final newline; refused when group or others have access.
fn read_secret(what: &'static str, path: &Path) -> Result<Vec<u8>, AuthError> {
    let read = |source| AuthError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(AuthError::Mode {
            what,
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut secret = std::fs::read(path).map_err(read)?;
    while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        secret.pop();
    }
    if secret.is_empty() {
        return Err(AuthError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn secret_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("secret");
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn basic(user: &str, pass: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {encoded}").into_bytes()
    }

    #[test]
    fn open_gate_lets_everyone_in() {
        let gate = Gate::load(None).expect("open");
        assert_eq!(gate.check(None), Ok(()));
        assert_eq!(gate.check(Some(b"Bearer x")), Ok(()));
    }

    #[test]
    fn basic_needs_the_user_and_the_password_of_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let auth = Auth::Basic {
            username: "admin".into(),
            password_file: secret_file(dir.path(), "s3cret\n", 0o600),
        };
        let gate = Gate::load(Some(&auth)).expect("gate");
        assert_eq!(gate.check(Some(&basic("admin", "s3cret"))), Ok(()));
        assert_eq!(gate.check(Some(b"basic YWRtaW46czNjcmV0")), Ok(()));
        for wrong in [
            basic("admin", "s3cret\n"),
            basic("admin", "other"),
            basic("root", "s3cret"),
            basic("admin", ""),
            b"Basic !!!".to_vec(),
            b"Basic YWRtaW4=".to_vec(),
            b"Bearer s3cret".to_vec(),
        ] {
            let challenge = gate.check(Some(&wrong)).expect_err("refused");
            assert_eq!(challenge.header, "Basic realm=\"keepserver\"");
        }
        assert!(gate.check(None).is_err());
    }

    #[test]
    fn token_needs_the_token_of_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let auth = Auth::Token {
            token_file: secret_file(dir.path(), "abc123", 0o400),
        };
        let gate = Gate::load(Some(&auth)).expect("gate");
        assert_eq!(gate.check(Some(b"Bearer abc123")), Ok(()));
        assert_eq!(gate.check(Some(b"bearer  abc123 ")), Ok(()));
        for wrong in [
            &b"Bearer abc12"[..],
            b"Bearer abc1234",
            b"abc123",
            b"Basic abc123",
        ] {
            let challenge = gate.check(Some(wrong)).expect_err("refused");
            assert_eq!(challenge.header, "Bearer realm=\"keepserver\"");
        }
    }

    #[test]
    fn a_file_others_can_read_or_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            let auth = Auth::Token {
                token_file: secret_file(dir.path(), "abc", mode),
            };
            let e = Gate::load(Some(&auth)).expect_err("refused");
            assert!(matches!(e, AuthError::Mode { .. }), "{mode:o}: {e}");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        let auth = Auth::Token {
            token_file: secret_file(dir.path(), "\n", 0o600),
        };
        assert!(matches!(
            Gate::load(Some(&auth)),
            Err(AuthError::Empty { .. })
        ));
        let auth = Auth::Token {
            token_file: dir.path().join("missing"),
        };
        let e = Gate::load(Some(&auth)).expect_err("refused");
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
