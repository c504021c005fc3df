//! Scan answers handed over as they came off the wire, for exports in the native format.
//!
//! The SDK still does everything else for the call: endpoint, signing, timeouts, retries
//! and error answers. For one Scan call, [`send`] adds an interceptor that, once a
//! successful answer has arrived, swaps the SDK's answer reader for one that reads it
//! with [`WirePage::parse`] (why: see `wire`) and leaves the page in a
//! [`WireSlot`]; the SDK gets a `ScanOutput` with the count, the key to continue from and
//! the consumed capacity, and no items. Error answers never reach that reader. An answer
//! `WirePage` refuses (something it does not reproduce byte for byte, or a truncated
//! body) fails the call, and [`send`] sends the same Scan again for the SDK to read.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::scan::{ScanError, ScanOutput};
use aws_sdk_dynamodb::types::ConsumedCapacity;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, Error as OperationError, Output,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_types::config_bag::ConfigBag;

use crate::wire::WirePage;

/// Sends `scan`, its answer read from the wire into `slot`. When the wire reader refuses
/// the answer, the same Scan is sent again and read by the SDK (the slot stays empty).
pub async fn send(
    scan: ScanFluentBuilder,
    slot: &WireSlot,
) -> Result<ScanOutput, SdkError<ScanError, HttpResponse>> {
    slot.put(Wire::Empty);
    let again = scan.clone();
    let answer = scan
        .customize()
        .interceptor(KeepWire(slot.clone()))
        .send()
        .await;
    if slot.take_refused() {
        return again.send().await;
    }
    answer
}

/// What the wire reader made of a call's answer.
#[derive(Debug, Default)]
enum Wire {
    /// Nothing (yet).
    #[default]
    Empty,
    /// The page, read.
    Page(WirePage),
    /// An answer it did not take.
    Refused,
}

/// Where a Scan call's page is left when it was read from the wire.
#[derive(Debug, Clone, Default)]
pub struct WireSlot(Arc<Mutex<Wire>>);

impl WireSlot {
    /// The page the last call left, if it was read from the wire.
    pub fn take(&self) -> Option<WirePage> {
        match std::mem::take(&mut *self.0.lock().expect("wire slot")) {
            Wire::Page(page) => Some(page),
            _ => None,
        }
    }

    fn take_refused(&self) -> bool {
        let mut wire = self.0.lock().expect("wire slot");
        let refused = matches!(*wire, Wire::Refused);
        if refused {
            *wire = Wire::Empty;
        }
        refused
    }

    fn put(&self, wire: Wire) {
        *self.0.lock().expect("wire slot") = wire;
    }
}

/// Per-call interceptor: installs the wire reader once a successful answer has come.
#[derive(Debug)]
struct KeepWire(WireSlot);

impl Intercept for KeepWire {
    fn name(&self) -> &'static str {
        "ddbx::KeepWire"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.response().status().is_success() {
            cfg.interceptor_state()
                .store_put(SharedResponseDeserializer::new(WireReader(self.0.clone())));
        }
        Ok(())
    }
}

/// Reads a successful Scan answer into the slot.
#[derive(Debug)]
struct WireReader(WireSlot);

impl DeserializeResponse for WireReader {
    fn deserialize_nonstreaming_with_config(
        &self,
        response: &HttpResponse,
        _cfg: &ConfigBag,
    ) -> Result<Output, OrchestratorError<OperationError>> {
        let page = match (response.status().is_success(), response.body().bytes()) {
            (true, Some(body)) => WirePage::parse(body),
            _ => Err(crate::wire::Declined("not a successful answer".to_string())),
        };
        let page = match page {
            Ok(page) => page,
            Err(why) => {
                tracing::debug!(%why, "Scan answer left to the SDK's reader");
                self.0.put(Wire::Refused);
                return Err(OrchestratorError::other(format!(
                    "Scan answer left to the SDK's reader: {why}"
                )));
            }
        };
        let consumed =
            (page.consumed_table.is_some() || page.consumed_units.is_some()).then(|| {
                ConsumedCapacity::builder()
                    .set_table_name(page.consumed_table.clone())
                    .set_capacity_units(page.consumed_units)
                    .build()
            });
        let output = ScanOutput::builder()
            .set_count(page.count)
            .set_scanned_count(page.scanned_count)
            .set_last_evaluated_key(page.last_evaluated_key.clone())
            .set_consumed_capacity(consumed)
            .build();
        self.0.put(Wire::Page(page));
        Ok(Output::erase(output))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The wire reader against the SDK's own reader, on the same answers.

    use super::*;
    use crate::item::dynamodb_json::encode_line;
    use crate::item::test_support::{bytes, item, number_text, text};
    use crate::item::validate::item_size;
    use crate::item::AttributeValue;
    use crate::item::Item;
    use crate::wire::page::tests::page_body;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;
    use proptest::prelude::*;

    /// An HTTP client that answers every request with the same status and body.
    #[derive(Debug, Clone)]
    pub(super) struct Canned(pub(super) u16, pub(super) Arc<Vec<u8>>);

    impl HttpConnector for Canned {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let status = self.0.try_into().expect("status");
            let body = SdkBody::from(self.1.as_ref().clone());
            HttpConnectorFuture::ready(Ok(HttpResponse::new(status, body)))
        }
    }

    impl HttpClient for Canned {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// What each reader made of one answer.
    #[derive(Debug, PartialEq)]
    struct Read {
        lines: String,
        sizes: Vec<u64>,
        count: i32,
        next: Option<Item>,
        units: Option<f64>,
    }

    /// Scan once, with the wire reader or without: what was read (`None` if the call
    /// failed), and whether the page came from the wire.
    fn scan(status: u16, body: &str, wire: bool) -> (Option<Read>, bool) {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .endpoint_url("http://127.0.0.1:9")
            .http_client(Canned(status, Arc::new(body.as_bytes().to_vec())))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        let slot = WireSlot::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let op = client.scan().table_name("T");
            if wire {
                send(op, &slot).await
            } else {
                op.send().await
            }
        });
        let Ok(out) = out else {
            return (None, slot.take().is_some());
        };
        let units = out.consumed_capacity().and_then(|c| c.capacity_units());
        let next = out.last_evaluated_key().cloned();
        let page = slot.take();
        let taken = page.is_some();
        let read = match page {
            Some(page) => Read {
                lines: String::from_utf8(page.lines.clone()).unwrap(),
                sizes: page.items.iter().map(|&(_, s)| s).collect(),
                count: out.count(),
                next,
                units,
            },
            None => {
                let mut lines = Vec::new();
                for i in out.items() {
                    encode_line(i, &mut lines);
                }
                Read {
                    lines: String::from_utf8(lines).unwrap(),
                    sizes: out.items().iter().map(|i| item_size(i) as u64).collect(),
                    count: out.count(),
                    next,
                    units,
                }
            }
        };
        (Some(read), taken)
    }

    /// A key to continue from: one or two attributes of type S, N or B.
    fn key() -> impl Strategy<Value = Item> {
        let value = prop_oneof![
            text(20).prop_map(AttributeValue::S),
            number_text().prop_map(AttributeValue::N),
            bytes().prop_map(|b| AttributeValue::B(aws_smithy_types::Blob::new(b))),
        ];
        prop::collection::hash_map(text(8), value, 1..3)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Byte for byte what the plain path (SDK reader, then `encode_line`) writes, with
        /// the same sizes, count, key to continue from and capacity; and the wire path is
        /// really taken.
        #[test]
        fn the_wire_path_writes_what_the_plain_path_writes(
            items in prop::collection::vec(item(), 0..5),
            next in prop::option::of(key()),
            ascii in any::<bool>(),
            pretty in any::<bool>(),
            units in prop::option::of(0u32..10_000),
        ) {
            let units = units.map(|u| f64::from(u) / 2.0);
            let body = page_body(&items, next.as_ref(), units, ascii, pretty);
            let (plain, _) = scan(200, &body, false);
            let (wire, taken) = scan(200, &body, true);
            prop_assert!(plain.is_some());
            prop_assert!(taken, "the wire path was not taken");
            prop_assert_eq!(&wire, &plain);
        }
    }

    #[test]
    fn odd_answers_go_to_the_sdk_and_read_the_same() {
        for body in [
            r#"{"Items":[{"a":{"S":"x"},"a":{"S":"y"}}],"Count":1}"#,
            r#"{"Items":[{"a":{"s":"x"}}],"Count":1}"#,
            r#"{"Items":[{"a":{"S":"x","N":"1"}}],"Count":1}"#,
            r#"{"Items":[{"a":{"L":[null,{"S":"x"}]}}],"Count":1}"#,
            r#"{"Items":[{"a":{"SS":["x",null]}}],"Count":1}"#,
            r#"{"Items":[{"a":null,"b":{"S":"x"}}],"Count":1}"#,
            r#"{"Items":[{"a":{"B":"aGl="}}],"Count":1}"#,
            r#"{"Items":[{"a":{"S":1}}],"Count":1}"#,
            r#"{"Items":[{"a":{"S":"x"}}],"Count":1,"Unknown":{"x":[1,2]}}"#,
            r#"{"Items":[{"a":{"B":"AM+\/"}}],"Count":1}"#,
            r#"{"Items":null,"Count":0}"#,
            r#"{"Count":3}"#,
        ] {
            let (plain, _) = scan(200, body, false);
            let (wire, taken) = scan(200, body, true);
            assert_eq!(wire, plain, "{body}");
            assert_eq!(taken, WirePage::parse(body.as_bytes()).is_ok(), "{body}");
        }
    }

    #[test]
    fn errors_are_the_sdks() {
        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#;
        let (read, _) = scan(400, body, true);
        assert!(read.is_none());
    }
}
