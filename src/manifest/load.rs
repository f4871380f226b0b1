use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Document, ManifestError, Resource, Source};
use crate::api::{
    KafkaCluster, KafkaConsumer, KafkaProducer, KafkaTopic, StreamTopology, API_VERSION, GROUP,
};

const KINDS: &str = "KafkaCluster, KafkaTopic, KafkaConsumer, KafkaProducer, StreamTopology";
const ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

/// Reads every `.yaml` / `.yml` file named, or found (recursively, in name order) under a
/// named directory. Returns the documents that parsed and every error of every file, so one
/// broken document does not hide the problems of the others.
pub fn load_paths(paths: &[PathBuf]) -> (Vec<Document>, Vec<ManifestError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        collect_files(p, &mut files, &mut errors);
    }
    let mut docs = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let (d, e) = load_str(&file, &text);
                docs.extend(d);
                errors.extend(e);
            }
            Err(e) => errors.push(file_error(&file, format!("cannot read: {e}"))),
        }
    }
    (docs, errors)
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<ManifestError>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push(file_error(path, format!("cannot read directory: {e}")));
                return;
            }
        };
        entries.sort();
        for entry in entries {
            let is_yaml = entry.extension().is_some_and(|x| x == "yaml" || x == "yml");
            if entry.is_dir() || is_yaml {
                collect_files(&entry, files, errors);
            }
        }
    } else if path.exists() {
        files.push(path.to_owned());
    } else {
        errors.push(file_error(path, "no such file or directory".into()));
    }
}

fn file_error(file: &Path, message: String) -> ManifestError {
    ManifestError {
        file: file.to_owned(),
        document: None,
        path: String::new(),
        message,
    }
}

/// Parses one multi-document YAML text: the documents that parsed, and an error for each
/// that did not. Empty documents are skipped (but counted).
pub fn load_str(file: &Path, text: &str) -> (Vec<Document>, Vec<ManifestError>) {
    let values: Vec<Value> = match serde_saphyr::from_multiple(text) {
        Ok(values) => values,
        Err(e) => {
            return (
                Vec::new(),
                vec![file_error(file, format!("YAML syntax error: {e}"))],
            )
        }
    };
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        let source = Source {
            file: file.to_owned(),
            document: i + 1,
        };
        match parse_document(value) {
            Ok(resource) => docs.push(Document { source, resource }),
            Err((path, message)) => errors.push(ManifestError {
                file: file.to_owned(),
                document: Some(source.document),
                path,
                message,
            }),
        }
    }
    (docs, errors)
}

fn parse_document(value: Value) -> Result<Resource, (String, String)> {
    let Value::Object(map) = &value else {
        return Err((
            String::new(),
            "a document must be a mapping with apiVersion, kind, metadata and spec".into(),
        ));
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    let api_version = text("apiVersion").ok_or_else(|| {
        (
            "apiVersion".to_owned(),
            format!("is required; use {API_VERSION}"),
        )
    })?;
    let kind =
        text("kind").ok_or_else(|| ("kind".to_owned(), format!("is required; one of {KINDS}")))?;
    if let Some(extra) = map.keys().find(|k| !ROOT_FIELDS.contains(&k.as_str())) {
        return Err((
            extra.clone(),
            format!(
                "unknown field; a resource has only {}",
                ROOT_FIELDS.join(", ")
            ),
        ));
    }
    let known_kind = matches!(
        kind.as_str(),
        "KafkaCluster" | "KafkaTopic" | "KafkaConsumer" | "KafkaProducer" | "StreamTopology"
    );
    if !known_kind {
        return Err(("kind".into(), format!("unknown kind '{kind}' (apiVersion {api_version}); Tributary reads {KINDS} of {API_VERSION}")));
    }
    if api_version != API_VERSION {
        let hint = if api_version.starts_with(&format!("{GROUP}/")) {
            format!("version not served; use {API_VERSION}")
        } else {
            format!("{kind} belongs to {API_VERSION}")
        };
        return Err(("apiVersion".into(), format!("'{api_version}': {hint}")));
    }
    if !map.contains_key("spec") {
        return Err(("spec".into(), "is required".into()));
    }
    match kind.as_str() {
        "KafkaCluster" => typed::<KafkaCluster>(value).map(Resource::Cluster),
        "KafkaConsumer" => typed::<KafkaConsumer>(value).map(Resource::Consumer),
        "KafkaProducer" => typed::<KafkaProducer>(value).map(Resource::Producer),
        "StreamTopology" => typed::<StreamTopology>(value).map(Resource::Topology),
        _ => typed::<KafkaTopic>(value).map(Resource::Topic),
    }
}

/// Deserializes with the failing field's path, and a fix where the mistake is a common one.
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let mut message = e.inner().to_string();
        if path.starts_with("spec.")
            && path.contains("config.")
            && message.contains("expected a string")
        {
            message.push_str("; config values are strings: quote the value, e.g. \"604800000\"");
        }
        let path = if path == "." { String::new() } else { path };
        (path, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        load_str(Path::new("t.yaml"), text)
            .1
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    const TOPIC: &str = "apiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata:\n  name: bookings\nspec:\n  clusterRef: local\n  partitions: 6\n";

    #[test]
    fn reads_multiple_documents() {
        let text = format!("---\n{TOPIC}---\n{}", TOPIC.replace("bookings", "refunds"));
        let (docs, errors) = load_str(Path::new("t.yaml"), &text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].source.to_string(), "t.yaml#2");
    }

    #[test]
    fn unknown_field_names_the_path() {
        let e = errors(&TOPIC.replace("partitions: 6", "partitons: 6"));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("t.yaml#1 spec.partitons: unknown field `partitons`, expected one of"),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_type_names_the_path() {
        let e = errors(&TOPIC.replace("partitions: 6", "partitions: six"));
        assert!(
            e[0].starts_with("t.yaml#1 spec.partitions: invalid type"),
            "{e:?}"
        );
    }

    #[test]
    fn unquoted_config_value_gets_a_fix() {
        let e = errors(&format!("{TOPIC}  config:\n    retention.ms: 604800000\n"));
        assert!(e[0].contains("spec.config.retention.ms"), "{e:?}");
        assert!(e[0].contains("quote the value"), "{e:?}");
    }

    #[test]
    fn bad_enum_value() {
        let e = errors(&format!("{TOPIC}  deletionPolicy: Purge\n"));
        assert!(
            e[0].starts_with("t.yaml#1 spec.deletionPolicy: unknown variant `Purge`"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_kind_and_version() {
        let e = errors(&TOPIC.replace("KafkaTopic", "KafkaTopix"));
        assert!(e[0].contains("kind: unknown kind 'KafkaTopix'"), "{e:?}");
        let e = errors(&TOPIC.replace("v1alpha1", "v1"));
        assert!(
            e[0].contains("apiVersion: 'tributary.io/v1': version not served"),
            "{e:?}"
        );
    }

    #[test]
    fn syntax_error_names_the_file() {
        let e = errors("kind: [unclosed\n");
        assert!(e[0].starts_with("t.yaml: YAML syntax error"), "{e:?}");
    }

    #[test]
    fn unknown_root_field() {
        let e = errors(&format!("{TOPIC}specs: {{}}\n"));
        assert!(e[0].starts_with("t.yaml#1 specs: unknown field"), "{e:?}");
    }
}
