//! What the integration tests share: the test broker and the end-to-end scenarios. (The
//! Kubernetes API-server emulator is the workspace crate `kube-emulator`.)
pub mod broker;
pub mod kafka_proxy;
pub mod scenarios;
pub mod tls;
pub mod tools;
