//! Kubernetes names as types. Each newtype can only hold what the API server accepts in its
//! place, by the rules of apimachinery's validation package (`k8s.io/apimachinery/pkg/util/
//! validation`); the function each follows is named on the type. Every check of a Kubernetes
//! name, label, annotation key or Secret key in this crate goes through these types, so the
//! CLI's `validate`, `render` and the controllers refuse exactly what the API server would.
//!
//! A [`NameError`] says what is wrong and what is expected, without repeating the value: the
//! caller names the field and the value (`metadata.name: 'Orders' contains 'O'; use lowercase
//! letters, digits and '-'`).

use std::fmt;

use thiserror::Error;

/// Longest DNS label (RFC 1123), e.g. a Deployment or Service name.
pub const MAX_DNS_LABEL_LEN: usize = 63;
/// Longest DNS subdomain (RFC 1123), e.g. the name of most objects.
pub const MAX_DNS_SUBDOMAIN_LEN: usize = 253;
/// Longest label value, and longest name part of a label or annotation key.
pub const MAX_LABEL_VALUE_LEN: usize = 63;
/// Longest port name (an IANA service name).
pub const MAX_PORT_NAME_LEN: usize = 15;
/// Longest key of a Secret's or ConfigMap's data.
pub const MAX_DATA_KEY_LEN: usize = 253;
/// Most bytes the annotations of one object may take, keys and values together.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

const DNS_LABEL_CHARS: &str = "use lowercase letters, digits and '-'";
const DNS_SUBDOMAIN_CHARS: &str = "use lowercase letters, digits, '-' and '.'";
const LABEL_VALUE_CHARS: &str = "use letters, digits, '-', '_' and '.'";
const PORT_NAME_CHARS: &str = "port names use lowercase letters, digits and '-'";

/// Why a string is not a valid name of its kind. The message is the predicate of a sentence
/// whose subject the caller supplies (`'<value>' contains ' '; use …`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("is {len} characters long; at most {max}")]
    TooLong { len: usize, max: usize },
    /// `advice` says which characters are allowed.
    #[error("contains {found:?}; {advice}")]
    Character { found: char, advice: &'static str },
    #[error("must begin and end with a letter or digit")]
    Edge,
    #[error("must begin with a letter")]
    LetterFirst,
    /// `a..b`: a DNS subdomain is DNS labels joined by single dots.
    #[error("contains \"..\"; every '.'-separated part needs at least one letter or digit")]
    EmptyPart,
    /// `a.-b`: a part of a DNS subdomain does not begin or end with a letter or digit.
    #[error(
        "has the part '{part}'; every '.'-separated part must begin and end with a letter or digit"
    )]
    PartEdge { part: String },
    #[error("must contain at least one letter")]
    NoLetter,
    #[error("must not begin or end with '-' or contain '--'")]
    Hyphens,
    #[error("must not be '.' or begin with '..'")]
    Dots,
    #[error("has an empty prefix before '/'; a key is name or prefix/name")]
    EmptyPrefix,
    #[error("contains more than one '/'; a key is name or prefix/name")]
    Slashes,
    /// The prefix of a label or annotation key is not a DNS subdomain.
    #[error("prefix {0}")]
    Prefix(Box<NameError>),
    #[error("the name part is empty")]
    EmptyNamePart,
    /// The name part of a label or annotation key is not valid.
    #[error("name part {0}")]
    NamePart(Box<NameError>),
}

/// The annotations of one object take more bytes than Kubernetes allows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("take {bytes} bytes; the annotations of one object, keys and values together, may take at most {MAX_ANNOTATIONS_BYTES}")]
pub struct AnnotationsTooLarge {
    pub bytes: usize,
}

/// Checks the total size of an object's annotations as the API server does (the bytes of
/// every key and value).
pub fn check_annotations_size<'a>(
    annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), AnnotationsTooLarge> {
    let bytes = annotations
        .into_iter()
        .map(|(key, value)| key.len() + value.len())
        .sum();
    if bytes > MAX_ANNOTATIONS_BYTES {
        Err(AnnotationsTooLarge { bytes })
    } else {
        Ok(())
    }
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn dns_char(c: char) -> bool {
    lower_alnum(c) || c == '-'
}

fn label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// At most `max` characters, each `allowed`. A character outside ASCII is reported before the
/// length, so the length counts characters.
fn check_chars(
    value: &str,
    max: usize,
    allowed: fn(char) -> bool,
    advice: &'static str,
) -> Result<(), NameError> {
    if let Some(found) = value.chars().find(|c| !c.is_ascii()) {
        return Err(NameError::Character { found, advice });
    }
    if value.len() > max {
        return Err(NameError::TooLong {
            len: value.len(),
            max,
        });
    }
    match value.chars().find(|c| !allowed(*c)) {
        Some(found) => Err(NameError::Character { found, advice }),
        None => Ok(()),
    }
}

/// Non-empty, and its first and last characters are `alnum`.
fn alnum_ends(value: &str, alnum: fn(char) -> bool) -> bool {
    value.chars().next().is_some_and(alnum) && value.chars().last().is_some_and(alnum)
}

fn check_dns_label(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    check_chars(value, MAX_DNS_LABEL_LEN, dns_char, DNS_LABEL_CHARS)?;
    if !alnum_ends(value, lower_alnum) {
        return Err(NameError::Edge);
    }
    Ok(())
}

fn check_dns_subdomain(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    check_chars(
        value,
        MAX_DNS_SUBDOMAIN_LEN,
        |c| dns_char(c) || c == '.',
        DNS_SUBDOMAIN_CHARS,
    )?;
    if !alnum_ends(value, lower_alnum) {
        return Err(NameError::Edge);
    }
    for part in value.split('.') {
        if part.is_empty() {
            return Err(NameError::EmptyPart);
        }
        if !alnum_ends(part, lower_alnum) {
            return Err(NameError::PartEdge {
                part: part.to_owned(),
            });
        }
    }
    Ok(())
}

fn check_label_value(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Ok(());
    }
    check_chars(value, MAX_LABEL_VALUE_LEN, label_char, LABEL_VALUE_CHARS)?;
    if !alnum_ends(value, |c| c.is_ascii_alphanumeric()) {
        return Err(NameError::Edge);
    }
    Ok(())
}

fn check_qualified_name(value: &str) -> Result<(), NameError> {
    let mut parts = value.split('/');
    let (prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, _) => (None, name),
        (Some(prefix), Some(name), None) => (Some(prefix), name),
        _ => return Err(NameError::Slashes),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(NameError::EmptyPrefix);
        }
        check_dns_subdomain(prefix).map_err(|e| NameError::Prefix(Box::new(e)))?;
    }
    if name.is_empty() {
        return Err(NameError::EmptyNamePart);
    }
    check_label_value(name).map_err(|e| NameError::NamePart(Box::new(e)))
}

fn check_port_name(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    check_chars(value, MAX_PORT_NAME_LEN, dns_char, PORT_NAME_CHARS)?;
    if !value.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(NameError::NoLetter);
    }
    if value.starts_with('-') || value.ends_with('-') || value.contains("--") {
        return Err(NameError::Hyphens);
    }
    Ok(())
}

fn check_data_key(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    check_chars(value, MAX_DATA_KEY_LEN, label_char, LABEL_VALUE_CHARS)?;
    if value == "." || value.starts_with("..") {
        return Err(NameError::Dots);
    }
    Ok(())
}

/// The common surface of the name types: parsing from `&str` and `String`, the text back.
macro_rules! name_type {
    ($ty:ident, $check:ident) => {
        impl $ty {
            /// The value, if it is valid; else what is wrong with it.
            pub fn parse(value: &str) -> Result<Self, NameError> {
                $check(value).map(|()| Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = NameError;

            fn try_from(value: &str) -> Result<Self, NameError> {
                Self::parse(value)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;

            fn try_from(value: String) -> Result<Self, NameError> {
                $check(&value).map(|()| Self(value))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// A DNS label (RFC 1123), as `IsDNS1123Label`: 1 to 63 lowercase letters, digits and '-',
/// beginning and ending with a letter or digit. Names of Deployments and Services, of
/// topologies (their name starts every child's name), and anything that is also a label value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsLabel(String);
name_type!(DnsLabel, check_dns_label);

impl DnsLabel {
    /// A DNS label that also begins with a letter (RFC 1035, `IsDNS1035Label`), as a Service's
    /// name must.
    pub fn parse_rfc1035(value: &str) -> Result<Self, NameError> {
        let label = Self::parse(value)?;
        if label.0.starts_with(|c: char| c.is_ascii_lowercase()) {
            Ok(label)
        } else {
            Err(NameError::LetterFirst)
        }
    }
}

/// A DNS subdomain (RFC 1123), as `IsDNS1123Subdomain`: at most 253 characters of DNS labels
/// joined by single dots, so `a..b`, `a.-b` and `.a` are refused (the parts have no length
/// limit of their own in Kubernetes). The names of most objects — `KafkaTopic`s,
/// ServiceAccounts, Secrets — and the prefix of a label or annotation key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsSubdomain(String);
name_type!(DnsSubdomain, check_dns_subdomain);

/// A label value, as `IsValidLabelValue`: empty, or at most 63 letters, digits, '-', '_' and
/// '.', beginning and ending with a letter or digit.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelValue(String);
name_type!(LabelValue, check_label_value);

/// A label or annotation key, as `IsQualifiedName`: `name` or `prefix/name`, the prefix a DNS
/// subdomain and the name a non-empty label value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName(String);
name_type!(QualifiedName, check_qualified_name);

/// A port name, as `IsValidPortName` (an IANA service name): 1 to 15 lowercase letters,
/// digits and '-', at least one letter, no '-' at either end and no '--'.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortName(String);
name_type!(PortName, check_port_name);

/// A key of a Secret's (or ConfigMap's) data, as `IsConfigMapKey`: 1 to 253 letters, digits,
/// '-', '_' and '.', not `.` and not beginning with `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataKey(String);
name_type!(DataKey, check_data_key);

/// Every DNS label is a DNS subdomain.
impl From<DnsLabel> for DnsSubdomain {
    fn from(label: DnsLabel) -> Self {
        Self(label.0)
    }
}

/// Every DNS label is a label value.
impl From<DnsLabel> for LabelValue {
    fn from(label: DnsLabel) -> Self {
        Self(label.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;
    use std::sync::LazyLock;

    fn why<T>(parsed: Result<T, NameError>) -> String {
        match parsed {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn dns_labels() {
        for ok in ["a", "0", "a-b", "a--b", "1st", &"a".repeat(63)] {
            assert_eq!(DnsLabel::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(why(DnsLabel::parse("")), "must not be empty");
        assert_eq!(
            why(DnsLabel::parse(&"a".repeat(64))),
            "is 64 characters long; at most 63"
        );
        assert_eq!(
            why(DnsLabel::parse("Orders")),
            "contains 'O'; use lowercase letters, digits and '-'"
        );
        for bad in ["a.b", "a..b", "a_b", "."] {
            assert!(why(DnsLabel::parse(bad)).starts_with("contains '"), "{bad}");
        }
        for bad in ["-a", "a-", "-"] {
            assert_eq!(
                why(DnsLabel::parse(bad)),
                "must begin and end with a letter or digit"
            );
        }
        assert_eq!(
            why(DnsLabel::parse("café")),
            "contains 'é'; use lowercase letters, digits and '-'"
        );
    }

    #[test]
    fn rfc1035_labels_begin_with_a_letter() {
        assert!(DnsLabel::parse_rfc1035("web-1").is_ok());
        assert_eq!(
            why(DnsLabel::parse_rfc1035("1st-web")),
            "must begin with a letter"
        );
        assert_eq!(
            why(DnsLabel::parse_rfc1035("Web")),
            "contains 'W'; use lowercase letters, digits and '-'"
        );
    }

    #[test]
    fn dns_subdomains() {
        for ok in [
            "a",
            "a.b",
            "shop-orders.v1",
            "a0.0b",
            &"a".repeat(253),
            &format!("{}.b", "a".repeat(100)),
        ] {
            assert_eq!(DnsSubdomain::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(
            why(DnsSubdomain::parse("a..b")),
            "contains \"..\"; every '.'-separated part needs at least one letter or digit"
        );
        assert_eq!(
            why(DnsSubdomain::parse("a.-b")),
            "has the part '-b'; every '.'-separated part must begin and end with a letter or digit"
        );
        assert_eq!(
            why(DnsSubdomain::parse("a-.b")),
            "has the part 'a-'; every '.'-separated part must begin and end with a letter or digit"
        );
        for bad in [".", ".a", "a.", "-a", "a-"] {
            assert_eq!(
                why(DnsSubdomain::parse(bad)),
                "must begin and end with a letter or digit",
                "{bad}"
            );
        }
        assert_eq!(
            why(DnsSubdomain::parse(&"a".repeat(254))),
            "is 254 characters long; at most 253"
        );
        assert_eq!(
            why(DnsSubdomain::parse("Analytics")),
            "contains 'A'; use lowercase letters, digits, '-' and '.'"
        );
        assert_eq!(
            why(DnsSubdomain::parse("a_b")),
            "contains '_'; use lowercase letters, digits, '-' and '.'"
        );
    }

    #[test]
    fn label_values() {
        for ok in [
            "",
            "a",
            "A",
            "a.b",
            "a..b",
            "a_b",
            "a-b",
            "Z9",
            &"x".repeat(63),
        ] {
            assert_eq!(LabelValue::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(
            why(LabelValue::parse(&"x".repeat(64))),
            "is 64 characters long; at most 63"
        );
        for bad in ["-a", "a-", ".", "_", "a.", "_a"] {
            assert_eq!(
                why(LabelValue::parse(bad)),
                "must begin and end with a letter or digit",
                "{bad}"
            );
        }
        assert_eq!(
            why(LabelValue::parse("data platform")),
            "contains ' '; use letters, digits, '-', '_' and '.'"
        );
        assert_eq!(
            why(LabelValue::parse("a/b")),
            "contains '/'; use letters, digits, '-', '_' and '.'"
        );
    }

    #[test]
    fn qualified_names() {
        for ok in [
            "team",
            "app.kubernetes.io/part-of",
            "example.com/Some_Key.2",
            "x",
        ] {
            assert!(QualifiedName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            why(QualifiedName::parse("Example.com/x")),
            "prefix contains 'E'; use lowercase letters, digits, '-' and '.'"
        );
        assert_eq!(
            why(QualifiedName::parse("a..b/x")),
            "prefix contains \"..\"; every '.'-separated part needs at least one letter or digit"
        );
        assert_eq!(
            why(QualifiedName::parse("example.com/")),
            "the name part is empty"
        );
        assert_eq!(why(QualifiedName::parse("")), "the name part is empty");
        assert_eq!(
            why(QualifiedName::parse("/x")),
            "has an empty prefix before '/'; a key is name or prefix/name"
        );
        assert_eq!(
            why(QualifiedName::parse("a/b/c")),
            "contains more than one '/'; a key is name or prefix/name"
        );
        assert_eq!(
            why(QualifiedName::parse("-x")),
            "name part must begin and end with a letter or digit"
        );
        assert_eq!(
            why(QualifiedName::parse(&format!("a/{}", "x".repeat(64)))),
            "name part is 64 characters long; at most 63"
        );
    }

    #[test]
    fn port_names() {
        for ok in ["http", "http-2", "a1", &"a".repeat(15)] {
            assert!(PortName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            why(PortName::parse("Metrics_1")),
            "contains 'M'; port names use lowercase letters, digits and '-'"
        );
        assert_eq!(
            why(PortName::parse("8080")),
            "must contain at least one letter"
        );
        for bad in ["a--b", "-a", "a-"] {
            assert_eq!(
                why(PortName::parse(bad)),
                "must not begin or end with '-' or contain '--'"
            );
        }
        assert_eq!(
            why(PortName::parse(&"a".repeat(16))),
            "is 16 characters long; at most 15"
        );
        assert_eq!(why(PortName::parse("")), "must not be empty");
    }

    #[test]
    fn data_keys() {
        for ok in [
            "password", "tls.crt", ".hidden", "a..b", "_x", "-", "A_b-c.d",
        ] {
            assert!(DataKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in [".", "..", "..x"] {
            assert_eq!(
                why(DataKey::parse(bad)),
                "must not be '.' or begin with '..'"
            );
        }
        assert_eq!(
            why(DataKey::parse("a/b")),
            "contains '/'; use letters, digits, '-', '_' and '.'"
        );
        assert_eq!(why(DataKey::parse("")), "must not be empty");
    }

    #[test]
    fn conversions_and_text() {
        let label = DnsLabel::try_from("orders").unwrap();
        assert_eq!(label, "orders");
        assert_eq!(label.to_string(), "orders");
        assert_eq!(label.as_ref(), "orders");
        assert_eq!(DnsSubdomain::from(label.clone()), "orders");
        assert_eq!(LabelValue::from(label.clone()), "orders");
        assert_eq!(String::from(label), "orders");
        assert_eq!(
            DnsSubdomain::try_from("a..b".to_owned()),
            Err(NameError::EmptyPart)
        );
    }

    #[test]
    fn annotation_size() {
        let value = "x".repeat(MAX_ANNOTATIONS_BYTES - 1);
        assert!(check_annotations_size([("k", value.as_str())]).is_ok());
        assert_eq!(
            check_annotations_size([("k", value.as_str()), ("l", "")]),
            Err(AnnotationsTooLarge {
                bytes: MAX_ANNOTATIONS_BYTES + 1
            })
        );
    }

    /// The rules as apimachinery writes them: a regular expression and a length.
    struct Reference {
        label: Regex,
        subdomain: Regex,
        label_value: Regex,
        port: Regex,
        data_key: Regex,
    }

    impl Reference {
        fn new() -> Self {
            let label = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
            let value = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
            Self {
                label: Regex::new(&format!("^{label}$")).unwrap(),
                subdomain: Regex::new(&format!(r"^{label}(\.{label})*$")).unwrap(),
                label_value: Regex::new(&format!("^{value}$")).unwrap(),
                port: Regex::new("^[-a-z0-9]+$").unwrap(),
                data_key: Regex::new("^[-._a-zA-Z0-9]+$").unwrap(),
            }
        }

        fn label(&self, s: &str) -> bool {
            s.len() <= 63 && self.label.is_match(s)
        }

        fn subdomain(&self, s: &str) -> bool {
            s.len() <= 253 && self.subdomain.is_match(s)
        }

        fn label_value(&self, s: &str) -> bool {
            s.len() <= 63 && self.label_value.is_match(s)
        }

        fn qualified_name(&self, s: &str) -> bool {
            let parts: Vec<&str> = s.split('/').collect();
            let (prefix, name) = match parts[..] {
                [name] => (None, name),
                [prefix, name] => (Some(prefix), name),
                _ => return false,
            };
            prefix.is_none_or(|p| self.subdomain(p)) && !name.is_empty() && self.label_value(name)
        }

        fn port(&self, s: &str) -> bool {
            s.len() <= 15
                && self.port.is_match(s)
                && s.contains(|c: char| c.is_ascii_lowercase())
                && !s.starts_with('-')
                && !s.ends_with('-')
                && !s.contains("--")
        }

        fn data_key(&self, s: &str) -> bool {
            s.len() <= 253 && self.data_key.is_match(s) && s != "." && !s.starts_with("..")
        }
    }

    static REFERENCE: LazyLock<Reference> = LazyLock::new(Reference::new);

    /// Strings near every edge of the rules: short runs of the characters that matter, runs
    /// around the length limits, and anything at all.
    fn tricky() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9.-]{0,12}",
            "[a-zA-Z0-9._/ -]{0,12}",
            "[a-z0-9-]{60,66}",
            "[a-z0-9.]{60,66}/[a-z-]{0,3}",
            "[a-z0-9.-]{250,256}",
            "[a-z0-9]{1,3}([.-]{1,2}[a-z0-9]{1,3}){0,4}",
            "\\PC{0,8}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_type_accepts_exactly_what_apimachinery_accepts(s in tricky()) {
            let r = &*REFERENCE;
            prop_assert_eq!(DnsLabel::parse(&s).is_ok(), r.label(&s));
            prop_assert_eq!(
                DnsLabel::parse_rfc1035(&s).is_ok(),
                r.label(&s) && s.starts_with(|c: char| c.is_ascii_lowercase())
            );
            prop_assert_eq!(DnsSubdomain::parse(&s).is_ok(), r.subdomain(&s));
            prop_assert_eq!(LabelValue::parse(&s).is_ok(), r.label_value(&s));
            prop_assert_eq!(QualifiedName::parse(&s).is_ok(), r.qualified_name(&s));
            prop_assert_eq!(PortName::parse(&s).is_ok(), r.port(&s));
            prop_assert_eq!(DataKey::parse(&s).is_ok(), r.data_key(&s));
        }
    }
}
