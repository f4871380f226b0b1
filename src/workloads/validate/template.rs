//! `spec.template`, the pod template consumers and producers share: image, environment
//! (none of the names Tributary injects), labels, annotations, node selector, ServiceAccount.

use std::collections::BTreeMap;

use crate::api::WorkloadTemplate;
use crate::model::FieldError;
use crate::workloads::{LABEL_MANAGED_BY, LABEL_NAME};

/// Label and annotation prefix Tributary owns on the objects it renders.
const RESERVED_PREFIX: &str = "tributary.io/";
/// Longest image reference accepted (the CRD's `maxLength`, which also bounds the cost the API
/// server estimates for the CEL rule on it).
const MAX_IMAGE_LEN: usize = 1024;

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
        if let Err(why) = check_qualified_name(key) {
            errors.push(FieldError::new(
                p.clone(),
                format!("'{key}' is not a valid label key: {why}"),
            ));
        }
        if let Err(why) = check_label_value(value) {
            errors.push(FieldError::new(
                p,
                format!("'{value}' is not a valid label value: {why}"),
            ));
        }
    }
    for key in t.annotations.keys() {
        let p = path(&format!("annotations.{key}"));
        if key.starts_with(RESERVED_PREFIX) {
            errors.push(FieldError::new(
                p,
                format!("'{key}' is set by Tributary; use another key"),
            ));
        } else if let Err(why) = check_qualified_name(key) {
            errors.push(FieldError::new(
                p,
                format!("'{key}' is not a valid annotation key: {why}"),
            ));
        }
    }
    for (key, value) in &t.node_selector {
        let p = path(&format!("nodeSelector.{key}"));
        if let Err(why) = check_qualified_name(key) {
            errors.push(FieldError::new(
                p.clone(),
                format!("'{key}' is not a valid label key: {why}"),
            ));
        }
        if let Err(why) = check_label_value(value) {
            errors.push(FieldError::new(
                p,
                format!("'{value}' is not a valid label value: {why}"),
            ));
        }
    }
    if let Some(sa) = &t.service_account_name {
        if let Err(why) = check_dns_subdomain(sa) {
            errors.push(FieldError::new(
                path("serviceAccountName"),
                format!("'{sa}' is not a valid ServiceAccount name: {why}"),
            ));
        }
    }
}

/// `[prefix/]name` as Kubernetes label and annotation keys are.
pub(super) fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_dns_subdomain(prefix).map_err(|why| format!("prefix {why}"))?;
    }
    if name.is_empty() {
        return Err("the name part is empty".into());
    }
    check_label_value(name).map_err(|why| format!("name part {why}"))
}

/// At most 63 characters of `[A-Za-z0-9_.-]`, beginning and ending with a letter or digit
/// (or empty).
pub(super) fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!("is {} characters long; at most 63", value.len()));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "contains {bad:?}; use letters, digits, '-', '_' and '.'"
        ));
    }
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !edge(value.chars().next()) || !edge(value.chars().last()) {
        return Err("must begin and end with a letter or digit".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters of `[a-z0-9.-]`, beginning and ending with a
/// letter or digit.
fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!(
            "must be 1 to 253 characters long, got {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')))
    {
        return Err(format!(
            "contains {bad:?}; use lowercase letters, digits, '-' and '.'"
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(name.chars().next()) || !edge(name.chars().last()) {
        return Err("must begin and end with a letter or digit".into());
    }
    Ok(())
}
