//! BatchWriteItem calls whose requests are already wire JSON, for imports.
//!
//! An import reads each item of a DynamoDB JSON data file straight into the API's wire
//! JSON ([`checked_item`](crate::wire::checked_item)); building the SDK's item maps
//! only for the SDK to serialise them again was, with the parse behind it, most of an
//! import's CPU (profile in `docs/BENCHMARKS.md`, issue 16). [`send`] keeps the SDK for
//! everything else about the call (endpoint, signing, timeouts, retries, error answers
//! and reading the answer, `UnprocessedItems` included): the SDK serialises a call with
//! no requests, and an interceptor puts [`RequestBody`]'s bytes in its place before the
//! request is signed, on every attempt.

use crate::Error;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::batch_write_item::builders::BatchWriteItemFluentBuilder;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemError, BatchWriteItemOutput};
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, WriteRequest};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;

use crate::item::json::{write_map, write_str, UPPER_KEYS};

/// The write requests of one call, as BatchWriteItem's JSON.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    json: Vec<u8>,
    count: usize,
}

impl Requests {
    /// How many requests there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds a put of `item`, an attribute map in wire JSON.
    pub fn put(&mut self, item: &[u8]) {
        self.push(b"{\"PutRequest\":{\"Item\":", item);
    }

    /// Adds a delete of `key`, an attribute map in wire JSON.
    pub fn delete(&mut self, key: &[u8]) {
        self.push(b"{\"DeleteRequest\":{\"Key\":", key);
    }

    fn push(&mut self, head: &[u8], map: &[u8]) {
        if self.count > 0 {
            self.json.push(b',');
        }
        self.json.extend_from_slice(head);
        self.json.extend_from_slice(map);
        self.json.extend_from_slice(b"}}");
        self.count += 1;
    }

    /// The requests DynamoDB left unprocessed, as it sent them back; `Err` for one that
    /// is neither a put nor a delete (never dropped unsaid).
    pub fn from_sdk(requests: &[WriteRequest]) -> crate::Result<Self> {
        let mut out = Self::default();
        let mut map = Vec::new();
        for r in requests {
            map.clear();
            if let Some(item) = r.put_request().map(|p| p.item()) {
                write_map(item, &UPPER_KEYS, &mut map);
                out.put(&map);
            } else if let Some(key) = r.delete_request().map(|d| d.key()) {
                write_map(key, &UPPER_KEYS, &mut map);
                out.delete(&map);
            } else {
                return Err(Error::Failed(
                    "an unprocessed request that is neither a put nor a delete".into(),
                ));
            }
        }
        Ok(out)
    }

    /// The length of the requests' JSON.
    pub fn json_len(&self) -> usize {
        self.json.len()
    }
}

/// The whole body of a call writing `requests` into `table`, consumed capacity asked for.
pub fn request_body(table: &str, requests: &Requests) -> Bytes {
    let mut body = Vec::with_capacity(requests.json.len() + table.len() + 64);
    body.extend_from_slice(b"{\"RequestItems\":{");
    write_str(table, &mut body);
    body.extend_from_slice(b":[");
    body.extend_from_slice(&requests.json);
    body.extend_from_slice(b"]},\"ReturnConsumedCapacity\":\"TOTAL\"}");
    Bytes::from(body)
}

/// Sends `call` (a BatchWriteItem call with no requests yet) with `requests` into `table`.
pub async fn send(
    call: BatchWriteItemFluentBuilder,
    table: &str,
    requests: &Requests,
) -> Result<BatchWriteItemOutput, SdkError<BatchWriteItemError, HttpResponse>> {
    call.request_items(table, Vec::new())
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .customize()
        .interceptor(RequestBody(request_body(table, requests)))
        .send()
        .await
}

/// Per-call interceptor: the request's body, put in place before each attempt is signed.
#[derive(Debug)]
struct RequestBody(Bytes);

impl Intercept for RequestBody {
    fn name(&self) -> &'static str {
        "ddbx::RequestBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        *request.body_mut() = SdkBody::from(self.0.clone());
        request
            .headers_mut()
            .insert("content-length", self.0.len().to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The body sent against the one the SDK serialises for the same requests.

    use super::*;
    use crate::item::test_support::item;
    use crate::item::Item;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest};
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    /// A request as sent: its body, its Content-Length, whether it was signed.
    type Seen = (Vec<u8>, Option<String>, bool);

    /// Keeps each request's body and headers; answers with the first of `answers` (the
    /// last one again and again).
    #[derive(Debug, Clone)]
    struct Capture {
        seen: Arc<Mutex<Vec<Seen>>>,
        answers: Arc<Mutex<Vec<(u16, &'static str)>>>,
    }

    impl Capture {
        fn new(answers: &[(u16, &'static str)]) -> Self {
            Self {
                seen: Default::default(),
                answers: Arc::new(Mutex::new(answers.to_vec())),
            }
        }
    }

    impl HttpConnector for Capture {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let body = request.body().bytes().unwrap_or_default().to_vec();
            let length = request.headers().get("content-length").map(str::to_string);
            let signed = request
                .headers()
                .get("authorization")
                .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"));
            self.seen.lock().unwrap().push((body, length, signed));
            let mut answers = self.answers.lock().unwrap();
            let (status, answer) = if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0]
            };
            HttpConnectorFuture::ready(Ok(HttpResponse::new(
                status.try_into().unwrap(),
                SdkBody::from(answer),
            )))
        }
    }

    impl HttpClient for Capture {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    fn client(capture: &Capture) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .endpoint_url("http://127.0.0.1:9")
            .http_client(capture.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    fn sdk_requests(puts: &[Item], deletes: &[Item]) -> Vec<WriteRequest> {
        let puts = puts.iter().map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(i.clone()))
                        .build()
                        .unwrap(),
                )
                .build()
        });
        let deletes = deletes.iter().map(|k| {
            WriteRequest::builder()
                .delete_request(
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .unwrap(),
                )
                .build()
        });
        puts.chain(deletes).collect()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The same JSON as the SDK's own serialisation (compared as JSON values: the
        /// SDK's order of names is not ours), its length in the header, signed.
        #[test]
        fn the_body_is_what_the_sdk_would_send(
            puts in prop::collection::vec(item(), 0..6),
            deletes in prop::collection::vec(item(), 0..3),
        ) {
            let capture = Capture::new(&[(200, "{}")]);
            let client = client(&capture);
            let sdk = sdk_requests(&puts, &deletes);
            let wire = Requests::from_sdk(&sdk).unwrap();
            prop_assert_eq!(wire.len(), puts.len() + deletes.len());
            block_on(async {
                client
                    .batch_write_item()
                    .request_items("T.1", sdk.clone())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .unwrap();
                send(client.batch_write_item(), "T.1", &wire).await.unwrap();
            });
            let seen = capture.seen.lock().unwrap();
            let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
            prop_assert_eq!(json(&seen[1].0), json(&seen[0].0));
            prop_assert_eq!(seen[1].1.clone(), Some(seen[1].0.len().to_string()));
            prop_assert!(seen[1].2, "signed");
        }
    }

    #[test]
    fn every_attempt_sends_the_body_and_unprocessed_items_come_back() {
        let capture = Capture::new(&[
            (
                500,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"x"}"#,
            ),
            (
                200,
                r#"{"UnprocessedItems":{"T":[{"PutRequest":{"Item":{"k":{"S":"b"}}}}]},"ConsumedCapacity":[{"TableName":"T","CapacityUnits":1.0}]}"#,
            ),
        ]);
        let client = client(&capture);
        let mut wire = Requests::default();
        wire.put(br#"{"k":{"S":"a"}}"#);
        wire.put(br#"{"k":{"S":"b"}}"#);
        let out = block_on(send(client.batch_write_item(), "T", &wire)).unwrap();
        let left = out.unprocessed_items().unwrap()["T"].clone();
        let again = Requests::from_sdk(&left).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            String::from_utf8(request_body("T", &again).to_vec()).unwrap(),
            r#"{"RequestItems":{"T":[{"PutRequest":{"Item":{"k":{"S":"b"}}}}]},"ReturnConsumedCapacity":"TOTAL"}"#
        );
        assert_eq!(out.consumed_capacity()[0].capacity_units(), Some(1.0));
        // The SDK's retry of the 500 sent the same body again.
        let seen = capture.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        for (body, length, signed) in seen.iter() {
            assert_eq!(
                String::from_utf8(body.clone()).unwrap(),
                r#"{"RequestItems":{"T":[{"PutRequest":{"Item":{"k":{"S":"a"}}}},{"PutRequest":{"Item":{"k":{"S":"b"}}}}]},"ReturnConsumedCapacity":"TOTAL"}"#
            );
            assert_eq!(length.as_deref(), Some(body.len().to_string().as_str()));
            assert!(signed);
        }
    }
}
