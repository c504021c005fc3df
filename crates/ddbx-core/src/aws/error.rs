//! Which AWS errors are worth retrying: the one place that decides it; and how the error a
//! call ends with is said (one line, what to fix, never a Debug form).
//!
//! The code lists follow the SDK's own throttling and transient error lists
//! (aws-runtime's retry classifiers), plus S3's `SlowDown`.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::contact::Contact;
use crate::diagnosis::{credentials_problem, iam, unreachable_cause};
use crate::error::chain;
pub use crate::error::ErrorClass;
use crate::Error;

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// Classify an SDK error.
pub fn classify<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> ErrorClass {
    match err {
        SdkError::ConstructionFailure(_) => ErrorClass::Permanent,
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => ErrorClass::Transient,
        SdkError::DispatchFailure(d) => {
            if d.is_user() {
                ErrorClass::Permanent
            } else {
                ErrorClass::Transient
            }
        }
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            let message = s.err().message().unwrap_or_default();
            // DynamoDB's daily allowance of capacity decreases is spent: retrying within
            // minutes cannot help.
            if code == "LimitExceededException" && message.contains("decreases") {
                ErrorClass::Permanent
            } else if THROTTLING_CODES.contains(&code) {
                ErrorClass::Throttled
            } else if TRANSIENT_CODES.contains(&code) || s.raw().status().is_server_error() {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            }
        }
        _ => ErrorClass::Transient,
    }
}

/// A one-line description of an SDK error with its causes, never its request (which
/// could hold signed headers) nor a Debug form (that goes to `-v`'s log).
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, HttpResponse>,
) -> String {
    match err {
        SdkError::ServiceError(s) => {
            let e = s.err();
            match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => chain(e),
            }
        }
        other => chain(other),
    }
}

/// Whether no answer came back at all (the name did not resolve, the connection was
/// refused or never made, the attempt timed out), as opposed to an answer that was an
/// error.
pub fn no_answer<E>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::DispatchFailure(d) => !d.is_user(),
        SdkError::TimeoutError(_) => true,
        _ => false,
    }
}

/// The error a call ends with, said for a person: an endpoint never reached and refused
/// credentials stop the run (`contact` keeps them; [`Error::Config`]), an access denied
/// names the action, the resource and the policy that grants it; anything else is
/// AWS's code and message, with the attempts when retries were given up.
pub(crate) fn final_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    context: String,
    err: &SdkError<E, HttpResponse>,
    class: ErrorClass,
    attempts: u32,
    contact: &Contact,
) -> Error {
    tracing::debug!(what = %context, error = ?err, "AWS call failed");
    if no_answer(err) {
        let cause = unreachable_cause(&describe(err));
        if !contact.answered() {
            let line = format!("cannot reach {}: {cause}", contact.host());
            contact.stop(&line);
            return Error::Config(line);
        }
        return Error::Aws {
            context,
            code: None,
            message: format!("no answer: {cause} (gave up after {attempts} attempts)"),
            class,
        };
    }
    let code = err.code().unwrap_or_default();
    let message = err.message().unwrap_or_default();
    if let Some(line) = credentials_problem(code, message) {
        contact.stop(&line);
        return Error::Config(line);
    }
    let mut text = match iam::Denied::parse(message) {
        Some(d) if code.starts_with("AccessDenied") => d.explain(),
        _ => describe(err),
    };
    if class != ErrorClass::Permanent {
        text.push_str(&format!(" (gave up after {attempts} attempts)"));
    }
    Error::Aws {
        context,
        code: err.code().map(str::to_string),
        message: text,
        class,
    }
}
