//! What a storage error means, on one line: S3's own code and message from its XML answer;
//! a bucket that does not exist or lives in another region; credentials refused or
//! expired; the action and resource of an access denied, with the policy in `iam/` that
//! grants it; an endpoint that cannot be reached. Never a Debug form: object_store's
//! errors carry the request's method and URL and S3's answer in their text, read here.

use crate::diagnosis::{authority, credentials_problem, iam, unreachable_cause};
use crate::error::chain;

/// What an S3 answer (or its absence) was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `NoSuchBucket`.
    NoSuchBucket,
    /// The bucket lives in another region (301 `PermanentRedirect`, or
    /// `AuthorizationHeaderMalformed` naming the region it expects); which one, when S3
    /// said.
    OtherRegion(Option<String>),
    /// The credentials were refused: what to fix.
    Credentials(String),
    /// No answer at all.
    Unreachable {
        /// `host[:port]`.
        host: String,
        /// Why, in the innermost cause's words.
        cause: String,
    },
    /// Access denied: the action, the resource, the policy.
    Denied(String),
    /// Anything else, as S3 (or the folder) said it.
    Other(String),
}

/// The text between `<tag>` and `</tag>` in an S3 XML answer.
fn tag<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))?;
    Some(&text[start..start + end])
}

/// The method and URL of the request an object_store error names (`Error performing GET
/// http://host/bucket/key in 3ms ...`).
fn request(text: &str) -> Option<(&str, &str)> {
    let rest = &text[text.find("Error performing ")? + "Error performing ".len()..];
    let mut words = rest.split(' ');
    Some((words.next()?, words.next()?))
}

/// Whether no answer came (the name did not resolve, the connection was refused or
/// never made, the request timed out), from the words of its causes: object_store's own
/// error kinds are not reachable through its error's sources.
fn no_answer(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "dns error",
        "tcp connect error",
        "connection refused",
        "error sending request",
        "timed out",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// The IAM action and the resource's ARN of a path-style S3 request (`GET
/// http://host/bucket/key?...`), for an answer that did not name them.
fn s3_action(method: &str, url: &str) -> (String, Option<String>) {
    let path_and_query = url
        .split_once("://")
        .map(|(_, rest)| rest.split_once('/').map_or("", |(_, p)| p))
        .unwrap_or(url);
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    let action = match method {
        "GET" if key.is_empty() || has("list-type") => "s3:ListBucket",
        "GET" | "HEAD" => "s3:GetObject",
        "POST" if has("delete") => "s3:DeleteObject",
        "PUT" | "POST" => "s3:PutObject",
        "DELETE" if has("uploadId") => "s3:AbortMultipartUpload",
        "DELETE" => "s3:DeleteObject",
        _ => "s3:?",
    };
    let resource = match action {
        "s3:ListBucket" => format!("arn:aws:s3:::{bucket}"),
        _ => format!("arn:aws:s3:::{bucket}/{key}"),
    };
    (action.to_string(), (!bucket.is_empty()).then_some(resource))
}

/// Read what an object_store error says.
pub fn classify(e: &object_store::Error) -> Problem {
    let text = chain(e);
    let req = request(&text);
    if no_answer(&text) {
        return Problem::Unreachable {
            host: req
                .and_then(|(_, url)| authority(url))
                .unwrap_or_else(|| "S3".into()),
            cause: unreachable_cause(&text),
        };
    }
    if text.contains("Received redirect without LOCATION") || text.contains("301 Moved") {
        return Problem::OtherRegion(None);
    }
    let Some(code) = tag(&text, "Code") else {
        if matches!(e, object_store::Error::PermissionDenied { .. }) {
            if let Some((method, url)) = req {
                let (action, resource) = s3_action(method, url);
                return Problem::Denied(
                    iam::Denied {
                        principal: None,
                        action,
                        resource,
                    }
                    .explain(),
                );
            }
        }
        return Problem::Other(shorten(&text));
    };
    let message = tag(&text, "Message").unwrap_or("");
    match code {
        "NoSuchBucket" => Problem::NoSuchBucket,
        "PermanentRedirect" => Problem::OtherRegion(
            tag(&text, "Endpoint").and_then(|e| endpoint_region(e).map(str::to_string)),
        ),
        "AuthorizationHeaderMalformed" if tag(&text, "Region").is_some() => {
            Problem::OtherRegion(tag(&text, "Region").map(str::to_string))
        }
        c if c.starts_with("AccessDenied") => {
            let denied = iam::Denied::parse(message).or_else(|| {
                req.map(|(method, url)| {
                    let (action, resource) = s3_action(method, url);
                    iam::Denied {
                        principal: None,
                        action,
                        resource,
                    }
                })
            });
            match denied {
                Some(d) => Problem::Denied(d.explain()),
                None => Problem::Other(format!("S3 answered {code}: {message}")),
            }
        }
        c => match credentials_problem(c, message) {
            Some(line) => Problem::Credentials(line),
            None => Problem::Other(format!("S3 answered {code}: {message}")),
        },
    }
}

/// The region of an S3 endpoint (`b.s3.eu-west-1.amazonaws.com`, `s3-eu-west-1...`).
fn endpoint_region(endpoint: &str) -> Option<&str> {
    let parts: Vec<&str> = endpoint.split('.').collect();
    parts
        .iter()
        .enumerate()
        .find_map(|(i, p)| match p.strip_prefix("s3-") {
            Some(region) => Some(region),
            None if *p == "s3" => parts.get(i + 1).copied().filter(|r| *r != "amazonaws"),
            None => None,
        })
}

/// object_store's text without its retry bookkeeping: `PUT failed: Server returned ...
/// (after 3 retries)`.
fn shorten(text: &str) -> String {
    let Some((method, _)) = request(text) else {
        return text.to_string();
    };
    let inner = text.split_once(" - ").map_or(text, |(_, i)| i.trim());
    let retries = text
        .split_once(", after ")
        .and_then(|(_, r)| r.split_once(" retries"))
        .map(|(n, _)| format!(" (after {n} retries)"))
        .unwrap_or_default();
    format!("{method} failed: {inner}{retries}")
}

impl crate::Error {
    /// A storage error about `path`, said as [`describe`] says it.
    pub fn store(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        Self::Store {
            path: path.to_string(),
            said: describe(&source),
            source,
        }
    }
}

/// One line for a person (`Error::Store` shows it after the path).
pub fn describe(e: &object_store::Error) -> String {
    match classify(e) {
        Problem::NoSuchBucket => "the bucket does not exist (S3 answered NoSuchBucket): create it, or check the bucket's name".into(),
        Problem::OtherRegion(Some(r)) => format!("the bucket is in {r} (S3 said so): pass --s3-region {r}"),
        Problem::OtherRegion(None) => "the bucket is in another region (S3 answered 301 PermanentRedirect): pass --s3-region with the bucket's region (`aws s3api get-bucket-location --bucket BUCKET` says it)".into(),
        Problem::Credentials(line) | Problem::Denied(line) | Problem::Other(line) => line,
        Problem::Unreachable { host, cause } => format!("cannot reach {host}: {cause}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_read_from_endpoints() {
        assert_eq!(
            endpoint_region("b.s3.eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
        assert_eq!(
            endpoint_region("b.s3-eu-west-2.amazonaws.com"),
            Some("eu-west-2")
        );
        assert_eq!(endpoint_region("b.s3.amazonaws.com"), None);
    }

    #[test]
    fn s3_requests_name_their_action_and_resource() {
        assert_eq!(
            s3_action("PUT", "http://127.0.0.1:1/b/run/_LOCK"),
            (
                "s3:PutObject".into(),
                Some("arn:aws:s3:::b/run/_LOCK".into())
            )
        );
        assert_eq!(
            s3_action(
                "GET",
                "https://s3.us-east-1.amazonaws.com/b?list-type=2&prefix=x"
            ),
            ("s3:ListBucket".into(), Some("arn:aws:s3:::b".into()))
        );
        assert_eq!(s3_action("POST", "http://h/b?delete").0, "s3:DeleteObject");
    }

    #[test]
    fn object_store_text_is_shortened() {
        let text = "Generic S3 error: Error performing PUT http://127.0.0.1:1/b/k in 2.1s, after 3 retries, max_retries: 10, retry_timeout: 180s  - Server returned non-2xx status code: 500 Internal Server Error: ";
        assert_eq!(
            shorten(text),
            "PUT failed: Server returned non-2xx status code: 500 Internal Server Error: (after 3 retries)"
        );
        assert_eq!(
            tag("<Error><Code>NoSuchBucket</Code></Error>", "Code"),
            Some("NoSuchBucket")
        );
    }
}
