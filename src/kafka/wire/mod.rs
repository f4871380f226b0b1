//! A small Kafka-protocol client of our own, for what librdkafka cannot batch: the consumer
//! group requests of a lag pass (see [`crate::kafka::lag`]). It connects as the cluster's
//! librdkafka client does — the same `security.protocol`, CA and client certificate, SASL
//! mechanism and credentials ([`settings`], read from the same [`crate::kafka::ClientSettings`];
//! a property it cannot honour is refused by name) — over TCP, TLS ([`tls`]: rustls with the
//! ring provider) and SASL ([`sasl`]: PLAIN, SCRAM-SHA-256/512 with ring), and sends requests
//! one at a time on each connection ([`connection`]). Messages are encoded and decoded by the
//! `kafka-protocol` crate (client half only).

pub mod connection;
#[cfg(test)]
pub(crate) mod fake;
pub mod sasl;
pub mod settings;
pub mod tls;

pub use connection::BrokerConnection;
pub use settings::WireSettings;

#[cfg(test)]
mod tests;
