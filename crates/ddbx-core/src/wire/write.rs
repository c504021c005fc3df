//! BatchWriteItem calls whose requests are already wire JSON, for imports.
//!
//! An import reads each item of a DynamoDB JSON data file straight into the API's wire
//! JSON ([`checked_item`](crate::wire::checked_item)); building the SDK's item maps
//! only for the SDK to serialise them again was, with the parse behind it, most of an
//! import's CPU (profile in `docs/BENCHMARKS.md`, issue 16). [`send`] has
//! [`Direct`](crate::aws::direct::Direct) sign and send the body and reads its answer
//! here (`UnprocessedItems` back into wire JSON): the SDK's orchestrator around each call
//! was a third of an import's CPU (issue 26). Before the SDK's client has made a call,
//! [`send_with_sdk`] sends it through the SDK: it serialises a call with no requests, and
//! an interceptor puts [`RequestBody`]'s bytes in its place before the request is signed,
//! on every attempt.

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

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::aws::Aws;
use crate::item::json::{read_map, write_map, write_str, Path, UPPER_KEYS};

/// The write requests of one call into one table, held as the body of that call being
/// built (`{"RequestItems":{"<table>":[`, then the requests), which
/// [`into_body`](Self::into_body) closes where it is: sending them copies nothing (why:
/// copying each call's requests into its body was a percent of an import's CPU, issue 26).
#[derive(Debug, Clone)]
pub struct Requests {
    body: Vec<u8>,
    /// Where the requests begin.
    head: usize,
    count: usize,
}

/// What closes a call's body after its requests.
const BODY_END: &[u8] = b"]},\"ReturnConsumedCapacity\":\"TOTAL\"}";

impl Requests {
    /// No requests yet, into `table`.
    pub fn new(table: &str) -> Self {
        Self::with_capacity(table, 0)
    }

    /// No requests yet, into `table`, with room for `bytes` of their JSON.
    pub fn with_capacity(table: &str, bytes: usize) -> Self {
        let mut body = Vec::with_capacity(bytes + table.len() + 32 + BODY_END.len());
        body.extend_from_slice(b"{\"RequestItems\":{");
        write_str(table, &mut body);
        body.extend_from_slice(b":[");
        Self {
            head: body.len(),
            body,
            count: 0,
        }
    }

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
            self.body.push(b',');
        }
        self.body.extend_from_slice(head);
        self.body.extend_from_slice(map);
        self.body.extend_from_slice(b"}}");
        self.count += 1;
    }

    /// The requests DynamoDB left unprocessed in `table`, as it sent them back; `Err` for
    /// one that is neither a put nor a delete (never dropped unsaid).
    pub fn from_sdk(table: &str, requests: &[WriteRequest]) -> crate::Result<Self> {
        let mut out = Self::new(table);
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
        self.body.len() - self.head
    }

    /// The whole body of the call writing these requests, consumed capacity asked for.
    pub fn into_body(mut self) -> Bytes {
        self.body.extend_from_slice(BODY_END);
        Bytes::from(self.body)
    }
}

/// What one BatchWriteItem call did.
#[derive(Debug)]
pub struct Written {
    /// The requests DynamoDB left unprocessed, as it sent them back.
    pub unprocessed: Requests,
    /// The capacity it reports consumed in the table, when it reports it.
    pub consumed: Option<f64>,
}

/// One attempt of writing `requests` into `table`: signed and sent by
/// [`Direct`](crate::aws::direct::Direct) once the SDK's client has shown the endpoint
/// (why: its profile), else by the SDK ([`send_with_sdk`]).
pub async fn send(
    aws: &Aws,
    table: &str,
    body: Bytes,
) -> Result<Written, SdkError<BatchWriteItemError, HttpResponse>> {
    let answer = aws
        .direct
        .call(BATCH_WRITE_ITEM, body.clone(), BatchWriteItemError::generic)
        .await;
    match answer {
        Some(answer) => {
            let answer = answer?;
            read_answer(table, &answer).map_err(|e| {
                let raw = HttpResponse::new(200.try_into().expect("200"), SdkBody::from(answer));
                SdkError::response_error(e, raw)
            })
        }
        None => {
            let out = send_with_sdk(aws.dynamodb.batch_write_item(), table, body).await?;
            let left = out.unprocessed_items().and_then(|u| u.get(table));
            let unprocessed = Requests::from_sdk(table, left.map_or(&[], Vec::as_slice))
                .map_err(|e| SdkError::construction_failure(e.to_string()))?;
            let consumed = out.consumed_capacity().iter();
            let consumed = consumed_in(
                table,
                consumed.map(|c| (c.table_name(), c.capacity_units())),
            );
            Ok(Written {
                unprocessed,
                consumed,
            })
        }
    }
}

/// BatchWriteItem's target in DynamoDB's JSON protocol.
const BATCH_WRITE_ITEM: &str = "DynamoDB_20120810.BatchWriteItem";

/// Sends `call` (a BatchWriteItem call with no requests yet) with `body`
/// ([`Requests::into_body`]) in place of the one the SDK serialises.
pub async fn send_with_sdk(
    call: BatchWriteItemFluentBuilder,
    table: &str,
    body: Bytes,
) -> Result<BatchWriteItemOutput, SdkError<BatchWriteItemError, HttpResponse>> {
    call.request_items(table, Vec::new())
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .customize()
        .interceptor(RequestBody(body))
        .send()
        .await
}

/// A BatchWriteItem answer: `UnprocessedItems` of `table` (each put's item or delete's key
/// read as DynamoDB JSON and written as wire JSON, names sorted) and its `ConsumedCapacity`.
/// `Err` for an answer that is not that JSON, or a request that is neither a put nor a
/// delete (never dropped unsaid).
fn read_answer(table: &str, body: &[u8]) -> Result<Written, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "UnprocessedItems")]
        unprocessed: Option<HashMap<String, Vec<Map<String, Value>>>>,
        #[serde(rename = "ConsumedCapacity")]
        consumed: Option<Vec<Consumed>>,
    }
    #[derive(serde::Deserialize)]
    struct Consumed {
        #[serde(rename = "TableName")]
        table: Option<String>,
        #[serde(rename = "CapacityUnits")]
        units: Option<f64>,
    }
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("BatchWriteItem's answer: {e}"))?;
    let mut unprocessed = Requests::new(table);
    let mut map = Vec::new();
    let left = answer.unprocessed.unwrap_or_default().remove(table);
    for request in left.unwrap_or_default() {
        let (delete, inner) = match (request.get("PutRequest"), request.get("DeleteRequest")) {
            (Some(put), None) => (false, put.get("Item")),
            (None, Some(delete)) => (true, delete.get("Key")),
            _ => (false, None),
        };
        let Some(Value::Object(attributes)) = inner else {
            return Err("an unprocessed request that is neither a put nor a delete".into());
        };
        let item = read_map(attributes, &Path::Root)
            .map_err(|e| format!("an unprocessed request: {e}"))?;
        map.clear();
        write_map(&item, &UPPER_KEYS, &mut map);
        if delete {
            unprocessed.delete(&map);
        } else {
            unprocessed.put(&map);
        }
    }
    let consumed = answer.consumed.unwrap_or_default();
    let consumed = consumed_in(
        table,
        consumed.iter().map(|c| (c.table.as_deref(), c.units)),
    );
    Ok(Written {
        unprocessed,
        consumed,
    })
}

/// The capacity units reported for `table` (or for no table named), summed; `None` when
/// none is reported.
fn consumed_in<'a>(
    table: &str,
    reported: impl Iterator<Item = (Option<&'a str>, Option<f64>)>,
) -> Option<f64> {
    reported
        .filter(|(t, _)| t.is_none_or(|t| t == table))
        .filter_map(|(_, units)| units)
        .reduce(|a, b| a + b)
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

    /// Each request's headers, names in lower case.
    type Headers = Arc<Mutex<Vec<Vec<(String, String)>>>>;

    /// Keeps each request's body and headers; answers with the first of `answers` (the
    /// last one again and again).
    #[derive(Debug, Clone)]
    struct Capture {
        seen: Arc<Mutex<Vec<Seen>>>,
        headers: Headers,
        answers: Arc<Mutex<Vec<(u16, &'static str)>>>,
    }

    impl Capture {
        fn new(answers: &[(u16, &'static str)]) -> Self {
            Self {
                seen: Default::default(),
                headers: Default::default(),
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
            let headers = request.headers().iter();
            let headers = headers.map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()));
            self.headers.lock().unwrap().push(headers.collect());
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
            let wire = Requests::from_sdk("T.1", &sdk).unwrap();
            prop_assert_eq!(wire.len(), puts.len() + deletes.len());
            block_on(async {
                client
                    .batch_write_item()
                    .request_items("T.1", sdk.clone())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .unwrap();
                send_with_sdk(client.batch_write_item(), "T.1", wire.into_body())
                    .await
                    .unwrap();
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
        let mut wire = Requests::new("T");
        wire.put(br#"{"k":{"S":"a"}}"#);
        wire.put(br#"{"k":{"S":"b"}}"#);
        let out = block_on(send_with_sdk(
            client.batch_write_item(),
            "T",
            wire.into_body(),
        ))
        .unwrap();
        let left = out.unprocessed_items().unwrap()["T"].clone();
        let again = Requests::from_sdk("T", &left).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            String::from_utf8(again.into_body().to_vec()).unwrap(),
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

    /// A fixed clock, for the SDK and [`Direct`] to sign at the same instant.
    #[derive(Debug)]
    struct Fixed(std::time::SystemTime);

    impl aws_types::sdk_config::TimeSource for Fixed {
        fn now(&self) -> std::time::SystemTime {
            self.0
        }
    }

    /// `name: value` of a captured request.
    fn header<'h>(headers: &'h [(String, String)], name: &str) -> &'h str {
        let found = headers.iter().find(|(k, _)| k == name);
        found.map_or("", |(_, v)| v.as_str())
    }

    /// Direct's SigV4 against the SDK's: the same headers, body and instant signed by both
    /// give the same Authorization (session token included); and what Direct sends is
    /// signed over its own headers at that instant, with the body the SDK would send.
    #[test]
    fn direct_signs_as_the_sdk_signs() {
        use crate::aws::contact::Contact;
        use crate::aws::direct::Direct;
        use aws_credential_types::provider::SharedCredentialsProvider;
        use aws_types::sdk_config::SharedTimeSource;
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_765_000_000);
        let time = SharedTimeSource::new(Fixed(at));
        let creds = Credentials::new("AKIDTEST", "secret/key", Some("token+1".into()), None, "t");
        let capture = Capture::new(&[(200, "{}")]);
        let contact = Arc::new(Contact::default());
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-3"))
            .credentials_provider(creds.clone())
            .endpoint_url("http://127.0.0.1:9")
            .http_client(capture.clone())
            .time_source(time.clone())
            .interceptor(contact.watch())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        let direct = Direct::new(
            SharedHttpConnector::new(capture.clone()),
            SharedCredentialsProvider::new(creds.clone()),
            "eu-west-3".into(),
            std::time::Duration::from_secs(60),
            time,
            contact.clone(),
        );
        let mut wire = Requests::new("T.1");
        wire.put(br#"{"k":{"S":"a b/\u00e9"}}"#);
        let body = wire.into_body();
        assert!(!direct.ready());
        block_on(send_with_sdk(
            client.batch_write_item(),
            "T.1",
            body.clone(),
        ))
        .unwrap();
        assert!(direct.ready());
        let answer =
            block_on(direct.call(BATCH_WRITE_ITEM, body.clone(), BatchWriteItemError::generic));
        assert_eq!(answer.unwrap().unwrap(), Bytes::from_static(b"{}"));

        let headers = capture.headers.lock().unwrap();
        let (sdk, ours) = (&headers[0], &headers[1]);
        let auth = header(sdk, "authorization");
        let signed = auth
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let mine: Vec<(&str, &str)> = signed
            .split(';')
            .filter(|h| !["x-amz-date", "x-amz-security-token", "host"].contains(h))
            .map(|h| (h, header(sdk, h)))
            .collect();
        assert!(signed.contains("x-amz-security-token"), "{signed}");
        let identity = creds.clone().into();
        let endpoint = contact.endpoint().unwrap();
        let authorization = |headers: &[(&str, &str)]| {
            let again = direct.instructions(&identity, at, endpoint, headers, &body);
            let mut request = http::Request::new(());
            again.unwrap().apply_to_request_http1x(&mut request);
            request.headers()["authorization"]
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(authorization(&mine), auth);
        // The SDK leaves Host to the signer (from the URL) and to hyper; Direct names it.
        let named: Vec<_> = mine
            .iter()
            .copied()
            .chain([("host", "127.0.0.1:9")])
            .collect();
        assert_eq!(authorization(&named), auth);

        assert_eq!(header(ours, "x-amz-date"), header(sdk, "x-amz-date"));
        assert_eq!(header(ours, "x-amz-security-token"), "token+1");
        assert_eq!(header(ours, "x-amz-target"), BATCH_WRITE_ITEM);
        assert_eq!(header(ours, "content-type"), "application/x-amz-json-1.0");
        assert_eq!(header(ours, "host"), "127.0.0.1:9");
        let ours_signed = header(ours, "authorization");
        assert!(ours_signed.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20251206/eu-west-3/dynamodb/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="
        ), "{ours_signed}");
        let seen = capture.seen.lock().unwrap();
        assert_eq!(seen[1].0, seen[0].0);
        assert_eq!(seen[1].1, Some(body.len().to_string()));
    }

    /// Over real HTTP to the canned endpoint: once the SDK's client has made a call, writes
    /// go through [`Direct`]; unprocessed items and consumed capacity are read back, and
    /// error answers are the SDK's errors, classified as before.
    #[tokio::test]
    async fn direct_writes_read_unprocessed_items_and_errors() {
        use crate::aws::canned::Canned;
        use crate::aws::{classify, ErrorClass};
        use aws_sdk_dynamodb::error::ProvideErrorMetadata;
        let unprocessed = r#"{"UnprocessedItems":{"T":[{"PutRequest":{"Item":{"z":{"N":"1.50"},"k":{"B":"AAE="}}}},{"DeleteRequest":{"Key":{"k":{"S":"d"}}}}],"U":[{"PutRequest":{"Item":{"k":{"S":"other"}}}}]},"ConsumedCapacity":[{"TableName":"T","CapacityUnits":2.5},{"TableName":"U","CapacityUnits":9.0}]}"#;
        let canned = Canned::start(vec![
            (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no"}"#.into()),
            (200, unprocessed.into()),
            (400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#.into()),
            (500, "<html>oops</html>".into()),
            (200, r#"{"UnprocessedItems":{"T":[{"PutRequest":{"Item":{"k":{"Q":"?"}}}}]}}"#.into()),
        ])
        .await;
        let aws = Aws::for_tests(&canned.url, crate::clock::ManualClock::default());
        let mut wire = Requests::new("T");
        wire.put(br#"{"k":{"S":"a"}}"#);
        let wire = wire.into_body();
        // Before any call of the SDK's client, the SDK sends it.
        assert!(!aws.direct.ready());
        let first = send(&aws, "T", wire.clone()).await.unwrap_err();
        assert_eq!(first.code(), Some("ResourceNotFoundException"));
        assert!(aws.direct.ready());

        let written = send(&aws, "T", wire.clone()).await.unwrap();
        assert_eq!(written.consumed, Some(2.5));
        assert_eq!(written.unprocessed.len(), 2);
        assert_eq!(
            String::from_utf8(written.unprocessed.into_body().to_vec()).unwrap(),
            r#"{"RequestItems":{"T":[{"PutRequest":{"Item":{"k":{"B":"AAE="},"z":{"N":"1.50"}}}},{"DeleteRequest":{"Key":{"k":{"S":"d"}}}}]},"ReturnConsumedCapacity":"TOTAL"}"#
        );

        let throttled = send(&aws, "T", wire.clone()).await.unwrap_err();
        assert_eq!(
            throttled.code(),
            Some("ProvisionedThroughputExceededException")
        );
        assert_eq!(throttled.message(), Some("slow down"));
        assert_eq!(classify(&throttled), ErrorClass::Throttled);
        let failed = send(&aws, "T", wire.clone()).await.unwrap_err();
        assert_eq!(classify(&failed), ErrorClass::Transient);
        let bad = send(&aws, "T", wire.clone()).await.unwrap_err();
        assert!(matches!(bad, SdkError::ResponseError(_)), "{bad:?}");
        assert_eq!(classify(&bad), ErrorClass::Transient);

        let requests = canned.requests.lock().unwrap();
        let sent: serde_json::Value = serde_json::from_slice(&wire).unwrap();
        assert_eq!(requests.len(), 5);
        for (op, body) in requests.iter() {
            assert_eq!(op, "BatchWriteItem");
            assert_eq!(body, &sent);
        }
    }
}
