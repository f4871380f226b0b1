//! TLS of a connection of our own: rustls with the ring provider (the one kube's rustls
//! already uses), trusting `spec.tls.caCert` (else the system's CAs, as librdkafka does) and
//! presenting `spec.tls.clientCert` / `clientKey` when set. The broker's certificate must name
//! the address connected to, as librdkafka checks by default.

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::settings::Tls;
use crate::kafka::BrokerError;

/// The connector for `tls`; a certificate or key that cannot be read is a
/// [`BrokerError::Client`] naming the field.
pub fn connector(tls: &Tls) -> Result<TlsConnector, BrokerError> {
    let bad = |what: &str, e: String| BrokerError::Client(format!("{what}: {e}"));
    let mut roots = RootCertStore::empty();
    match &tls.ca_pem {
        Some(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("spec.tls.caCert", e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("spec.tls.caCert", "no PEM certificate in it".into()));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| bad("spec.tls.caCert", e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("spec.tls.clientCert", e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes())
                .map_err(|_| bad("spec.tls.clientKey", "not a PEM private key".into()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("spec.tls.clientCert", e.to_string()))?
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(bad(
                "spec.tls",
                "clientCert and clientKey go together: set both or neither".into(),
            ))
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name the broker's certificate must carry for `host` (a DNS name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, BrokerError> {
    ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
    .map_err(|e| BrokerError::Client(format!("broker address {host}: {e}")))
}

/// Whether an I/O error of a TLS stream is rustls's (a refused handshake, an alert from the
/// broker), not the network's.
pub fn alert(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// What a failed handshake means for `spec.tls`, in the words of
/// [`crate::kafka::connection`]'s librdkafka explanations.
pub fn explain(error: &std::io::Error) -> String {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    let meaning = if lower.contains("unknownissuer")
        || lower.contains("unknown issuer")
        || lower.contains("notvalidforname")
        || lower.contains("not valid for name")
        || lower.contains("invalid peer certificate")
    {
        "the broker's certificate could not be verified: it is not signed by spec.tls.caCert (without caCert: by the system's CAs), or it does not name the address in spec.bootstrapServers"
    } else if lower.contains("certificaterequired") || lower.contains("certificate required") {
        "the broker requires a client certificate: set spec.tls.clientCert and spec.tls.clientKey"
    } else if lower.contains("unknownca") || lower.contains("badcertificate") {
        "the broker refused the client certificate (spec.tls.clientCert): it is not signed by a CA the broker trusts, or is not meant for clients"
    } else if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
        "the broker did not answer in TLS: spec.bootstrapServers names a plaintext listener (use its TLS port, or remove spec.tls)"
    } else {
        "the TLS handshake with the broker failed"
    };
    format!("{meaning} ({text})")
}
