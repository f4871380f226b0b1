use std::fmt;

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A topic name Kafka will accept: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`,
/// and not an internal name (starting with `__`, such as `__consumer_offsets`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(String);

impl TopicName {
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("must not be empty".into());
        }
        if name.len() > MAX_TOPIC_NAME_LEN {
            return Err(format!(
                "is {} characters long; Kafka allows at most {MAX_TOPIC_NAME_LEN}",
                name.len()
            ));
        }
        if name == "." || name == ".." {
            return Err(format!("'{name}' is reserved by Kafka"));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "'{name}' contains '{bad}'; Kafka topic names use only letters, digits, '.', '_' and '-'"
            ));
        }
        if name.starts_with("__") {
            return Err(format!(
                "'{name}' starts with '__', which Kafka reserves for internal topics"
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Kafka refuses two topics whose names differ only by '.' versus '_' (their metric
    /// names would collide). Two names with the same key collide.
    pub fn collision_key(&self) -> String {
        self.0.replace('.', "_")
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_legal_names() {
        for ok in [
            "bookings",
            "ride.requests.zone-7",
            "a",
            "A_b-c.d",
            &"x".repeat(249),
        ] {
            assert_eq!(TopicName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_illegal_names_with_the_reason() {
        assert!(TopicName::parse("").unwrap_err().contains("empty"));
        assert!(TopicName::parse(&"x".repeat(250))
            .unwrap_err()
            .contains("at most 249"));
        assert!(TopicName::parse("..").unwrap_err().contains("reserved"));
        assert!(TopicName::parse("orders/v1").unwrap_err().contains("'/'"));
        assert!(TopicName::parse("bad name").unwrap_err().contains("' '"));
        assert!(TopicName::parse("__consumer_offsets")
            .unwrap_err()
            .contains("internal"));
    }

    #[test]
    fn dot_and_underscore_collide() {
        let a = TopicName::parse("ride.requests").unwrap();
        let b = TopicName::parse("ride_requests").unwrap();
        assert_eq!(a.collision_key(), b.collision_key());
    }
}
