//! A `KafkaProducer`, validated: its topics, template, replicas and Service.

use std::collections::BTreeMap;

use super::template::check_template;
use super::topics::{check_topics, TopicRef};
use super::{check_cluster_ref, check_replicas, name_of, Owner};
use crate::api::{KafkaProducer, PortProtocol, ServiceType, WorkloadTemplate};
use crate::model::{FieldError, PortName};
use crate::workloads::env::producer_env_names;

/// One port of a producer's Service, validated, with `targetPort` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedPort {
    pub name: PortName,
    pub port: i32,
    pub target_port: i32,
    pub protocol: PortProtocol,
}

/// A producer's Service, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedService {
    pub type_: ServiceType,
    pub ports: Vec<ValidatedPort>,
}

/// A `KafkaProducer`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedProducer {
    pub owner: Owner,
    pub cluster_ref: String,
    pub topics: Vec<TopicRef>,
    pub template: WorkloadTemplate,
    pub replicas: i32,
    pub service: Option<ValidatedService>,
}

/// Validates a `KafkaProducer`. Every problem is reported.
pub fn validate_producer(producer: &KafkaProducer) -> Result<ValidatedProducer, Vec<FieldError>> {
    let spec = &producer.spec;
    let mut errors = Vec::new();
    let name = name_of(
        producer.metadata.name.as_deref(),
        spec.service.is_some(),
        &mut errors,
    );
    check_cluster_ref(&spec.cluster_ref, "writes to", &mut errors);
    let topics = check_topics(&spec.topics, &mut errors);
    check_template(&spec.template, &producer_env_names(), &mut errors);
    check_replicas(spec.replicas, &mut errors);

    let service = spec.service.as_ref().map(|service| {
        if service.ports.is_empty() {
            errors.push(FieldError::new(
                "spec.service.ports",
                "must list at least one port (or leave spec.service unset for no Service)",
            ));
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut listening: BTreeMap<(i32, PortProtocol), usize> = BTreeMap::new();
        let ports = service
            .ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let path = format!("spec.service.ports[{i}]");
                let name = PortName::parse(&p.name)
                    .map_err(|why| {
                        errors.push(FieldError::new(
                            format!("{path}.name"),
                            format!("'{}' {why}", p.name),
                        ))
                    })
                    .ok();
                if name.is_some() {
                    if let Some(first) = names.insert(&p.name, i) {
                        names.insert(&p.name, first);
                        errors.push(FieldError::new(
                            format!("{path}.name"),
                            format!(
                                "'{}' is already used by spec.service.ports[{first}]",
                                p.name
                            ),
                        ));
                    }
                }
                for (field, value) in [("port", Some(p.port)), ("targetPort", p.target_port)] {
                    if let Some(v) = value.filter(|v| !(1..=65535).contains(v)) {
                        errors.push(FieldError::new(
                            format!("{path}.{field}"),
                            format!("must be between 1 and 65535, got {v}"),
                        ));
                    }
                }
                if let Some(first) = listening.insert((p.port, p.protocol), i) {
                    listening.insert((p.port, p.protocol), first);
                    errors.push(FieldError::new(
                        format!("{path}.port"),
                        format!(
                            "{}/{} is already used by spec.service.ports[{first}]",
                            p.port,
                            p.protocol.as_str()
                        ),
                    ));
                }
                Some(ValidatedPort {
                    name: name?,
                    port: p.port,
                    target_port: p.target_port.unwrap_or(p.port),
                    protocol: p.protocol,
                })
            })
            .collect();
        ValidatedService {
            type_: service.type_,
            ports,
        }
    });

    match name {
        Some(name) if errors.is_empty() => Ok(ValidatedProducer {
            owner: Owner::of(producer, &name),
            cluster_ref: spec.cluster_ref.clone(),
            topics,
            template: spec.template.clone(),
            replicas: spec.replicas,
            service,
        }),
        _ => Err(errors),
    }
}
