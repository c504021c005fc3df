//! First contact with an endpoint, and what stops a run before its tables do.
//!
//! A DynamoDB endpoint that has never answered in this run (a name that does not resolve,
//! a port nobody listens on, no route) is given [`FIRST_CONTACT`] in all, then the run is
//! told "cannot reach <host>: <cause>": a mistyped `--endpoint-url` or a machine without
//! a way out fails in seconds, not after the minutes of retries a network blip in the
//! middle of a run deserves (once the endpoint has answered, the usual retry policy
//! applies). An interceptor on the client sees every attempt: the host it went to, and
//! whether any answer came back.
//!
//! An error that no table can get past (credentials refused or expired, an endpoint
//! never reached) is recorded once ([`Contact::stop`]): every later call fails at once
//! with it, and the command says that one line instead of one failure per table.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The most time the first call to an endpoint that never answers may take, its retries
/// included (with what the command does before it, 15 s at most in all).
pub const FIRST_CONTACT: Duration = Duration::from_secs(12);

/// What a run knows of one endpoint.
#[derive(Debug, Default)]
pub struct Contact {
    answered: AtomicBool,
    host: Mutex<Option<String>>,
    stopped: Mutex<Option<String>>,
}

impl Contact {
    /// Whether any answer (even an error) ever came back from the endpoint.
    pub fn answered(&self) -> bool {
        self.answered.load(Ordering::SeqCst)
    }

    /// The host (and port) requests went to, as the client resolved the endpoint.
    pub fn host(&self) -> String {
        self.host
            .lock()
            .expect("not poisoned")
            .clone()
            .unwrap_or_else(|| "the endpoint".into())
    }

    /// Record the error that stops the run (the first one wins).
    pub fn stop(&self, message: &str) {
        let mut stopped = self.stopped.lock().expect("not poisoned");
        if stopped.is_none() {
            *stopped = Some(message.to_string());
        }
    }

    /// The error that stops the run, once one was recorded.
    pub fn stopped(&self) -> Option<String> {
        self.stopped.lock().expect("not poisoned").clone()
    }

    /// The interceptor that keeps this contact up to date, for a client's config.
    pub fn watch(self: &Arc<Self>) -> Watch {
        Watch(self.clone())
    }
}

/// The interceptor of [`Contact`].
#[derive(Debug)]
pub struct Watch(Arc<Contact>);

impl Intercept for Watch {
    fn name(&self) -> &'static str {
        "ddbx::aws::contact"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut host = self.0.host.lock().expect("not poisoned");
        if host.is_none() {
            *host = authority(context.request().uri());
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.answered.store(true, Ordering::SeqCst);
        Ok(())
    }
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
    fn the_first_stop_wins() {
        let c = Contact::default();
        assert_eq!(c.stopped(), None);
        c.stop("one");
        c.stop("two");
        assert_eq!(c.stopped().as_deref(), Some("one"));
        assert_eq!(c.host(), "the endpoint");
    }
}
