//! Get and list: selectors, pagination with continue tokens, point-in-time lists from the
//! history.

use serde_json::{json, Value};

use super::object::{hex, parse_rv, present, unhex};
use super::{ApiError, Result};
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{ObjKey, State};

impl State {
    pub fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value> {
        self.objects
            .get(&self.key(rt, ns, name))
            .map(|s| present(rt, s.value.clone()))
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
        resource_version: Option<&str>,
        exact: bool,
    ) -> Result<Value> {
        let (at, after) = match continue_token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let mut parts = token.splitn(3, ':');
                let rv = parts.next().and_then(parse_rv);
                let ns = parts.next().and_then(unhex);
                let name = parts.next().and_then(unhex);
                match (rv, ns, name) {
                    (Some(rv), Some(ns), Some(name)) => (rv, Some((ns, name))),
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid continue token {token:?}"
                        )))
                    }
                }
            }
            None => {
                let at = match resource_version.filter(|r| !r.is_empty() && *r != "0") {
                    Some(r) => {
                        let n = parse_rv(r).ok_or_else(|| {
                            ApiError::bad_request(format!("invalid resource version {r:?}"))
                        })?;
                        if exact {
                            n
                        } else {
                            self.rv.max(n)
                        }
                    }
                    None => self.rv,
                };
                (at.min(self.rv), None)
            }
        };
        let objects = if at == self.rv {
            self.objects
                .iter()
                .filter(|(k, _)| k.group == rt.group && k.resource == rt.plural)
                .map(|(k, s)| (k.clone(), s.value.clone()))
                .collect()
        } else {
            match self.snapshot(&rt.group, &rt.plural, at) {
                Some(o) => o,
                None if continue_token.is_some() => {
                    return Err(ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ))
                }
                None => {
                    return Err(ApiError::gone(format!("too old resource version: {at} ({})", self.compacted + 1)))
                }
            }
        };
        let selected: Vec<(ObjKey, Value)> = objects
            .into_iter()
            .filter(|(k, _)| !rt.namespaced || ns.is_none_or(|n| k.namespace == n))
            .filter(|(k, _)| {
                after
                    .as_ref()
                    .is_none_or(|(ans, aname)| (&k.namespace, &k.name) > (ans, aname))
            })
            .filter(|(_, v)| labels.matches(v) && fields.matches(v))
            .collect();
        let total = selected.len();
        let page: Vec<(ObjKey, Value)> = match limit.filter(|l| *l > 0) {
            Some(l) => selected.into_iter().take(l).collect(),
            None => selected,
        };
        let mut list_meta = json!({"resourceVersion": at.to_string()});
        if page.len() < total {
            let (last, _) = page.last().unwrap();
            list_meta["continue"] =
                json!(format!("{at}:{}:{}", hex(&last.namespace), hex(&last.name)));
            list_meta["remainingItemCount"] = json!(total - page.len());
        }
        let items: Vec<Value> = page.into_iter().map(|(_, v)| present(rt, v)).collect();
        Ok(json!({
            "apiVersion": rt.api_version(),
            "kind": format!("{}List", rt.kind),
            "metadata": list_meta,
            "items": items,
        }))
    }
}
