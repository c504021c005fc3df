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
use std::sync::{Arc, Mutex, OnceLock};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::diagnosis::authority;
pub use crate::diagnosis::FIRST_CONTACT;

/// What a run knows of one endpoint.
#[derive(Debug, Default)]
pub struct Contact {
    answered: AtomicBool,
    /// The URL of the client's first request (its host is [`Contact::host`]).
    endpoint: OnceLock<String>,
    stopped: Mutex<Option<String>>,
}

impl Contact {
    /// Whether any answer (even an error) ever came back from the endpoint.
    pub fn answered(&self) -> bool {
        self.answered.load(Ordering::SeqCst)
    }

    /// The host (and port) requests went to, as the client resolved the endpoint.
    pub fn host(&self) -> String {
        self.endpoint
            .get()
            .and_then(|url| authority(url))
            .unwrap_or_else(|| "the endpoint".into())
    }

    /// The URL the client's first request went to (`https://dynamodb.us-east-1.amazonaws.com/`),
    /// once it made one: where [`Direct`](super::direct::Direct) sends its calls.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.get().map(String::as_str)
    }

    /// An answer came back (to a call made without the client).
    pub fn answered_now(&self) {
        self.answered.store(true, Ordering::SeqCst);
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
        // The first request's URL is kept; later ones go to the same endpoint.
        self.0
            .endpoint
            .get_or_init(|| context.request().uri().to_string());
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.answered_now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
