use std::fmt;

/// One problem with one field of one resource: `spec.partitions: must be >= 1, got 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path from the document root, e.g. `spec.config.retention.ms`.
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl FieldError {
    /// Problems as one line (`a: x; b: y`) for a status message, at most
    /// [`super::shape::MAX_REPORTED`] of them: hostile input (100,000 bad config keys) must not
    /// make a message the API server would refuse.
    pub fn join(errors: &[FieldError]) -> String {
        let mut parts: Vec<String> = errors
            .iter()
            .take(super::shape::MAX_REPORTED)
            .map(ToString::to_string)
            .collect();
        if errors.len() > super::shape::MAX_REPORTED {
            parts.push(format!(
                "and {} more problem(s)",
                errors.len() - super::shape::MAX_REPORTED
            ));
        }
        parts.join("; ")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #11, hostile input: a status message stays bounded however many problems.
    #[test]
    fn join_is_bounded() {
        let errors: Vec<FieldError> = (0..100_000)
            .map(|i| FieldError::new(format!("spec.config.k{i}"), "unknown config key"))
            .collect();
        let joined = FieldError::join(&errors);
        assert!(joined.len() < 4_000, "{}", joined.len());
        assert!(joined.ends_with("and 99950 more problem(s)"), "{joined}");
    }
}
