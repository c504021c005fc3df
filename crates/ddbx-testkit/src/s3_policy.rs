//! An IAM policy applied to S3 requests, as S3 would (for the fault proxy): each request
//! as the actions it needs (an upload carrying Object Lock headers needs
//! `s3:PutObjectRetention` too; a delete naming a version `s3:DeleteObjectVersion`; one
//! bypassing governance `s3:BypassGovernanceRetention`) on its resource, evaluated against
//! the policy's statements: an explicit Deny wins, else an Allow must match, else denied.
//! A DeleteObjects batch is judged key by key, as S3 does.

use serde_json::Value;

/// What the policy says of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every action it needs is allowed.
    Allowed,
    /// This action on this resource is not.
    Denied(String, String),
    /// A DeleteObjects batch: these keys are refused (the others go ahead).
    KeysDenied(Vec<String>),
}

/// Judge the request (`request_line`, `head`, `body`) under `policy` (JSON).
pub fn check(policy: &str, request_line: &str, head: &str, body: &[u8]) -> Verdict {
    let policy: Value = serde_json::from_str(policy).expect("a JSON policy");
    let mut words = request_line.split(' ');
    let method = words.next().unwrap_or("");
    let target = words.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let key = decode(key);
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    let header = |name: &str| {
        head.lines().skip(1).any(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        })
    };
    let bypass = header("x-amz-bypass-governance-retention");
    if method == "POST" && has("delete") {
        return batch(&policy, bucket, body, bypass);
    }
    let resource = if key.is_empty() {
        format!("arn:aws:s3:::{bucket}")
    } else {
        format!("arn:aws:s3:::{bucket}/{key}")
    };
    let mut actions = vec![action(method, !key.is_empty(), &has)];
    if header("x-amz-object-lock-mode") {
        actions.push("s3:PutObjectRetention");
    }
    if bypass {
        actions.push("s3:BypassGovernanceRetention");
    }
    for a in actions {
        if !allowed(&policy, a, &resource) {
            return Verdict::Denied(a.to_string(), resource);
        }
    }
    Verdict::Allowed
}

/// The action a request needs, besides what its headers add.
fn action(method: &str, on_object: bool, has: &dyn Fn(&str) -> bool) -> &'static str {
    match (method, on_object) {
        ("GET", false) if has("versions") => "s3:ListBucketVersions",
        ("GET", false) if has("object-lock") => "s3:GetBucketObjectLockConfiguration",
        ("GET", false) if has("uploads") => "s3:ListBucketMultipartUploads",
        ("GET", false) if has("location") => "s3:GetBucketLocation",
        ("GET", false) => "s3:ListBucket",
        ("PUT", false) if has("object-lock") => "s3:PutBucketObjectLockConfiguration",
        ("PUT", false) if has("versioning") => "s3:PutBucketVersioning",
        ("PUT", false) if has("lifecycle") => "s3:PutLifecycleConfiguration",
        ("PUT", false) => "s3:CreateBucket",
        ("GET" | "HEAD", true) if has("retention") => "s3:GetObjectRetention",
        ("GET" | "HEAD", true) if has("uploadId") => "s3:ListMultipartUploadParts",
        ("GET" | "HEAD", true) if has("versionId") => "s3:GetObjectVersion",
        ("GET" | "HEAD", true) => "s3:GetObject",
        ("PUT", true) if has("retention") => "s3:PutObjectRetention",
        ("PUT", true) if has("legal-hold") => "s3:PutObjectLegalHold",
        ("PUT" | "POST", true) => "s3:PutObject",
        ("DELETE", true) if has("uploadId") => "s3:AbortMultipartUpload",
        ("DELETE", true) if has("versionId") => "s3:DeleteObjectVersion",
        ("DELETE", true) => "s3:DeleteObject",
        ("DELETE", false) => "s3:DeleteBucket",
        _ => "s3:Unknown",
    }
}

/// A DeleteObjects batch, key by key.
fn batch(policy: &Value, bucket: &str, body: &[u8], bypass: bool) -> Verdict {
    let body = String::from_utf8_lossy(body);
    let mut denied = Vec::new();
    for object in body.split("<Object>").skip(1) {
        let field = |name: &str| {
            object
                .split(&format!("<{name}>"))
                .nth(1)
                .and_then(|v| v.split(&format!("</{name}>")).next())
                .map(str::to_string)
        };
        let Some(key) = field("Key") else { continue };
        let resource = format!("arn:aws:s3:::{bucket}/{}", xml_decode(&key));
        let mut needs = vec![if field("VersionId").is_some() {
            "s3:DeleteObjectVersion"
        } else {
            "s3:DeleteObject"
        }];
        if bypass {
            needs.push("s3:BypassGovernanceRetention");
        }
        if !needs.iter().all(|a| allowed(policy, a, &resource)) {
            denied.push(key);
        }
    }
    if denied.is_empty() {
        Verdict::Allowed
    } else {
        Verdict::KeysDenied(denied)
    }
}

/// Whether `policy` allows `action` on `resource` (an explicit Deny wins).
pub fn allowed(policy: &Value, action: &str, resource: &str) -> bool {
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let matching = |effect: &str| {
        statements.iter().any(|s| {
            s["Effect"] == effect
                && list(&s["Action"]).iter().any(|a| glob(a, action))
                && list(&s["Resource"]).iter().any(|r| glob(r, resource))
        })
    };
    !matching("Deny") && matching("Allow")
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM's wildcards: `*` any run of characters (`/` included), `?` any one.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A URL path's percent-escapes decoded.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn xml_decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[test]
fn wildcards_match_as_iam_matches_them() {
    assert!(glob(
        "arn:aws:s3:::b/p/*/_LOCK",
        "arn:aws:s3:::b/p/us-east-1/app/_LOCK"
    ));
    assert!(!glob(
        "arn:aws:s3:::b/p/*/_LOCK",
        "arn:aws:s3:::b/p/us-east-1/app/_LOCKED"
    ));
    assert!(glob("s3:*", "s3:PutObject"));
    assert!(glob("s3:Get?bject", "s3:GetObject"));
    assert_eq!(decode("a%2Fb%20c"), "a/b c");
}
