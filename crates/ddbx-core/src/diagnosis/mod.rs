//! What an AWS or S3 failure means, said for a person in one line with the fix: refused
//! or expired credentials, an endpoint that never answered, an access denied (`iam`,
//! against the policies shipped in `iam/`). Text in, text out: both the DynamoDB calls
//! (`aws`) and the storage (`store`) use it.

pub mod iam;

use std::time::Duration;

/// The most time the first call to an endpoint that never answers may take, its retries
/// included (with what the command does before it, 15 s at most in all).
pub const FIRST_CONTACT: Duration = Duration::from_secs(12);

/// Codes by which AWS refuses the credentials themselves, whatever the resource.
const EXPIRED: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "TokenRefreshRequired",
];
const UNKNOWN_KEY: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
];
const BAD_SIGNATURE: &[&str] = &["InvalidSignatureException", "SignatureDoesNotMatch"];
const CLOCK: &[&str] = &["RequestExpired", "RequestTimeTooSkewed"];

/// What a refusal of the credentials means and how to fix it (one line), or `None` when
/// the answer is about something else.
pub fn credentials_problem(code: &str, message: &str) -> Option<String> {
    let answered = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    };
    let clock = CLOCK.contains(&code)
        || (BAD_SIGNATURE.contains(&code) && message.contains("Signature expired"));
    Some(if clock {
        format!("this machine's clock is too far from AWS's (AWS answered {answered}): set it right (NTP) and run again")
    } else if EXPIRED.contains(&code) {
        format!("the AWS credentials have expired (AWS answered {answered}): get new ones (`aws sso login`, a fresh AWS_SESSION_TOKEN, or the profile's role) and run again")
    } else if UNKNOWN_KEY.contains(&code) {
        format!("AWS does not know these credentials (AWS answered {answered}): check AWS_ACCESS_KEY_ID and AWS_SESSION_TOKEN, or the profile's, or get new ones")
    } else if BAD_SIGNATURE.contains(&code) {
        format!("the secret access key does not go with the access key id (AWS answered {answered}): check AWS_SECRET_ACCESS_KEY, or the profile's aws_secret_access_key")
    } else {
        return None;
    })
}

/// `host[:port]` of a URL.
pub fn authority(url: &str) -> Option<String> {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
}

/// What went wrong, in the words of the innermost cause of a request that got no answer
/// (`failed to lookup address information: Name or service not known`, `Connection
/// refused (os error 111)`), with what kind of failure it was when the words do not say.
pub fn unreachable_cause(chain: &str) -> String {
    let last = chain.rsplit(": ").next().unwrap_or(chain).trim();
    let lower = chain.to_ascii_lowercase();
    // Judged on the causes' words, not on settings a message may name (object_store's
    // `retry_timeout: 180s`).
    let timed_out = [
        "timed out",
        "timeout error",
        "operation timeout",
        "deadline",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if lower.contains("dns error") || lower.contains("lookup address") {
        let resolver = chain
            .find("dns error: ")
            .map_or(last, |i| chain[i + "dns error: ".len()..].trim());
        format!("the name does not resolve ({resolver})")
    } else if lower.contains("connection refused") {
        last.to_string()
    } else if timed_out {
        format!("no answer in time ({last})")
    } else {
        last.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_and_causes() {
        assert_eq!(
            authority("https://dynamodb.us-east-1.amazonaws.com/").as_deref(),
            Some("dynamodb.us-east-1.amazonaws.com")
        );
        assert_eq!(
            authority("http://127.0.0.1:9/").as_deref(),
            Some("127.0.0.1:9")
        );
        assert_eq!(
            unreachable_cause("dispatch failure: io error: client error (Connect): dns error: failed to lookup address information: Name or service not known"),
            "the name does not resolve (failed to lookup address information: Name or service not known)"
        );
        assert_eq!(
            unreachable_cause("dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)"),
            "Connection refused (os error 111)"
        );
        assert_eq!(
            unreachable_cause("Generic S3 error: Error performing GET http://127.0.0.1:9/b/k in 1s, after 5 retries, max_retries: 5, retry_timeout: 8s  - HTTP error: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"),
            "Connection refused (os error 111)"
        );
    }

    #[test]
    fn refused_credentials_say_what_to_fix() {
        let expired = credentials_problem(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        )
        .unwrap();
        assert!(
            expired.starts_with("the AWS credentials have expired"),
            "{expired}"
        );
        let skew = credentials_problem(
            "InvalidSignatureException",
            "Signature expired: 20260101T000000Z is now earlier than 20260101T000500Z",
        )
        .unwrap();
        assert!(skew.contains("clock"), "{skew}");
        assert!(credentials_problem("InvalidClientTokenId", "").is_some());
        assert!(credentials_problem("ResourceNotFoundException", "no table").is_none());
        assert!(credentials_problem("AccessDeniedException", "no").is_none());
    }
}
