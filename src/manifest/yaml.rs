//! Multi-document YAML, read one document at a time.
//!
//! A file is streamed: each document becomes a JSON tree, is handed to the caller and dropped
//! before the next is read, so memory follows the largest document, not the file. Limits guard
//! against hostile input only, and apply per document (any number of documents may follow one
//! another): [`MAX_FILE_BYTES`] per file, [`MAX_NODES`] values and [`MAX_DEPTH`] levels of
//! nesting per document, and the YAML library's own caps on aliases (against "billion laughs").
//! A repeated key is a problem of its document, reported with its path like any other, and the
//! rest of the document and of the file is still read.

use std::cell::RefCell;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::model::FieldError;

/// A manifest file larger than this is refused (hostile or misplaced input).
pub const MAX_FILE_BYTES: usize = 256 * 1024 * 1024;
/// Values (scalars, lists, mappings) one document may hold.
pub const MAX_NODES: usize = 1_000_000;
/// Levels of nesting one document may hold.
pub const MAX_DEPTH: usize = 64;

/// One document as read: its tree, and the problems found reading it (repeated keys).
#[derive(Debug)]
pub struct RawDocument {
    pub value: Value,
    pub problems: Vec<FieldError>,
}

/// What stops reading a file, or one document of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line where it was found, when known.
    pub line: Option<u64>,
    pub message: String,
    /// Whether the rest of the file is lost (a syntax error or a limit), rather than only this
    /// document.
    pub fatal: bool,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_FILE_BYTES),
            max_nodes: MAX_NODES,
            max_events: 4 * MAX_NODES,
            max_depth: MAX_DEPTH,
        },
        // Repeated keys reach the tree builder, which reports them with their path.
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::PassThrough,
    }
}

/// Reads `reader` document by document, calling `each` with the 1-based document number and
/// the document (or why it could not be read). Empty documents are skipped. Stops after an
/// error that loses the rest of the file.
pub fn read_documents(
    mut reader: impl Read,
    mut each: impl FnMut(usize, Result<RawDocument, YamlError>),
) {
    let mut n = 0;
    for item in serde_saphyr::read_with_options::<_, RawDocument>(&mut reader, options()) {
        n += 1;
        match item {
            Ok(doc) => each(n, Ok(doc)),
            Err(e) => {
                let e = plain(&e);
                let fatal = e.fatal;
                each(n, Err(e));
                if fatal {
                    return;
                }
            }
        }
    }
}

/// The YAML library's error, said plainly: no Rust debug formatting, no snippet of the input
/// (it may hold a secret), and a limit named as a limit, not as a syntax error.
fn plain(e: &serde_saphyr::Error) -> YamlError {
    use serde_saphyr::budget::BudgetBreach as B;
    let e = e.without_snippet();
    let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
    let limit = |what: String| YamlError {
        line,
        message: format!(
            "{what}; this limit guards against hostile input: split the file or the document"
        ),
        fatal: true,
    };
    match e {
        serde_saphyr::Error::Budget { breach, .. } => match breach {
            B::Nodes { .. } | B::Events { .. } => {
                limit(format!("a document holds more than {MAX_NODES} values"))
            }
            B::Depth { .. } => limit(format!(
                "a document nests more than {MAX_DEPTH} levels deep"
            )),
            B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } => {
                limit("too many YAML aliases or anchors".into())
            }
            _ => limit("the file exceeds a size limit of the YAML reader".into()),
        },
        serde_saphyr::Error::IOError { cause } => YamlError {
            line: None,
            message: if cause.kind() == std::io::ErrorKind::FileTooLarge {
                format!(
                    "larger than {} MiB; this limit guards against hostile input: split the file",
                    MAX_FILE_BYTES / (1024 * 1024)
                )
            } else {
                format!("cannot read: {cause}")
            },
            fatal: true,
        },
        other => {
            let message = other.to_string();
            // Our own tree builder's errors concern one document; the parser's end the file.
            match message.strip_prefix(OWN) {
                Some(own) => YamlError {
                    line,
                    message: own
                        .split(" at line ")
                        .next()
                        .unwrap_or(own)
                        .trim()
                        .to_owned(),
                    fatal: false,
                },
                None => YamlError {
                    line,
                    message: format!("YAML syntax error: {}", strip_location(&message)),
                    fatal: true,
                },
            }
        }
    }
}

/// Marks the errors the tree builder raises itself.
const OWN: &str = "tributary: ";

fn strip_location(message: &str) -> String {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = message.split(" at line ").next().unwrap_or(message);
    // `line 3 column 5: …` leads the library's messages; the line is reported separately.
    match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_owned(),
        _ => message.to_owned(),
    }
}

impl<'de> serde::Deserialize<'de> for RawDocument {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let problems = RefCell::new(Vec::new());
        let value = Node {
            path: String::new(),
            problems: &problems,
        }
        .deserialize(d)?;
        Ok(RawDocument {
            value,
            problems: problems.into_inner(),
        })
    }
}

/// Builds one value of the tree, knowing its path (for the problems it finds).
struct Node<'a> {
    path: String,
    problems: &'a RefCell<Vec<FieldError>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        // Out of any field's range: kept as a decimal so the shape check names it.
        Ok(Number::from_f64(v as f64).map_or(Value::Null, Value::Number))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Number::from_f64(v as f64).map_or(Value::Null, Value::Number))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // `.nan` and `.inf` have no JSON form; they stay text, which no numeric field takes.
        Ok(Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::String(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let node = Node {
                path: format!("{}[{}]", self.path, items.len()),
                problems: self.problems,
            };
            match seq.next_element_seed(node)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let node = Node {
                path: path.clone(),
                problems: self.problems,
            };
            let value = map.next_value_seed(node)?;
            if out.contains_key(&key) {
                self.problems.borrow_mut().push(FieldError::new(
                    path,
                    "is given more than once in the same mapping; keep one",
                ));
            } else {
                out.insert(key, value);
            }
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key: any scalar, as text.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom(format!(
            "{OWN}a mapping key must be a plain value, not a list"
        )))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom(format!(
            "{OWN}a mapping key must be a plain value, not a mapping"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<(usize, Result<RawDocument, YamlError>)> {
        let mut out = Vec::new();
        read_documents(text.as_bytes(), |n, d| out.push((n, d)));
        out
    }

    #[test]
    fn ten_thousand_documents() {
        let text = "a: 1\n---\n".repeat(10_000);
        let docs = read(&text);
        assert_eq!(docs.len(), 10_000);
        assert!(docs.iter().all(|(_, d)| d.is_ok()));
    }

    #[test]
    fn a_repeated_key_is_a_problem_of_its_document_only() {
        let docs = read("a:\n  b: 1\n  b: 2\n  c: x\n---\nd: 1\n");
        assert_eq!(docs.len(), 2);
        let first = docs[0].1.as_ref().unwrap();
        assert_eq!(
            first.problems,
            [FieldError::new(
                "a.b",
                "is given more than once in the same mapping; keep one"
            )]
        );
        assert_eq!(first.value["a"]["c"], "x");
        assert!(docs[1].1.as_ref().unwrap().problems.is_empty());
    }

    #[test]
    fn syntax_errors_are_plain_and_name_their_line() {
        let docs = read("a: 1\n---\nb: [unclosed\n");
        let (n, Err(e)) = &docs[1] else {
            panic!("{docs:?}")
        };
        assert_eq!(*n, 2);
        assert!(e.fatal);
        assert!(e.message.starts_with("YAML syntax error: "), "{e}");
        assert!(e.line.is_some(), "{e:?}");
    }

    #[test]
    fn limits_are_named_as_limits() {
        let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
        let docs = read(&deep);
        let (_, Err(e)) = &docs[0] else {
            panic!("{docs:?}")
        };
        assert!(e.message.contains("hostile input"), "{e}");
        assert!(!e.message.contains("budget"), "{e}");
        assert!(!e.message.contains('{'), "{e}");
    }
}
