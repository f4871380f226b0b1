//! `spec.template`, the pod template consumers and producers share: image, environment
//! (none of the names Tributary injects), labels, annotations, node selector, ServiceAccount.

use std::collections::BTreeMap;

use crate::api::WorkloadTemplate;
use crate::model::{check_annotations_size, DnsSubdomain, FieldError, LabelValue, QualifiedName};
use crate::workloads::{ANNOTATION_CONNECTION_HASH, LABEL_MANAGED_BY, LABEL_NAME};

/// Label and annotation prefix Tributary owns on the objects it renders.
const RESERVED_PREFIX: &str = "tributary.io/";
/// Longest image reference accepted (the CRD's `maxLength`, which also bounds the cost the API
/// server estimates for the CEL rule on it).
const MAX_IMAGE_LEN: usize = 1024;
/// Length of the connection hash annotated on the pods (`ConnectionFacts::hash`).
const CONNECTION_HASH_LEN: usize = 16;

pub(super) fn check_template(
    t: &WorkloadTemplate,
    injected: &[&str],
    errors: &mut Vec<FieldError>,
) {
    let path = |field: &str| format!("spec.template.{field}");
    if t.image.trim().is_empty() {
        errors.push(FieldError::new(
            path("image"),
            "must name a container image",
        ));
    } else if t.image.len() > MAX_IMAGE_LEN {
        errors.push(FieldError::new(
            path("image"),
            format!(
                "is {} characters long; an image reference has at most {MAX_IMAGE_LEN}",
                t.image.len()
            ),
        ));
    } else if t.image.chars().any(char::is_whitespace) {
        errors.push(FieldError::new(
            path("image"),
            format!(
                "'{}' contains whitespace; an image reference has none",
                t.image
            ),
        ));
    }

    let mut env_names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, var) in t.env.iter().enumerate() {
        let p = path(&format!("env[{i}]"));
        if var.name.is_empty() {
            errors.push(FieldError::new(format!("{p}.name"), "is required"));
        } else if let Some(bad) = var
            .name
            .chars()
            .find(|c| *c == '=' || !(c.is_ascii_graphic() || *c == ' '))
        {
            errors.push(FieldError::new(
                format!("{p}.name"),
                format!(
                    "'{}' contains {bad:?}; use printable ASCII without '='",
                    var.name
                ),
            ));
        } else if injected.contains(&var.name.as_str()) {
            errors.push(FieldError::new(
                format!("{p}.name"),
                format!(
                    "'{}' is set by Tributary from the KafkaCluster and spec; remove it or use another name",
                    var.name
                ),
            ));
        } else if let Some(first) = env_names.get(var.name.as_str()) {
            errors.push(FieldError::new(
                format!("{p}.name"),
                format!(
                    "'{}' is already set by spec.template.env[{first}]",
                    var.name
                ),
            ));
        } else {
            env_names.insert(&var.name, i);
        }
        if var.value.is_some() && var.value_from.is_some() {
            errors.push(FieldError::new(p, "set value or valueFrom, not both"));
        }
    }

    for (key, value) in &t.labels {
        let p = path(&format!("labels.{key}"));
        if key == LABEL_NAME || key == LABEL_MANAGED_BY || key.starts_with(RESERVED_PREFIX) {
            errors.push(FieldError::new(
                p,
                format!("'{key}' is set by Tributary; use another key"),
            ));
            continue;
        }
        check_label(&p, key, value, errors);
    }
    for key in t.annotations.keys() {
        let p = path(&format!("annotations.{key}"));
        if key.starts_with(RESERVED_PREFIX) {
            errors.push(FieldError::new(
                p,
                format!("'{key}' is set by Tributary; use another key"),
            ));
        } else if let Err(why) = QualifiedName::parse(key) {
            errors.push(FieldError::new(
                p,
                format!("'{key}' is not a valid annotation key: {why}"),
            ));
        }
    }
    // The pods carry these annotations and the connection hash (16 hex digits).
    let hash = "0".repeat(CONNECTION_HASH_LEN);
    let annotations = t.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if let Err(why) =
        check_annotations_size(annotations.chain([(ANNOTATION_CONNECTION_HASH, hash.as_str())]))
    {
        errors.push(FieldError::new(
            path("annotations"),
            format!("with {ANNOTATION_CONNECTION_HASH}, the pods' annotations {why}"),
        ));
    }
    for (key, value) in &t.node_selector {
        check_label(&path(&format!("nodeSelector.{key}")), key, value, errors);
    }
    if let Some(sa) = &t.service_account_name {
        if let Err(why) = DnsSubdomain::parse(sa) {
            errors.push(FieldError::new(
                path("serviceAccountName"),
                format!("'{sa}' is not a valid ServiceAccount name: {why}"),
            ));
        }
    }
}

/// A label (or node selector term): a qualified key and a label value.
fn check_label(path: &str, key: &str, value: &str, errors: &mut Vec<FieldError>) {
    if let Err(why) = QualifiedName::parse(key) {
        errors.push(FieldError::new(
            path,
            format!("'{key}' is not a valid label key: {why}"),
        ));
    }
    if let Err(why) = LabelValue::parse(value) {
        errors.push(FieldError::new(
            path,
            format!("'{value}' is not a valid label value: {why}"),
        ));
    }
}
