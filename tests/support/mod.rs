pub mod apiserver;
pub mod broker;
pub mod scenarios;
