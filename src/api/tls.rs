//! TLS for the admin API: the rustls server configuration of `api.tls` (its certificate chain
//! and key, and, with `client-ca`, client certificates required and verified against that CA,
//! as Octavia's amphora agent does), with the ring provider the rest of keepserver's rustls
//! uses. Reading the PEM files is the only I/O; the runtime builds it again on every reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use crate::config::api::ApiTls;

/// Why the API's TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing of what it should.
    #[error("the API's TLS {what} {}: {reason}", path.display())]
    File {
        /// Which file (`certificate`, `key`, `client-ca`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the combination (a key that does not match the certificate, ...).
    #[error("the API's TLS set-up: {0}")]
    Config(String),
}

/// The acceptor for `tls`.
pub fn acceptor(tls: &ApiTls) -> Result<TlsAcceptor, TlsError> {
    let certs = certificates("certificate", &tls.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| TlsError::File {
        what: "key",
        path: tls.key.clone(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("client-ca", path)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    what: "client-ca",
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Every certificate in the PEM file `path`; at least one.
fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file = |reason: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(e.to_string()))?;
    if certs.is_empty() {
        return Err(file("holds no PEM certificate".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(dir: &Path) -> ApiTls {
        ApiTls {
            certificate: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: None,
        }
    }

    #[test]
    fn missing_or_empty_files_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let e = acceptor(&tls(dir.path())).err().expect("no files");
        assert!(
            e.to_string().contains("certificate") && e.to_string().contains("server.pem"),
            "{e}"
        );
        std::fs::write(dir.path().join("server.pem"), "not PEM\n").expect("write");
        let e = acceptor(&tls(dir.path())).err().expect("no certificate");
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    }
}
