//! The environment variables Tributary gives a workload's container: their names, in one place
//! for rendering (which sets them) and validation (which keeps `spec.template.env` off them).

/// `host:port,host:port` of the cluster's bootstrap brokers.
pub const ENV_BOOTSTRAP_SERVERS: &str = "KAFKA_BOOTSTRAP_SERVERS";
/// The consumer group id (consumers only).
pub const ENV_GROUP_ID: &str = "KAFKA_GROUP_ID";
/// The broker topic names, comma-separated, in `spec.topics` order.
pub const ENV_TOPICS: &str = "KAFKA_TOPICS";
/// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
pub const ENV_SECURITY_PROTOCOL: &str = "KAFKA_SECURITY_PROTOCOL";
/// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with SASL only).
pub const ENV_SASL_MECHANISM: &str = "KAFKA_SASL_MECHANISM";
/// The SASL user name: a literal, or from its Secret.
pub const ENV_SASL_USERNAME: &str = "KAFKA_SASL_USERNAME";
/// The SASL password, always from its Secret.
pub const ENV_SASL_PASSWORD: &str = "KAFKA_SASL_PASSWORD";
/// PEM of the CA that signed the brokers' certificates, from its Secret.
pub const ENV_SSL_CA_PEM: &str = "KAFKA_SSL_CA_PEM";
/// PEM of the client certificate (mutual TLS), from its Secret.
pub const ENV_SSL_CERTIFICATE_PEM: &str = "KAFKA_SSL_CERTIFICATE_PEM";
/// PEM of the client certificate's private key (mutual TLS), from its Secret.
pub const ENV_SSL_KEY_PEM: &str = "KAFKA_SSL_KEY_PEM";

const CONNECTION_ENV: [&str; 9] = [
    ENV_BOOTSTRAP_SERVERS,
    ENV_TOPICS,
    ENV_SECURITY_PROTOCOL,
    ENV_SASL_MECHANISM,
    ENV_SASL_USERNAME,
    ENV_SASL_PASSWORD,
    ENV_SSL_CA_PEM,
    ENV_SSL_CERTIFICATE_PEM,
    ENV_SSL_KEY_PEM,
];

/// Every variable a consumer's container may be given by Tributary (whether or not the
/// cluster uses SASL/TLS); `spec.template.env` may not use these names.
pub fn consumer_env_names() -> Vec<&'static str> {
    let mut names = producer_env_names();
    names.push(ENV_GROUP_ID);
    names
}

/// Every variable a producer's container may be given by Tributary.
pub fn producer_env_names() -> Vec<&'static str> {
    CONNECTION_ENV.to_vec()
}
