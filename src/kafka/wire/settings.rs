//! What a connection of our own needs from a cluster's [`ClientSettings`]: the same
//! librdkafka properties [`crate::kafka::ClientSettings::for_cluster`] writes (security
//! protocol, CA and client certificate, SASL mechanism and credentials), read back into typed
//! values. A property this client cannot honour the way librdkafka would is refused with its
//! name ([`WireSettings::from_client`]), so the caller keeps to librdkafka for that cluster
//! rather than connect differently from it.

use std::time::Duration;

use crate::kafka::{ClientSettings, Sensitive};

/// How a connection authenticates with SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    /// The name the broker knows it by (SaslHandshake).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }
}

/// SASL credentials. The password is never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: Sensitive,
}

/// TLS: the CA to trust (else the system's roots, as librdkafka does) and the client
/// certificate, all PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca_pem: Option<String>,
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<Sensitive>,
}

/// Everything a connection of ours needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireSettings {
    /// `host:port`, in the order given.
    pub bootstrap: Vec<String>,
    pub timeout: Duration,
    pub tls: Option<Tls>,
    pub sasl: Option<Sasl>,
}

/// librdkafka properties that change how a connection is made or authenticated which this
/// client does not implement: a cluster that sets one keeps to librdkafka.
const NOT_HONOURED: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.keystore.location",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    "ssl.crl.location",
    "ssl.providers",
    "ssl.engine.location",
    "sasl.oauthbearer.config",
    "sasl.kerberos.service.name",
    "client.dns.lookup",
    "broker.address.family",
];

impl WireSettings {
    /// The settings of `client`, or why this client cannot connect the way librdkafka would
    /// (the property at fault, named).
    pub fn from_client(client: &ClientSettings) -> Result<Self, String> {
        let prop = |k: &str| client.properties.get(k).map(String::as_str);
        if let Some(k) = NOT_HONOURED
            .iter()
            .find(|k| client.properties.contains_key(**k))
        {
            return Err(format!(
                "the client property {k} is not implemented by Tributary's own Kafka connection"
            ));
        }
        let protocol = prop("security.protocol")
            .unwrap_or("plaintext")
            .to_ascii_lowercase();
        let (tls, sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => return Err(format!("security.protocol {other} is not supported")),
        };
        let tls = tls.then(|| Tls {
            ca_pem: prop("ssl.ca.pem").map(str::to_owned),
            client_cert_pem: prop("ssl.certificate.pem").map(str::to_owned),
            client_key_pem: client.secret_properties.get("ssl.key.pem").cloned(),
        });
        let sasl = if sasl {
            let name = prop("sasl.mechanisms")
                .or(prop("sasl.mechanism"))
                .unwrap_or("GSSAPI");
            let mechanism = Mechanism::parse(name)
                .ok_or_else(|| format!("sasl.mechanisms {name} is not supported"))?;
            Some(Sasl {
                mechanism,
                username: prop("sasl.username").unwrap_or_default().to_owned(),
                password: client
                    .secret_properties
                    .get("sasl.password")
                    .cloned()
                    .ok_or("sasl.password is not set")?,
            })
        } else {
            None
        };
        let bootstrap = client
            .bootstrap_servers
            .split(',')
            .map(|s| strip_scheme(s.trim()).to_owned())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>();
        if bootstrap.is_empty() {
            return Err("bootstrap.servers is empty".into());
        }
        Ok(Self {
            bootstrap,
            timeout: client.timeout,
            tls,
            sasl,
        })
    }
}

/// `host:port` of a bootstrap entry, without librdkafka's optional `PROTOCOL://` prefix.
fn strip_scheme(s: &str) -> &str {
    s.split_once("://").map_or(s, |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(props: &[(&str, &str)], secrets: &[(&str, &str)]) -> ClientSettings {
        let mut c = ClientSettings::plaintext("k-0:9093, SSL://k-1:9093", Duration::from_secs(3));
        for (k, v) in props {
            c.properties.insert((*k).into(), (*v).into());
        }
        for (k, v) in secrets {
            c.secret_properties.insert((*k).into(), Sensitive::new(*v));
        }
        c
    }

    #[test]
    fn plaintext_tls_and_sasl_come_from_the_librdkafka_properties() {
        let plain = WireSettings::from_client(&client(&[], &[])).unwrap();
        assert_eq!(plain.bootstrap, ["k-0:9093", "k-1:9093"]);
        assert_eq!((plain.tls, plain.sasl), (None, None));
        assert_eq!(plain.timeout, Duration::from_secs(3));

        let both = WireSettings::from_client(&client(
            &[
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.pem", "CA"),
                ("ssl.certificate.pem", "CERT"),
                ("sasl.mechanisms", "SCRAM-SHA-512"),
                ("sasl.username", "svc"),
            ],
            &[("ssl.key.pem", "KEY"), ("sasl.password", "pw")],
        ))
        .unwrap();
        let tls = both.tls.unwrap();
        assert_eq!(tls.ca_pem.as_deref(), Some("CA"));
        assert_eq!(tls.client_cert_pem.as_deref(), Some("CERT"));
        assert_eq!(tls.client_key_pem.unwrap().expose(), "KEY");
        let sasl = both.sasl.unwrap();
        assert_eq!(sasl.mechanism, Mechanism::ScramSha512);
        assert_eq!(sasl.username, "svc");
        assert!(
            !format!("{sasl:?}").contains("pw"),
            "the password is never printed"
        );
    }

    #[test]
    fn what_this_client_cannot_honour_is_refused_by_name() {
        let e =
            WireSettings::from_client(&client(&[("ssl.ca.location", "/etc/ca")], &[])).unwrap_err();
        assert!(e.contains("ssl.ca.location"), "{e}");
        let e = WireSettings::from_client(&client(
            &[
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanisms", "GSSAPI"),
            ],
            &[("sasl.password", "pw")],
        ))
        .unwrap_err();
        assert!(e.contains("sasl.mechanisms GSSAPI"), "{e}");
    }
}
