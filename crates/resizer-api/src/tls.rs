//! TLS for the listeners that carry traffic between roles (the identity
//! service's admin port with its feed, an API node's internal port) when the
//! roles run on different machines: a certificate and key from PEM files.
//! The public port is left to the load balancer that terminates TLS for it.

use std::path::Path;
use std::sync::Arc;

pub use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} {path}: {reason}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the certificate and key.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn pem_error(what: &'static str, path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Makes ring the process's TLS provider. Our dependencies compile in both
/// ring and aws-lc-rs, so rustls cannot pick one by itself, and a client that
/// asks for the process default (the NATS client's TLS) would panic. Idempotent.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A server configuration from a PEM certificate chain and its private key,
/// HTTP/1.1 only, with the ring provider (the one every role links already).
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| pem_error("certificate file", cert_file, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate file", cert_file, e))?;
    if certs.is_empty() {
        return Err(pem_error("certificate file", cert_file, "no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| pem_error("key file", key_file, e))?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
