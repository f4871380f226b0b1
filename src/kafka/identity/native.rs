//! The identity admin calls through librdkafka's C API (rdkafka has no safe wrapper for ACLs or
//! SCRAM credentials): CreateAcls, DescribeAcls, DeleteAcls, DescribeUserScramCredentials and
//! AlterUserScramCredentials, each one batched request on a private queue, with the broker's
//! own error text per item.
//!
//! Safety: every librdkafka object created here is owned by a guard of [`crate::kafka::ffi`]
//! (the request objects by [`Requests`], destroyed together); the results read from an event
//! belong to the event and are copied out before it is dropped; the client handle outlives the
//! call because the caller holds the client for its whole duration.

use std::ffi::{c_char, CString};
use std::ptr;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;

use super::{
    AclBinding, AclListing, AclOperation, AclOutcome, AclPattern, AclPermission, AclResourceType,
    ScramCredentialInfo, ScramDeletion, ScramMechanism, ScramUpsert, UserOutcome,
    UserScramCredentials,
};
use crate::kafka::ffi::{cstring, errbuf, rejection, text, Handle, Requests};
use crate::kafka::native::Call;
use crate::kafka::{BrokerError, Rejection};

use rd::rd_kafka_AclOperation_t as Op;
use rd::rd_kafka_AclPermissionType_t as Perm;
use rd::rd_kafka_ResourcePatternType_t as Pattern;
use rd::rd_kafka_ResourceType_t as Res;
use rd::rd_kafka_ScramMechanism_t as Mech;

// ---------------------------------------------------------------------------------------------
// Our types <-> librdkafka's enums.

fn resource_type(t: AclResourceType) -> Res {
    match t {
        AclResourceType::Topic => Res::RD_KAFKA_RESOURCE_TOPIC,
        AclResourceType::Group => Res::RD_KAFKA_RESOURCE_GROUP,
        AclResourceType::TransactionalId => Res::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID,
        // librdkafka's BROKER is Kafka's CLUSTER resource type (code 4 on the wire).
        AclResourceType::Cluster => Res::RD_KAFKA_RESOURCE_BROKER,
    }
}

fn from_resource_type(t: Res) -> Option<AclResourceType> {
    match t {
        Res::RD_KAFKA_RESOURCE_TOPIC => Some(AclResourceType::Topic),
        Res::RD_KAFKA_RESOURCE_GROUP => Some(AclResourceType::Group),
        Res::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID => Some(AclResourceType::TransactionalId),
        Res::RD_KAFKA_RESOURCE_BROKER => Some(AclResourceType::Cluster),
        _ => None,
    }
}

fn pattern(p: AclPattern) -> Pattern {
    match p {
        AclPattern::Literal => Pattern::RD_KAFKA_RESOURCE_PATTERN_LITERAL,
        AclPattern::Prefixed => Pattern::RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
    }
}

fn from_pattern(p: Pattern) -> Option<AclPattern> {
    match p {
        Pattern::RD_KAFKA_RESOURCE_PATTERN_LITERAL => Some(AclPattern::Literal),
        Pattern::RD_KAFKA_RESOURCE_PATTERN_PREFIXED => Some(AclPattern::Prefixed),
        _ => None,
    }
}

fn operation(o: AclOperation) -> Op {
    match o {
        AclOperation::Read => Op::RD_KAFKA_ACL_OPERATION_READ,
        AclOperation::Write => Op::RD_KAFKA_ACL_OPERATION_WRITE,
        AclOperation::Create => Op::RD_KAFKA_ACL_OPERATION_CREATE,
        AclOperation::Delete => Op::RD_KAFKA_ACL_OPERATION_DELETE,
        AclOperation::Alter => Op::RD_KAFKA_ACL_OPERATION_ALTER,
        AclOperation::Describe => Op::RD_KAFKA_ACL_OPERATION_DESCRIBE,
        AclOperation::ClusterAction => Op::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
        AclOperation::DescribeConfigs => Op::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
        AclOperation::AlterConfigs => Op::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
        AclOperation::IdempotentWrite => Op::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
        AclOperation::All => Op::RD_KAFKA_ACL_OPERATION_ALL,
    }
}

fn from_operation(o: Op) -> Option<AclOperation> {
    AclOperation::ALL
        .into_iter()
        .find(|ours| operation(*ours) == o)
}

fn permission(p: AclPermission) -> Perm {
    match p {
        AclPermission::Allow => Perm::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
        AclPermission::Deny => Perm::RD_KAFKA_ACL_PERMISSION_TYPE_DENY,
    }
}

fn from_permission(p: Perm) -> Option<AclPermission> {
    match p {
        Perm::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW => Some(AclPermission::Allow),
        Perm::RD_KAFKA_ACL_PERMISSION_TYPE_DENY => Some(AclPermission::Deny),
        _ => None,
    }
}

fn mechanism(m: ScramMechanism) -> Mech {
    match m {
        ScramMechanism::Sha256 => Mech::RD_KAFKA_SCRAM_MECHANISM_SHA_256,
        ScramMechanism::Sha512 => Mech::RD_KAFKA_SCRAM_MECHANISM_SHA_512,
    }
}

fn from_mechanism(m: Mech) -> Option<ScramMechanism> {
    match m {
        Mech::RD_KAFKA_SCRAM_MECHANISM_SHA_256 => Some(ScramMechanism::Sha256),
        Mech::RD_KAFKA_SCRAM_MECHANISM_SHA_512 => Some(ScramMechanism::Sha512),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// An item's error object (owned by the result event; null: no error) as a rejection.
unsafe fn item_error(error: *const rd::rd_kafka_error_t) -> Option<Rejection> {
    if error.is_null() {
        return None;
    }
    let code = rd::rd_kafka_error_code(error);
    if code == crate::kafka::ffi::NO_ERROR {
        return None;
    }
    Some(rejection(
        code.into(),
        text(rd::rd_kafka_error_string(error)),
    ))
}

/// The C strings of one binding, kept alive while librdkafka copies them.
struct BindingStrings {
    name: CString,
    principal: CString,
    host: CString,
}

fn strings(b: &AclBinding) -> Result<BindingStrings, BrokerError> {
    Ok(BindingStrings {
        name: cstring(&b.resource_name)?,
        principal: cstring(&b.principal)?,
        host: cstring(&b.host)?,
    })
}

/// The request objects of `bindings`: bindings to create, or (`filter`) exact-match filters.
unsafe fn natives(
    bindings: &[AclBinding],
    filter: bool,
) -> Result<Requests<rd::rd_kafka_AclBinding_t>, BrokerError> {
    let mut natives = Requests::new(rd::rd_kafka_AclBinding_destroy_array);
    for b in bindings {
        let s = strings(b)?;
        let mut err = errbuf();
        let new = if filter {
            rd::rd_kafka_AclBindingFilter_new
        } else {
            rd::rd_kafka_AclBinding_new
        };
        let native = new(
            resource_type(b.resource_type),
            s.name.as_ptr(),
            pattern(b.pattern),
            s.principal.as_ptr(),
            s.host.as_ptr(),
            operation(b.operation),
            permission(b.permission),
            err.as_mut_ptr(),
            err.len(),
        );
        if native.is_null() {
            return Err(BrokerError::Client(format!(
                "ACL {b}: {}",
                text(err.as_ptr())
            )));
        }
        natives.push(native);
    }
    Ok(natives)
}

/// A binding the broker listed, or its description when [`AclBinding`] cannot hold it.
unsafe fn binding(acl: *const rd::rd_kafka_AclBinding_t) -> Result<AclBinding, String> {
    let restype = rd::rd_kafka_AclBinding_restype(acl);
    let pat = rd::rd_kafka_AclBinding_resource_pattern_type(acl);
    let op = rd::rd_kafka_AclBinding_operation(acl);
    let perm = rd::rd_kafka_AclBinding_permission_type(acl);
    let name = text(rd::rd_kafka_AclBinding_name(acl));
    let principal = text(rd::rd_kafka_AclBinding_principal(acl));
    let host = text(rd::rd_kafka_AclBinding_host(acl));
    match (
        from_resource_type(restype),
        from_pattern(pat),
        from_operation(op),
        from_permission(perm),
    ) {
        (Some(resource_type), Some(pattern), Some(operation), Some(permission)) => Ok(AclBinding {
            resource_type,
            resource_name: name,
            pattern,
            principal,
            host,
            operation,
            permission,
        }),
        _ => Err(format!(
            "{principal} {} {} on {} {name} ({}) from {host}",
            text(rd::rd_kafka_AclPermissionType_name(perm)),
            text(rd::rd_kafka_AclOperation_name(op)),
            text(rd::rd_kafka_ResourceType_name(restype)),
            text(rd::rd_kafka_ResourcePatternType_name(pat)),
        )),
    }
}

/// Outcomes of `bindings` from per-item errors in request order; an answer that does not
/// match the request item for item is the broker's fault, told as such.
fn outcomes(
    api: &'static str,
    bindings: &[AclBinding],
    errors: Vec<Option<Rejection>>,
) -> Result<Vec<AclOutcome>, BrokerError> {
    if errors.len() != bindings.len() {
        return Err(BrokerError::Rejected {
            api,
            code: "InvalidResponse".into(),
            message: format!(
                "{} results for {} ACL bindings",
                errors.len(),
                bindings.len()
            ),
        });
    }
    Ok(bindings
        .iter()
        .zip(errors)
        .map(|(b, e)| AclOutcome {
            binding: b.clone(),
            result: e.map_or(Ok(()), Err),
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The calls.

/// DescribeAcls with a filter that matches every binding.
pub(super) fn describe_acls(handle: Handle, timeout: Duration) -> Result<AclListing, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
            timeout,
            false,
        )?;
        let mut filter = Requests::new(rd::rd_kafka_AclBinding_destroy_array);
        let mut err = errbuf();
        let any = rd::rd_kafka_AclBindingFilter_new(
            Res::RD_KAFKA_RESOURCE_ANY,
            ptr::null(),
            Pattern::RD_KAFKA_RESOURCE_PATTERN_ANY,
            ptr::null(),
            ptr::null(),
            Op::RD_KAFKA_ACL_OPERATION_ANY,
            Perm::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
            err.as_mut_ptr(),
            err.len(),
        );
        if any.is_null() {
            return Err(BrokerError::Client(format!(
                "ACL filter: {}",
                text(err.as_ptr())
            )));
        }
        filter.push(any);
        rd::rd_kafka_DescribeAcls(handle.0, any, call.options.ptr(), call.queue.ptr());
        drop(filter);
        let event = call.wait("DescribeAcls")?;
        let result = rd::rd_kafka_event_DescribeAcls_result(event.ptr());
        let mut count = 0;
        let acls = rd::rd_kafka_DescribeAcls_result_acls(result, &mut count);
        let mut listing = AclListing::default();
        for i in 0..count {
            match binding(*acls.add(i)) {
                Ok(b) => listing.bindings.push(b),
                Err(other) => listing.unrecognised.push(other),
            }
        }
        Ok(listing)
    }
}

/// CreateAcls of every binding.
pub(super) fn create_acls(
    handle: Handle,
    timeout: Duration,
    bindings: &[AclBinding],
) -> Result<Vec<AclOutcome>, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
            timeout,
            false,
        )?;
        let mut natives = natives(bindings, false)?;
        rd::rd_kafka_CreateAcls(
            handle.0,
            natives.as_mut_ptr(),
            natives.len(),
            call.options.ptr(),
            call.queue.ptr(),
        );
        drop(natives);
        let event = call.wait("CreateAcls")?;
        let result = rd::rd_kafka_event_CreateAcls_result(event.ptr());
        let mut count = 0;
        let results = rd::rd_kafka_CreateAcls_result_acls(result, &mut count);
        let errors = (0..count)
            .map(|i| item_error(rd::rd_kafka_acl_result_error(*results.add(i))))
            .collect();
        outcomes("CreateAcls", bindings, errors)
    }
}

/// DeleteAcls with an exact-match filter per binding.
pub(super) fn delete_acls(
    handle: Handle,
    timeout: Duration,
    bindings: &[AclBinding],
) -> Result<Vec<AclOutcome>, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS,
            timeout,
            false,
        )?;
        let mut natives = natives(bindings, true)?;
        rd::rd_kafka_DeleteAcls(
            handle.0,
            natives.as_mut_ptr(),
            natives.len(),
            call.options.ptr(),
            call.queue.ptr(),
        );
        drop(natives);
        let event = call.wait("DeleteAcls")?;
        let result = rd::rd_kafka_event_DeleteAcls_result(event.ptr());
        let mut count = 0;
        let responses = rd::rd_kafka_DeleteAcls_result_responses(result, &mut count);
        let errors = (0..count)
            .map(|i| {
                item_error(rd::rd_kafka_DeleteAcls_result_response_error(
                    *responses.add(i),
                ))
            })
            .collect();
        outcomes("DeleteAcls", bindings, errors)
    }
}

/// DescribeUserScramCredentials of `users` (distinct, not empty).
pub(super) fn describe_scram(
    handle: Handle,
    timeout: Duration,
    users: &[String],
) -> Result<Vec<UserScramCredentials>, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEUSERSCRAMCREDENTIALS,
            timeout,
            false,
        )?;
        let names = users
            .iter()
            .map(|u| cstring(u))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        rd::rd_kafka_DescribeUserScramCredentials(
            handle.0,
            ptrs.as_mut_ptr(),
            ptrs.len(),
            call.options.ptr(),
            call.queue.ptr(),
        );
        let event = call.wait("DescribeUserScramCredentials")?;
        let result = rd::rd_kafka_event_DescribeUserScramCredentials_result(event.ptr());
        let mut count = 0;
        let descriptions =
            rd::rd_kafka_DescribeUserScramCredentials_result_descriptions(result, &mut count);
        Ok((0..count)
            .map(|i| {
                let d = *descriptions.add(i);
                let user = text(rd::rd_kafka_UserScramCredentialsDescription_user(d));
                let error = rd::rd_kafka_UserScramCredentialsDescription_error(d);
                let no_credentials = !error.is_null()
                    && RDKafkaErrorCode::from(rd::rd_kafka_error_code(error))
                        == RDKafkaErrorCode::ResourceNotFound;
                let result = match item_error(error) {
                    // A user without credentials: none, not an error.
                    Some(_) if no_credentials => Ok(Vec::new()),
                    Some(r) => Err(r),
                    None => Ok((0
                        ..rd::rd_kafka_UserScramCredentialsDescription_scramcredentialinfo_count(
                            d,
                        ))
                        .filter_map(|j| {
                            let info =
                                rd::rd_kafka_UserScramCredentialsDescription_scramcredentialinfo(
                                    d, j,
                                );
                            Some(ScramCredentialInfo {
                                mechanism: from_mechanism(
                                    rd::rd_kafka_ScramCredentialInfo_mechanism(info),
                                )?,
                                iterations: rd::rd_kafka_ScramCredentialInfo_iterations(info),
                            })
                        })
                        .collect()),
                };
                UserScramCredentials { user, result }
            })
            .collect())
    }
}

/// AlterUserScramCredentials: every upsert and deletion in one request (librdkafka salts each
/// password with random bytes and sends only the salted hash).
pub(super) fn alter_scram(
    handle: Handle,
    timeout: Duration,
    upserts: &[ScramUpsert],
    deletions: &[ScramDeletion],
) -> Result<Vec<UserOutcome>, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERUSERSCRAMCREDENTIALS,
            timeout,
            false,
        )?;
        let mut natives = Requests::new(rd::rd_kafka_UserScramCredentialAlteration_destroy_array);
        for u in upserts {
            let password = u.password.expose().as_bytes();
            let alteration = rd::rd_kafka_UserScramCredentialUpsertion_new(
                cstring(&u.user)?.as_ptr(),
                mechanism(u.mechanism),
                u.iterations,
                password.as_ptr(),
                password.len(),
                ptr::null(),
                0,
            );
            if alteration.is_null() {
                return Err(BrokerError::Client(format!(
                    "SCRAM credential of {}: not accepted by the client library",
                    u.user
                )));
            }
            natives.push(alteration);
        }
        for d in deletions {
            let alteration = rd::rd_kafka_UserScramCredentialDeletion_new(
                cstring(&d.user)?.as_ptr(),
                mechanism(d.mechanism),
            );
            if alteration.is_null() {
                return Err(BrokerError::Client(format!(
                    "SCRAM credential deletion of {}: not accepted by the client library",
                    d.user
                )));
            }
            natives.push(alteration);
        }
        rd::rd_kafka_AlterUserScramCredentials(
            handle.0,
            natives.as_mut_ptr(),
            natives.len(),
            call.options.ptr(),
            call.queue.ptr(),
        );
        drop(natives);
        let event = call.wait("AlterUserScramCredentials")?;
        let result = rd::rd_kafka_event_AlterUserScramCredentials_result(event.ptr());
        let mut count = 0;
        let responses = rd::rd_kafka_AlterUserScramCredentials_result_responses(result, &mut count);
        Ok((0..count)
            .map(|i| {
                let r = *responses.add(i);
                UserOutcome {
                    user: text(rd::rd_kafka_AlterUserScramCredentials_result_response_user(
                        r,
                    )),
                    result: item_error(
                        rd::rd_kafka_AlterUserScramCredentials_result_response_error(r),
                    )
                    .map_or(Ok(()), Err),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_of_ours_maps_to_librdkafkas_and_back() {
        for o in AclOperation::ALL {
            assert_eq!(from_operation(operation(o)), Some(o));
        }
        for t in AclResourceType::ALL {
            assert_eq!(from_resource_type(resource_type(t)), Some(t));
        }
        for p in [AclPattern::Literal, AclPattern::Prefixed] {
            assert_eq!(from_pattern(pattern(p)), Some(p));
        }
        for p in [AclPermission::Allow, AclPermission::Deny] {
            assert_eq!(from_permission(permission(p)), Some(p));
        }
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            assert_eq!(from_mechanism(mechanism(m)), Some(m));
        }
        assert_eq!(from_operation(Op::RD_KAFKA_ACL_OPERATION_UNKNOWN), None);
        assert_eq!(from_operation(Op::RD_KAFKA_ACL_OPERATION_ANY), None);
        assert_eq!(from_resource_type(Res::RD_KAFKA_RESOURCE_ANY), None);
        assert_eq!(from_pattern(Pattern::RD_KAFKA_RESOURCE_PATTERN_MATCH), None);
    }

    #[test]
    fn a_mismatched_answer_is_the_brokers_fault() {
        let b = AclBinding::allow("User:a", AclOperation::Read, AclResourceType::Topic, "t");
        let err = outcomes("CreateAcls", &[b.clone(), b], vec![None]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the broker refused CreateAcls (InvalidResponse): 1 results for 2 ACL bindings"
        );
    }
}
