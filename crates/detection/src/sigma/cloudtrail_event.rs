//! How rsigma sees one CloudTrail record: rsigma's own zero-copy `JsonEvent` over the record's
//! `serde_json::Value`, except that a field whose value is a JSON *object* is shown as the
//! object's JSON text.
//!
//! Why: rsigma 0.23 answers "no match" whenever a string matcher meets an object, but SigmaHQ's
//! CloudTrail rules apply `|contains` to whole objects — `requestParameters|contains:
//! 'Suspended'` (AWS S3 Bucket Versioning Disable), `responseElements|contains: 'Failure'` (AWS
//! EC2 VM Export Failure) — meaning a substring of the object's text, as pySigma's backends
//! read it. Without this adapter the first rule could never fire and the second's filter could
//! never exclude anything.
//!
//! The text is serde_json's compact form (`{"a":1}`, no spaces; keys in sorted order, since the
//! workspace does not enable serde_json's `preserve_order`). It is built only when a rule reads
//! a field whose value is an object, which for the built-in rules is two fields; every other
//! lookup borrows from the record. Arrays keep rsigma's meaning (a value matches if any element
//! does); objects inside arrays become text the same way.

use std::borrow::Cow;

use rsigma_eval::{Event, EventValue, JsonEvent};
use serde_json::Value;

/// One record as rsigma's `Event`, borrowing from it.
pub(crate) struct CloudTrailEvent<'record> {
    record: &'record Value,
    json: JsonEvent<'record>,
}

impl<'record> CloudTrailEvent<'record> {
    pub(crate) fn new(record: &'record Value) -> CloudTrailEvent<'record> {
        CloudTrailEvent {
            record,
            json: JsonEvent::borrow(record),
        }
    }
}

impl Event for CloudTrailEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        // The key as it is, first, as JsonEvent does (most of a rule's fields are top-level);
        // an object's text straight from the record, without building rsigma's map of it first.
        if let Some(value) = self.record.get(path) {
            return Some(match value {
                Value::Object(_) => EventValue::Str(Cow::Owned(value.to_string())),
                Value::Array(_) => objects_as_text(EventValue::from(value)),
                _ => EventValue::from(value),
            });
        }
        // A dotted path (`userIdentity.type`), walked by JsonEvent, through arrays too.
        match self.json.get_field(path)? {
            value @ (EventValue::Map(_) | EventValue::Array(_)) => Some(objects_as_text(value)),
            value => Some(value),
        }
    }

    fn any_string_value(&self, predicate: &dyn Fn(&str) -> bool) -> bool {
        self.json.any_string_value(predicate)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.json.all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.json.visit_string_values(visit)
    }

    /// Used by rsigma only for correlation buffers and `include_event`, neither of which
    /// orgtrail uses.
    fn to_json(&self) -> Value {
        self.record.clone()
    }

    fn field_keys(&self) -> Vec<Cow<'_, str>> {
        self.json.field_keys()
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        self.json.top_level_keys()
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        self.json.visit_top_level_keys(visit)
    }
}

/// An object as its JSON text; an array with each object element so (recursively).
fn objects_as_text(value: EventValue<'_>) -> EventValue<'_> {
    match value {
        EventValue::Map(_) => EventValue::Str(Cow::Owned(value.to_json().to_string())),
        EventValue::Array(elements) => {
            EventValue::Array(elements.into_iter().map(objects_as_text).collect())
        }
        other => other,
    }
}
