use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::yaml::read_documents;
use super::{Document, ManifestError, Resource, Source};
use crate::api::{API_VERSION, GROUP};
use crate::model::{shape, FieldError};

const KINDS: &str =
    "KafkaCluster, KafkaTopic, KafkaConsumer, KafkaProducer, StreamTopology, KafkaUser, KafkaOffsetReset";

/// Reads every `.yaml` / `.yml` file named, or found (recursively, in name order) under a
/// named directory. Returns the documents that could be typed and every error of every file, so
/// one broken document does not hide the problems of the others. A document with errors may
/// still be among the documents (its invalid fields removed, see [`Document::pruned`]) so that
/// [`super::validate`] reports its other problems too: act on the documents only when there is
/// no error.
pub fn load_paths(paths: &[PathBuf]) -> (Vec<Document>, Vec<ManifestError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        collect_files(p, &mut files, &mut errors);
    }
    let mut docs = Vec::new();
    for file in files {
        match std::fs::File::open(&file) {
            Ok(f) => load_reader(&file, std::io::BufReader::new(f), &mut docs, &mut errors),
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

/// Parses one multi-document YAML text: the documents that could be typed, and every problem
/// of every document. Empty documents are skipped (and not counted).
pub fn load_str(file: &Path, text: &str) -> (Vec<Document>, Vec<ManifestError>) {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    load_reader(file, text.as_bytes(), &mut docs, &mut errors);
    (docs, errors)
}

/// Reads one file document by document: each is typed (or refused) before the next is read.
fn load_reader(
    file: &Path,
    reader: impl std::io::Read,
    docs: &mut Vec<Document>,
    errors: &mut Vec<ManifestError>,
) {
    read_documents(reader, |n, raw| {
        let error = |path: String, message: String| ManifestError {
            file: file.to_owned(),
            document: Some(n),
            path,
            message,
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(ManifestError {
                    file: file.to_owned(),
                    document: if e.fatal { None } else { Some(n) },
                    path: String::new(),
                    message: match (e.fatal, e.line) {
                        (true, Some(line)) => format!("document {n}, line {line}: {}", e.message),
                        (true, None) => e.message,
                        (false, Some(line)) => format!("line {line}: {}", e.message),
                        (false, None) => e.message,
                    },
                });
                return;
            }
        };
        let source = Source {
            file: file.to_owned(),
            document: n,
        };
        let parsed = parse_document(raw.value);
        errors.extend(
            raw.problems
                .into_iter()
                .chain(parsed.problems)
                .map(|e| error(e.path, e.message)),
        );
        if let Some(resource) = parsed.resource {
            docs.push(Document {
                source,
                resource,
                pruned: parsed.pruned,
            });
        }
    });
}

/// One document, as far as it could be typed.
struct Parsed {
    /// `None` when the document cannot be typed at all.
    resource: Option<Resource>,
    problems: Vec<FieldError>,
    /// Paths removed from the document because they were invalid (reported in `problems`).
    pruned: Vec<String>,
}

impl Parsed {
    fn refused(path: &str, message: String) -> Self {
        Parsed {
            resource: None,
            problems: vec![FieldError::new(path, message)],
            pruned: Vec::new(),
        }
    }
}

fn parse_document(value: Value) -> Parsed {
    let Value::Object(map) = &value else {
        return Parsed::refused(
            "",
            "a document must be a mapping with apiVersion, kind, metadata and spec".into(),
        );
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(api_version) = text("apiVersion") else {
        return Parsed::refused("apiVersion", format!("is required; use {API_VERSION}"));
    };
    let Some(kind) = text("kind") else {
        return Parsed::refused("kind", format!("is required; one of {KINDS}"));
    };
    let Some(schema) = crate::api::crds::schema(&kind) else {
        return Parsed::refused(
            "kind",
            format!("unknown kind '{kind}' (apiVersion {api_version}); Tributary reads {KINDS} of {API_VERSION}"),
        );
    };
    if api_version != API_VERSION {
        let hint = if api_version.starts_with(&format!("{GROUP}/")) {
            format!("version not served; use {API_VERSION}")
        } else {
            format!("{kind} belongs to {API_VERSION}")
        };
        return Parsed::refused("apiVersion", format!("'{api_version}': {hint}"));
    }
    if !map.contains_key("spec") {
        return Parsed::refused("spec", "is required".into());
    }
    fn typed<K: DeserializeOwned>(value: Value, schema: &Value, wrap: fn(K) -> Resource) -> Parsed {
        let parsed = shape::parse::<K>(value, Some(schema));
        Parsed {
            resource: parsed.value.map(wrap),
            problems: parsed.problems,
            pruned: parsed.pruned,
        }
    }
    let mut parsed = match kind.as_str() {
        "KafkaCluster" => typed(value, schema, |k| Resource::Cluster(Box::new(k))),
        "KafkaConsumer" => typed(value, schema, |k| Resource::Consumer(Box::new(k))),
        "KafkaProducer" => typed(value, schema, |k| Resource::Producer(Box::new(k))),
        "StreamTopology" => typed(value, schema, |k| Resource::Topology(Box::new(k))),
        "KafkaUser" => typed(value, schema, |k| Resource::User(Box::new(k))),
        "KafkaOffsetReset" => typed(value, schema, |k| Resource::OffsetReset(Box::new(k))),
        _ => typed(value, schema, |k| Resource::Topic(Box::new(k))),
    };
    for p in &mut parsed.problems {
        if p.path.contains(".config.") && p.message.starts_with("must be a string, got") {
            p.message
                .push_str("; config values are strings: quote the value, e.g. \"604800000\"");
        }
    }
    parsed
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
        assert_eq!(e.len(), 2);
        assert_eq!(e[0], "t.yaml#1 spec.partitions: is required");
        assert!(
            e[1].starts_with(
                "t.yaml#1 spec.partitons: unknown field; the fields here are clusterRef, config,"
            ),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_type_names_the_path() {
        let e = errors(&TOPIC.replace("partitions: 6", "partitions: six"));
        assert_eq!(
            e,
            ["t.yaml#1 spec.partitions: must be an integer from -2147483648 to 2147483647, got a string"]
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
            e[0] == "t.yaml#1 spec.deletionPolicy: must be one of Retain, Delete",
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
        assert!(
            e[0].starts_with("t.yaml: document 1, line 1: YAML syntax error"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_root_field() {
        let e = errors(&format!("{TOPIC}specs: {{}}\n"));
        assert!(e[0].starts_with("t.yaml#1 specs: unknown field"), "{e:?}");
    }

    const CLUSTER: &str = "apiVersion: tributary.io/v1alpha1\nkind: KafkaCluster\nmetadata:\n  name: local\nspec:\n  bootstrapServers: [\"h:9092\"]\n";

    /// Issue #13, defect 1: a credential written in any wrong shape is refused without its
    /// value, and no message names a Rust type.
    #[test]
    fn credentials_in_the_wrong_shape_are_never_echoed() {
        let secret = "hunter2-s3cr3t";
        let sasl = |password: &str| {
            format!("{CLUSTER}  sasl:\n    mechanism: PLAIN\n    username: {{value: app}}\n    password: {password}\n")
        };
        let tls = |ca: &str| format!("{CLUSTER}  tls:\n    caCert: {ca}\n");
        let cases = [
            sasl(secret),
            sasl(&format!("\"{secret}\"")),
            sasl(&format!("[{secret}]")),
            sasl(&format!("{{{secret}}}")),
            sasl(&format!("{{value: {{v: {secret}}}}}")),
            sasl(&format!("{{secretKeyRef: {secret}}}")),
            sasl(&format!("{{file: [{secret}]}}")),
            sasl(&format!("{{secretKeyRef: {{name: s, key: [{secret}]}}}}")),
            sasl(&format!("{{secretKeyRef: {{name: s, key: k, {secret}: 1}}}}")),
            sasl("12345678"),
            tls(secret),
            tls(&format!("{{value: [{secret}]}}")),
            format!("{CLUSTER}  sasl:\n    mechanism: PLAIN\n    username: {secret}\n    password: {{file: /p}}\n"),
            format!("{CLUSTER}  sasl: {secret}\n"),
            format!("{CLUSTER}  tls: [{secret}]\n"),
        ];
        for case in cases {
            let e = errors(&case);
            assert!(!e.is_empty(), "{case}");
            for line in &e {
                for leak in [
                    secret,
                    "12345678",
                    "struct",
                    "expected",
                    "CredentialSource",
                    "i32",
                    "sequence",
                    "invalid type",
                ] {
                    assert!(!line.contains(leak), "{line:?} for\n{case}");
                }
            }
        }
        let e = errors(&sasl(secret));
        assert_eq!(
            e,
            ["t.yaml#1 spec.sasl.password: must be a mapping with one of value, secretKeyRef, file, got a string"]
        );
    }

    /// Issue #13, defect 8: every problem of a document at once, each with its path.
    #[test]
    fn every_problem_of_a_document_at_once() {
        let text = format!("{TOPIC}  deletionPolicy: Purge\n  replicationFactor: three\n  topicName: [a]\n  extra: 1\n");
        let e = errors(&text);
        assert_eq!(
            e,
            [
                "t.yaml#1 spec.deletionPolicy: must be one of Retain, Delete",
                "t.yaml#1 spec.extra: unknown field; the fields here are clusterRef, config, deletionPolicy, partitions, replicationFactor, topicName",
                "t.yaml#1 spec.replicationFactor: must be an integer from -2147483648 to 2147483647, got a string",
                "t.yaml#1 spec.topicName: must be a string, got a list",
            ]
        );
    }

    #[test]
    fn a_repeated_key_hides_nothing() {
        let text = format!(
            "{}  partitions: 3\n  deletionPolicy: Purge\n---\n{}",
            TOPIC,
            TOPIC.replace("partitions: 6", "partitions: x")
        );
        let e = errors(&text);
        assert_eq!(
            e,
            [
                "t.yaml#1 spec.partitions: is given more than once in the same mapping; keep one",
                "t.yaml#1 spec.deletionPolicy: must be one of Retain, Delete",
                "t.yaml#2 spec.partitions: must be an integer from -2147483648 to 2147483647, got a string",
            ]
        );
        for line in &e {
            assert!(
                !line.contains("DuplicateKeyPolicy") && !line.contains("option"),
                "{line}"
            );
        }
    }

    /// Issue #13, defect 3: a file of 10,000 documents loads.
    #[test]
    fn ten_thousand_documents_load() {
        let text: String = (0..10_000)
            .map(|i| format!("---\n{}", TOPIC.replace("bookings", &format!("t{i}"))))
            .collect();
        let (docs, errors) = load_str(Path::new("t.yaml"), &text);
        assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
        assert_eq!(docs.len(), 10_000);
        assert_eq!(docs[9_999].source.to_string(), "t.yaml#10000");
    }

    #[test]
    fn a_hostile_document_hits_a_plain_limit() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let e = errors(&format!("{TOPIC}---\n{deep}\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("t.yaml: document 2, line 9: a document nests more than 64 levels deep; this limit guards against hostile input"), "{e:?}");
    }
}
