//! Every CRD Tributary serves, and their YAML as checked into `crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{KafkaCluster, KafkaConsumer, KafkaProducer, KafkaTopic, StreamTopology};

/// All CRDs, in a stable order; the file name under `crds/` of each is `<plural>.<group>.yaml`.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        KafkaCluster::crd(),
        KafkaTopic::crd(),
        KafkaConsumer::crd(),
        KafkaProducer::crd(),
        StreamTopology::crd(),
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
