//! The top-level fields of a CloudTrail record, against which a Sigma rule's field names are
//! checked: a rule field whose first path segment is none of these can never match a CloudTrail
//! record, so it is a typo or a rule written for another schema (Sigma's generic `src_ip`,
//! Windows' `EventID`), and the rule is refused rather than loaded to never fire.

/// Every top-level field of a CloudTrail record, as CloudTrail spells its JSON keys
/// (case-sensitive): the record contents of the CloudTrail user guide up to eventVersion 1.11
/// (`shared/docs/cloudtrail-reference.md` §1.2, in its order) and the Insights record's fields
/// (§4.2, of which only `insightDetails` is not also in §1.2). Every key of the sample records
/// in `data/cloudtrail/` is one of them (a test checks).
pub const CLOUDTRAIL_RECORD_FIELDS: &[&str] = &[
    "eventTime",
    "eventVersion",
    "userIdentity",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "eventType",
    "apiVersion",
    "managementEvent",
    "readOnly",
    "resources",
    "recipientAccountId",
    "serviceEventDetails",
    "sharedEventID",
    "vpcEndpointId",
    "eventCategory",
    "addendum",
    "sessionCredentialFromConsole",
    "edgeDeviceDetails",
    "tlsDetails",
    "insightDetails",
    "vpcEndpointAccountId",
    "eventContext",
    "annotation",
];

/// The first segment of a Sigma field path, as rsigma walks it: up to the first `.` (a nested
/// key) or `[` (an array index or quantifier). A backslash escapes the next character in rsigma's
/// paths; it ends the first segment here too, so an escaped name is checked by its first part.
pub(crate) fn first_path_segment(field: &str) -> &str {
    match field.find(['.', '[', '\\']) {
        Some(end) => field.get(..end).unwrap_or(field),
        None => field,
    }
}

/// `None` when `field`'s first segment is a CloudTrail record field; otherwise the record field
/// it differs from only in case, if one does (`Some(None)` when none does).
pub(crate) fn check_record_field(field: &str) -> Option<Option<&'static str>> {
    let first = first_path_segment(field);
    if CLOUDTRAIL_RECORD_FIELDS.contains(&first) {
        return None;
    }
    Some(
        CLOUDTRAIL_RECORD_FIELDS
            .iter()
            .copied()
            .find(|known| known.eq_ignore_ascii_case(first)),
    )
}
