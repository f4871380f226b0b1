//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`exists, `>`, `<`) and field
//! selectors (`=`, `==`, `!=` on `metadata.name`, `metadata.namespace` and the kind's
//! selectable fields).

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Clone, Debug, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

fn valid_key(key: &str) -> bool {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 {
                return false;
            }
            name
        }
        None => key,
    };
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Split at commas outside parentheses.
fn split_terms(s: &str) -> Result<Vec<String>, String> {
    let mut terms = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!(
                        "unable to parse requirement: unexpected ')' in {s:?}"
                    ));
                }
                cur.push(c);
            }
            ',' if depth == 0 => terms.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if depth != 0 {
        return Err(format!(
            "unable to parse requirement: unbalanced parentheses in {s:?}"
        ));
    }
    terms.push(cur);
    Ok(terms)
}

fn parse_set(rest: &str, term: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement: found '{rest}', expected: '(' in {term:?}")
        })?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
    for v in &values {
        if !valid_value(v) {
            return Err(format!(
                "unable to parse requirement: invalid label value: {v:?}"
            ));
        }
    }
    Ok(values)
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { reqs });
        }
        for term in split_terms(s)? {
            let t = term.trim();
            if t.is_empty() {
                return Err(format!(
                    "unable to parse requirement: empty requirement in {s:?}"
                ));
            }
            let req = if let Some(key) = t.strip_prefix('!') {
                Requirement {
                    key: key.trim().to_owned(),
                    op: Op::NotExists,
                }
            } else {
                let key_end = t
                    .find(|c: char| c.is_whitespace() || "=!<>(".contains(c))
                    .unwrap_or(t.len());
                let key = t[..key_end].to_owned();
                let rest = t[key_end..].trim_start();
                let op = if rest.is_empty() {
                    Op::Exists
                } else if let Some(v) = rest.strip_prefix("==") {
                    Op::Eq(v.trim().to_owned())
                } else if let Some(v) = rest.strip_prefix("!=") {
                    Op::NotEq(v.trim().to_owned())
                } else if let Some(v) = rest.strip_prefix('=') {
                    Op::Eq(v.trim().to_owned())
                } else if let Some(v) = rest.strip_prefix('>') {
                    Op::Gt(v.trim().parse().map_err(|_| {
                        format!("unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer: {t:?}")
                    })?)
                } else if let Some(v) = rest.strip_prefix('<') {
                    Op::Lt(v.trim().parse().map_err(|_| {
                        format!("unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer: {t:?}")
                    })?)
                } else if let Some(v) = rest.strip_prefix("notin") {
                    Op::NotIn(parse_set(v, t)?)
                } else if let Some(v) = rest.strip_prefix("in") {
                    Op::In(parse_set(v, t)?)
                } else {
                    return Err(format!(
                        "unable to parse requirement: unknown operator in {t:?}"
                    ));
                };
                if let Op::Eq(v) | Op::NotEq(v) = &op {
                    if !valid_value(v) {
                        return Err(format!(
                            "unable to parse requirement: invalid label value: {v:?}"
                        ));
                    }
                }
                Requirement { key, op }
            };
            if !valid_key(&req.key) {
                return Err(format!(
                    "unable to parse requirement: invalid label key {:?}",
                    req.key
                ));
            }
            reqs.push(req);
        }
        Ok(LabelSelector { reqs })
    }

    /// Whether an object (its `metadata.labels`) is selected.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| match &r.op {
            Op::Eq(v) => get(&r.key) == Some(v.as_str()),
            Op::NotEq(v) => get(&r.key) != Some(v.as_str()),
            Op::In(vs) => get(&r.key).is_some_and(|l| vs.iter().any(|v| v == l)),
            Op::NotIn(vs) => get(&r.key).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Op::Exists => get(&r.key).is_some(),
            Op::NotExists => get(&r.key).is_none(),
            Op::Gt(n) => get(&r.key)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            Op::Lt(n) => get(&r.key)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }
}

/// A parsed field selector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parse against the fields this kind supports (`metadata.name`, `metadata.namespace` and
    /// `extra`).
    pub fn parse(s: &str, extra: &[String]) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector { reqs });
        }
        for term in s.split(',') {
            let t = term.trim();
            let (field, eq, value) = if let Some((f, v)) = t.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = t.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = t.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{t}'; can't understand '{t}'"));
            };
            let field = field.trim().to_owned();
            if field != "metadata.name" && field != "metadata.namespace" && !extra.contains(&field)
            {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field, eq, value.trim().to_owned()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, value)| {
            let mut cur = Some(obj);
            for part in field.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *eq
        })
    }
}
