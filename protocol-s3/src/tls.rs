//! TLS from PEM files, with a certificate that can be replaced while the
//! server runs (SIGHUP): new handshakes get the new certificate, open
//! connections keep the one they negotiated and are never dropped.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The certificate handed to each new TLS handshake.
#[derive(Debug)]
pub struct CertStore(RwLock<Arc<CertifiedKey>>);

impl CertStore {
    /// Parses a PEM certificate chain and its private key; fails when
    /// either is missing or malformed, or when they do not belong together.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertStore, String> {
        Ok(CertStore(RwLock::new(Arc::new(certified_key(cert_pem, key_pem)?))))
    }
    /// Replaces the certificate for handshakes from now on. On error the
    /// current certificate stays in use.
    pub fn reload(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
        let next = Arc::new(certified_key(cert_pem, key_pem)?);
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }
    /// The leaf certificate in use (DER), for tests and logs.
    pub fn leaf_der(&self) -> Vec<u8> {
        self.current().cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }
    fn current(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    let certs = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if certs.is_empty() {
        return Err("certificate file holds no certificate".into());
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("private key: {e}"))?
        .ok_or("key file holds no private key")?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| format!("private key: {e}"))?;
    let ck = CertifiedKey::new(certs, signer);
    ck.keys_match().map_err(|e| format!("certificate and key do not match: {e}"))?;
    Ok(ck)
}

/// A TLS acceptor whose certificate comes from `store` at each handshake.
pub fn acceptor(store: Arc<CertStore>) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(store);
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Loads a PEM certificate chain and private key into a TLS acceptor with
/// a fixed certificate.
pub fn tls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, String> {
    acceptor(Arc::new(CertStore::from_pem(cert_pem, key_pem)?))
}
