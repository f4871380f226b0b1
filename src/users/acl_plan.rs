//! The ACL planner, pure: the bindings Tributary wants for the principals it manages × the
//! bindings on the broker → the bindings to create and those to delete.
//!
//! Rules: a binding of a principal Tributary does not manage is never planned, whatever the
//! broker holds for it; a managed principal's binding on the broker that is not desired is
//! deleted (a managed principal with no grants — a deleted user — loses every binding);
//! duplicates (in the desire or in the broker's listing) are planned once; and the plan of a
//! broker the plan was applied to is empty. Both lists are sorted, so a plan reads the same
//! however its inputs were ordered.

use std::collections::{BTreeMap, BTreeSet};

use crate::kafka::identity::AclBinding;

/// The bindings wanted, by managed principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredAcls {
    by_principal: BTreeMap<String, BTreeSet<AclBinding>>,
}

impl DesiredAcls {
    pub fn new() -> Self {
        Self::default()
    }

    /// `principal` is managed: its bindings on the broker that are not granted go.
    pub fn manage(&mut self, principal: &str) {
        self.by_principal.entry(principal.to_owned()).or_default();
    }

    /// Wants `binding` (and so manages its principal).
    pub fn grant(&mut self, binding: AclBinding) {
        self.by_principal
            .entry(binding.principal.clone())
            .or_default()
            .insert(binding);
    }

    /// Whether `principal`'s bindings are Tributary's to keep.
    pub fn is_managed(&self, principal: &str) -> bool {
        self.by_principal.contains_key(principal)
    }

    /// The managed principals, sorted.
    pub fn principals(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_principal.keys().map(String::as_str)
    }

    /// The bindings wanted for `principal` (none for an unmanaged one), sorted.
    pub fn granted(&self, principal: &str) -> impl Iterator<Item = &AclBinding> + '_ {
        self.by_principal.get(principal).into_iter().flatten()
    }

    /// Every binding wanted, sorted.
    pub fn bindings(&self) -> impl Iterator<Item = &AclBinding> + '_ {
        self.by_principal.values().flatten()
    }
}

impl FromIterator<AclBinding> for DesiredAcls {
    fn from_iter<I: IntoIterator<Item = AclBinding>>(iter: I) -> Self {
        let mut desired = DesiredAcls::new();
        for b in iter {
            desired.grant(b);
        }
        desired
    }
}

/// What to change on the broker: each list sorted, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclPlan {
    /// Desired, not on the broker.
    pub create: Vec<AclBinding>,
    /// On the broker for a managed principal, not desired.
    pub delete: Vec<AclBinding>,
}

impl AclPlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// Plans the changes that make the managed principals' bindings on the broker (`observed`,
/// every binding the broker listed) equal to `desired`.
pub fn plan(desired: &DesiredAcls, observed: &[AclBinding]) -> AclPlan {
    let on_broker: BTreeSet<&AclBinding> = observed
        .iter()
        .filter(|b| desired.is_managed(&b.principal))
        .collect();
    let wanted: BTreeSet<&AclBinding> = desired.bindings().collect();
    AclPlan {
        create: wanted
            .difference(&on_broker)
            .map(|b| (*b).clone())
            .collect(),
        delete: on_broker
            .difference(&wanted)
            .map(|b| (*b).clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::identity::{
        user_principal, AclOperation, AclPattern, AclPermission, AclResourceType,
    };
    use proptest::prelude::*;

    fn allow(user: &str, op: AclOperation, rt: AclResourceType, name: &str) -> AclBinding {
        AclBinding::allow(user_principal(user), op, rt, name)
    }

    fn write(user: &str, topic: &str) -> AclBinding {
        allow(user, AclOperation::Write, AclResourceType::Topic, topic)
    }

    /// The broker's bindings after `plan` is applied (created added, deleted removed).
    fn applied(observed: &[AclBinding], plan: &AclPlan) -> Vec<AclBinding> {
        let mut after: BTreeSet<AclBinding> = observed.iter().cloned().collect();
        after.extend(plan.create.iter().cloned());
        for b in &plan.delete {
            after.remove(b);
        }
        after.into_iter().collect()
    }

    #[test]
    fn missing_bindings_are_created_and_extra_ones_of_managed_principals_deleted() {
        let desired: DesiredAcls = [write("orders", "orders"), write("orders", "payments")]
            .into_iter()
            .collect();
        let stale = write("orders", "refunds");
        let foreign = write("someone-else", "orders");
        let observed = [write("orders", "orders"), stale.clone(), foreign.clone()];
        let p = plan(&desired, &observed);
        assert_eq!(p.create, [write("orders", "payments")]);
        assert_eq!(p.delete, [stale]);
        let after = applied(&observed, &p);
        assert!(
            after.contains(&foreign),
            "another principal's binding stays"
        );
        assert!(plan(&desired, &after).is_empty());
    }

    #[test]
    fn a_managed_principal_without_grants_loses_every_binding() {
        let mut desired = DesiredAcls::new();
        desired.manage("User:gone");
        desired.grant(write("kept", "t"));
        let observed = [
            write("gone", "a"),
            allow("gone", AclOperation::Read, AclResourceType::Group, "g"),
            write("kept", "t"),
        ];
        let p = plan(&desired, &observed);
        assert!(p.create.is_empty());
        assert_eq!(p.delete.len(), 2);
        assert!(p.delete.iter().all(|b| b.principal == "User:gone"));
        assert_eq!(
            desired.principals().collect::<Vec<_>>(),
            ["User:gone", "User:kept"]
        );
        assert_eq!(desired.granted("User:gone").count(), 0);
    }

    #[test]
    fn bindings_that_differ_in_any_field_are_different_bindings() {
        let base = write("a", "t");
        let variants = [
            AclBinding {
                pattern: AclPattern::Prefixed,
                ..base.clone()
            },
            AclBinding {
                host: "10.0.0.1".into(),
                ..base.clone()
            },
            AclBinding {
                permission: AclPermission::Deny,
                ..base.clone()
            },
            AclBinding {
                operation: AclOperation::Read,
                ..base.clone()
            },
            AclBinding {
                resource_type: AclResourceType::TransactionalId,
                ..base.clone()
            },
            AclBinding {
                resource_name: "u".into(),
                ..base.clone()
            },
        ];
        let desired: DesiredAcls = [base.clone()].into_iter().collect();
        let p = plan(&desired, &variants);
        assert_eq!(p.create, [base]);
        assert_eq!(p.delete.len(), variants.len());
    }

    #[test]
    fn duplicates_are_planned_once() {
        let b = write("a", "t");
        let desired: DesiredAcls = [b.clone(), b.clone()].into_iter().collect();
        assert_eq!(plan(&desired, &[]).create, std::slice::from_ref(&b));
        let mut managed = DesiredAcls::new();
        managed.manage("User:a");
        assert_eq!(plan(&managed, &[b.clone(), b.clone()]).delete, [b]);
    }

    fn binding() -> impl Strategy<Value = AclBinding> {
        (
            0..4usize,
            0..3usize,
            prop::sample::select(AclOperation::ALL.to_vec()),
            prop::sample::select(AclResourceType::ALL.to_vec()),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(user, name, operation, resource_type, prefixed, deny)| {
                AclBinding {
                    resource_type,
                    resource_name: format!("r{name}"),
                    pattern: if prefixed {
                        AclPattern::Prefixed
                    } else {
                        AclPattern::Literal
                    },
                    principal: user_principal(&format!("u{user}")),
                    host: "*".into(),
                    operation,
                    permission: if deny {
                        AclPermission::Deny
                    } else {
                        AclPermission::Allow
                    },
                }
            })
    }

    fn desired() -> impl Strategy<Value = DesiredAcls> {
        (
            prop::collection::vec(binding(), 0..12),
            prop::collection::vec(0..4usize, 0..3),
        )
            .prop_map(|(grants, managed)| {
                let mut d: DesiredAcls = grants.into_iter().collect();
                for u in managed {
                    d.manage(&user_principal(&format!("u{u}")));
                }
                d
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn never_a_binding_of_an_unmanaged_principal(
            d in desired(),
            observed in prop::collection::vec(binding(), 0..20),
        ) {
            let p = plan(&d, &observed);
            for b in p.create.iter().chain(&p.delete) {
                prop_assert!(d.is_managed(&b.principal), "{b} planned");
            }
            let before: Vec<&AclBinding> =
                observed.iter().filter(|b| !d.is_managed(&b.principal)).collect();
            let after = applied(&observed, &p);
            for b in before {
                prop_assert!(after.contains(b), "{b} lost");
            }
        }

        #[test]
        fn the_plan_of_the_applied_result_is_empty(
            d in desired(),
            observed in prop::collection::vec(binding(), 0..20),
        ) {
            let p = plan(&d, &observed);
            let after = applied(&observed, &p);
            prop_assert!(plan(&d, &after).is_empty());
            // The managed principals' bindings are then exactly the desired ones.
            let managed: BTreeSet<&AclBinding> =
                after.iter().filter(|b| d.is_managed(&b.principal)).collect();
            prop_assert_eq!(managed, d.bindings().collect::<BTreeSet<_>>());
        }

        #[test]
        fn plans_are_sorted_without_duplicates_and_change_only_what_differs(
            d in desired(),
            observed in prop::collection::vec(binding(), 0..20),
        ) {
            let p = plan(&d, &observed);
            prop_assert!(p.create.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(p.delete.windows(2).all(|w| w[0] < w[1]));
            for b in &p.create {
                prop_assert!(!observed.contains(b));
                prop_assert!(d.bindings().any(|w| w == b));
            }
            for b in &p.delete {
                prop_assert!(observed.contains(b));
                prop_assert!(!d.bindings().any(|w| w == b));
            }
            let mut shuffled = observed.clone();
            shuffled.reverse();
            prop_assert_eq!(plan(&d, &shuffled), p);
        }
    }
}
