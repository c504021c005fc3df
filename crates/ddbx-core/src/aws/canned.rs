//! For unit tests: an HTTP endpoint that answers DynamoDB-style JSON calls from a list of
//! canned answers, in order, and records every request (its `X-Amz-Target` and body), and
//! an [`Aws`] aimed at it with a manual clock (retries do not wait).

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::aws::{Aws, AwsSettings};
use crate::clock::ManualClock;
use crate::retry::RetryPolicy;
use crate::store::{S3Settings, Storage};

/// A running canned endpoint.
pub(crate) struct Canned {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What was asked: the operation (`DescribeExport`) and the JSON body.
    pub requests: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Canned {
    /// Answer each request with the next `(status, body)`; past the last, a 500.
    pub async fn start(answers: Vec<(u16, String)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (seen, answers) = (seen.clone(), answers.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some((head, body)) = read(&mut conn, &mut buf).await else {
                            return;
                        };
                        let target = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("x-amz-target")
                                    .then(|| v.trim().to_string())
                            })
                            .unwrap_or_default();
                        let op = target.rsplit('.').next().unwrap_or("").to_string();
                        seen.lock()
                            .unwrap()
                            .push((op, serde_json::from_slice(&body).unwrap_or_default()));
                        let (status, text) = answers.lock().unwrap().next().unwrap_or((
                            500,
                            r#"{"__type":"InternalServerError","message":"no more canned answers"}"#.into(),
                        ));
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, requests }
    }

    /// The operations asked, in order.
    pub fn ops(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(o, _)| o.clone())
            .collect()
    }
}

async fn read(conn: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0usize);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 8192];
                let n = conn.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some((head, body));
        }
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl Aws {
    /// Clients aimed at `endpoint` with test credentials, and a manual clock.
    pub(crate) fn for_tests(endpoint: &str, clock: ManualClock) -> Aws {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("t", "t", None, None, "tests"),
                ),
            )
            .build();
        let contact = Arc::new(crate::aws::contact::Contact::default());
        let ddb = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .interceptor(contact.watch())
            .endpoint_url(endpoint)
            .build();
        let emr = aws_sdk_emr::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build();
        let scaling = aws_sdk_applicationautoscaling::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build();
        let direct = crate::aws::direct::Direct::for_sdk(
            &sdk,
            sdk.credentials_provider().expect("credentials"),
            "us-east-1".into(),
            std::time::Duration::from_secs(60),
            contact.clone(),
        )
        .expect("an HTTP client");
        Aws {
            direct: Arc::new(direct),
            storage: Storage::new(S3Settings::default(), "us-east-1", None),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(ddb),
            emr: aws_sdk_emr::Client::from_conf(emr),
            autoscaling: aws_sdk_applicationautoscaling::Client::from_conf(scaling),
            region: "us-east-1".into(),
            settings: AwsSettings::default(),
            retry: RetryPolicy::default(),
            clock: Arc::new(clock),
            sdk,
            contact,
        }
    }
}
