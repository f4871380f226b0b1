//! Every CRD Tributary serves, and their YAML as checked into `crds/`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{json, Value};

use super::{
    KafkaCluster, KafkaConsumer, KafkaOffsetReset, KafkaProducer, KafkaTopic, KafkaUser,
    StreamTopology,
};

/// All CRDs, in a stable order; the file name under `crds/` of each is `<plural>.<group>.yaml`.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        KafkaCluster::crd(),
        KafkaTopic::crd(),
        KafkaConsumer::crd(),
        KafkaProducer::crd(),
        StreamTopology::crd(),
        KafkaUser::crd(),
        KafkaOffsetReset::crd(),
    ]
}

/// The file name a CRD is checked in under, in `crds/`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as YAML.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_saphyr::to_string(crd).expect("a CRD always serializes")
}

/// Every CRD as one multi-document YAML stream, as `tributary crds` prints it.
pub fn all_yaml() -> String {
    all()
        .iter()
        .map(|crd| format!("---\n{}", to_yaml(crd)))
        .collect()
}

/// The OpenAPI schema a whole object of `kind` (a Tributary kind) is checked against before it
/// is typed: its CRD's, with `apiVersion`, `kind` and the fields of `metadata` a manifest sets
/// (the CRD leaves those to the API server). `None` for a kind Tributary does not serve.
pub fn schema(kind: &str) -> Option<&'static Value> {
    static SCHEMAS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(|| {
        let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
        let metadata = json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "generateName": {"type": "string"},
                "labels": strings,
                "annotations": strings,
            },
        });
        all()
            .into_iter()
            .filter_map(|crd| {
                let version = crd.spec.versions.first()?;
                let schema = version.schema.as_ref()?.open_api_v3_schema.as_ref()?;
                let mut schema = serde_json::to_value(schema).ok()?;
                let properties = schema.get_mut("properties")?.as_object_mut()?;
                properties.insert("metadata".into(), metadata.clone());
                properties.insert("apiVersion".into(), json!({"type": "string"}));
                properties.insert("kind".into(), json!({"type": "string"}));
                Some((crd.spec.names.kind, schema))
            })
            .collect()
    });
    schemas.get(kind)
}
