//! Whether an object the API server holds already carries everything Tributary would apply:
//! the test that keeps an idle operator from writing. Only the fields of the desired object
//! count (what Tributary manages); what the API server or other managers add (defaults,
//! status, other labels) is ignored. Resource quantities compare by value (`0.5` = `500m`),
//! since the API server stores them in canonical form.

use serde_json::Value;

/// Whether `have` contains every field of `want` with an equal value.
pub fn contains(have: &Value, want: &Value) -> bool {
    contains_at(have, want, false)
}

fn contains_at(have: &Value, want: &Value, quantities: bool) -> bool {
    match (have, want) {
        (_, Value::Null) => true,
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(key, w)| {
            // Under `resources` (limits, requests) values are quantities.
            let quantities = quantities || key == "resources";
            match h.get(key) {
                Some(h) => contains_at(h, w, quantities),
                // The API server drops empty lists and maps: asking for one is asking for none.
                None => empty(w),
            }
        }),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(h, w)| contains_at(h, w, quantities))
        }
        (Value::String(h), Value::String(w)) if quantities && h != w => {
            matches!((quantity(h), quantity(w)), (Some(a), Some(b)) if (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()))
        }
        (Value::Number(h), Value::Number(w)) => h.as_f64() == w.as_f64(),
        (Value::Number(h), Value::String(w)) | (Value::String(w), Value::Number(h))
            if quantities =>
        {
            quantity(w).is_some_and(|w| Some(w) == h.as_f64())
        }
        _ => have == want,
    }
}

/// `null`, `[]` or `{}`.
fn empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The value of a Kubernetes resource quantity (`500m`, `1.5Gi`, `2e3`), if it is one.
fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let e: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn what_the_server_adds_is_ignored() {
        let want = json!({"metadata": {"name": "a", "labels": {"x": "1"}},
                          "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let have = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1", "other": "y"}},
                          "spec": {"replicas": 2, "revisionHistoryLimit": 10,
                                   "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always"}]}}},
                          "status": {"readyReplicas": 2}});
        assert!(contains(&have, &want));
    }

    #[test]
    fn a_managed_field_changed_or_missing_is_a_difference() {
        let want = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}}}});
        let fewer = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}}}});
        let edited = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "2"}]}]}}}});
        let extra = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B"}]}]}}}});
        let missing = json!({"spec": {"replicas": 3}});
        for have in [fewer, edited, extra, missing] {
            assert!(!contains(&have, &want), "{have}");
        }
    }

    #[test]
    fn quantities_compare_by_value_only_under_resources() {
        let want = json!({"resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}, "requests": {"cpu": 1}}, "env": [{"value": "1k"}]});
        let canonical = json!({"resources": {"limits": {"cpu": "500m", "memory": "1073741824"}, "requests": {"cpu": "1"}}, "env": [{"value": "1k"}]});
        assert!(contains(&canonical, &want));
        let more = json!({"resources": {"limits": {"cpu": "600m", "memory": "1Gi"}, "requests": {"cpu": "1"}}, "env": [{"value": "1k"}]});
        assert!(!contains(&more, &want));
        let env = json!({"resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}, "requests": {"cpu": 1}}, "env": [{"value": "1000"}]});
        assert!(
            !contains(&env, &want),
            "outside resources a string is a string"
        );
    }

    #[test]
    fn an_empty_list_or_map_matches_one_the_server_dropped() {
        let want = json!({"spec": {"env": [], "labels": {}, "replicas": 1}});
        assert!(contains(&json!({"spec": {"replicas": 1}}), &want));
        assert!(
            !contains(&json!({"spec": {}}), &want),
            "replicas is not empty"
        );
        let set = json!({"spec": {"env": [{"name": "A"}]}});
        assert!(!contains(&json!({"spec": {}}), &set));
    }

    #[test]
    fn quantity_forms() {
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2Ki"), Some(2048.0));
        assert_eq!(quantity("1.5G"), Some(1.5e9));
        assert_eq!(quantity("2e3"), Some(2000.0));
        assert_eq!(quantity("12"), Some(12.0));
        assert_eq!(quantity("lots"), None);
        assert_eq!(quantity("1x"), None);
    }
}
