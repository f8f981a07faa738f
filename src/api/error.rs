//! What the admin API answers when a request cannot be carried out: an HTTP status and a JSON
//! body naming the field (when one is to blame) and the reason. Nothing changed when one is
//! returned.

use serde::Serialize;

use crate::haproxy::model::ModelError;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{status} {error}: {reason}")]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// A short name for the kind of error (`bad request`, `not found`, `conflict`, ...).
    pub error: &'static str,
    /// The request field to blame, when there is one (`protocol_port`, `members[2].address`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong, for a person.
    pub reason: String,
}

impl ApiError {
    fn new(status: u16, error: &'static str, field: Option<&str>, reason: String) -> ApiError {
        ApiError {
            status,
            error,
            field: field.map(str::to_string),
            reason,
        }
    }

    /// 400: the request itself is wrong (a field's type or value).
    pub fn bad(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad request", Some(field), reason.into())
    }

    /// 400 about the request as a whole (not JSON, not an object).
    pub fn malformed(reason: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad request", None, reason.into())
    }

    /// 404: the object named in the path does not exist.
    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(404, "not found", None, format!("no {what} `{id}`"))
    }

    /// 409: the request conflicts with other objects (a reference, a duplicate id, ...).
    pub fn conflict(field: Option<&str>, reason: impl Into<String>) -> ApiError {
        ApiError::new(409, "conflict", field, reason.into())
    }

    /// 422: the objects are consistent but HAProxy refuses the configuration they make.
    pub fn refused(reason: impl Into<String>) -> ApiError {
        ApiError::new(422, "refused by HAProxy", None, reason.into())
    }

    /// 500: keepserver could not carry out a valid change (a file, HAProxy not answering).
    pub fn internal(reason: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal error", None, reason.into())
    }

    /// 409 for a rule of the HAProxy model the objects break together.
    pub fn model(e: &ModelError) -> ApiError {
        ApiError::conflict(None, e.to_string())
    }
}
