//! An access denied, said as what to fix: which action on which resource was refused,
//! for whom, and which of the policies shipped in `iam/` grants it (and in which
//! statement), read from the policies themselves (built into the binary).

/// The policies in `iam/`, as shipped.
const POLICIES: &[(&str, &str)] = &[
    (
        "iam/export-policy.json",
        include_str!("../../../../iam/export-policy.json"),
    ),
    (
        "iam/import-policy.json",
        include_str!("../../../../iam/import-policy.json"),
    ),
    (
        "iam/native-policy.json",
        include_str!("../../../../iam/native-policy.json"),
    ),
    (
        "iam/emr-policy.json",
        include_str!("../../../../iam/emr-policy.json"),
    ),
];

/// What an AccessDenied answer was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The caller (`arn:aws:iam::123456789012:user/backup`), when the answer says.
    pub principal: Option<String>,
    /// The IAM action (`dynamodb:Scan`).
    pub action: String,
    /// The resource's ARN, when known.
    pub resource: Option<String>,
}

impl Denied {
    /// Read AWS's own words: `User: P is not authorized to perform: A on resource: R
    /// [because ... | Encoded authorization failure message: ...]`.
    pub fn parse(message: &str) -> Option<Self> {
        let (before, after) = message.split_once("is not authorized to perform: ")?;
        let principal = before
            .rsplit_once("User: ")
            .map(|(_, p)| p.trim().to_string())
            .filter(|p| !p.is_empty());
        let (action, rest) = match after.split_once(" on resource: ") {
            Some((a, r)) => (a, Some(r)),
            None => (after.split_whitespace().next().unwrap_or(""), None),
        };
        let action = action.trim().trim_end_matches(':').to_string();
        let resource = rest.map(|r| {
            r.split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(['"', '\'', ',', '.'])
                .to_string()
        });
        (!action.is_empty()).then_some(Self {
            principal,
            action,
            resource: resource.filter(|r| !r.is_empty()),
        })
    }

    /// One line: what was refused, and where the permission is.
    pub fn explain(&self) -> String {
        let who = self
            .principal
            .as_deref()
            .map(|p| format!("{p} may not call"))
            .unwrap_or_else(|| "not allowed:".into());
        let on = self
            .resource
            .as_deref()
            .map(|r| format!(" on {r}"))
            .unwrap_or_default();
        let grants = granting(&self.action);
        let fix = if grants.is_empty() {
            "no policy in iam/ grants it: allow it in the caller's policy".to_string()
        } else {
            format!(
                "{} grant{} it: attach {} (with its placeholders filled in) to the caller, or add the action to the caller's policy",
                grants.join(" and "),
                if grants.len() == 1 { "s" } else { "" },
                if grants.len() == 1 { "it" } else { "one" },
            )
        };
        format!("access denied: {who} {}{on}; {fix}", self.action)
    }
}

/// The policies (and their statements) that allow `action`.
pub fn granting(action: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (file, text) in POLICIES {
        let Ok(policy) = serde_json::from_str::<serde_json::Value>(text) else {
            continue;
        };
        let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
        for st in statements {
            let actions: Vec<&str> = match &st["Action"] {
                serde_json::Value::String(a) => vec![a.as_str()],
                serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
                _ => Vec::new(),
            };
            if st["Effect"] == "Allow" && actions.iter().any(|a| matches(a, action)) {
                let sid = st["Sid"].as_str().unwrap_or("?");
                found.push(format!("{file} (statement {sid})"));
            }
        }
    }
    found
}

/// An IAM action pattern (`dynamodb:*`, `s3:Get*`) against an action, case aside as IAM does.
fn matches(pattern: &str, action: &str) -> bool {
    let (p, a) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    match p.strip_suffix('*') {
        Some(prefix) => a.starts_with(prefix),
        None => p == a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_words_are_read_and_the_policy_named() {
        let d = Denied::parse("User: arn:aws:iam::123456789012:user/backup is not authorized to perform: dynamodb:DescribeTable on resource: arn:aws:dynamodb:us-east-1:123456789012:table/T because no identity-based policy allows the dynamodb:DescribeTable action").unwrap();
        assert_eq!(
            d,
            Denied {
                principal: Some("arn:aws:iam::123456789012:user/backup".into()),
                action: "dynamodb:DescribeTable".into(),
                resource: Some("arn:aws:dynamodb:us-east-1:123456789012:table/T".into()),
            }
        );
        let line = d.explain();
        assert!(
            line.contains("iam/export-policy.json (statement ReadTheAppsTables)"),
            "{line}"
        );
        assert!(line.contains("iam/import-policy.json"), "{line}");
        // S3 quotes its resource; fakecloud adds an encoded message.
        let d = Denied::parse("User: arn:aws:iam::1:user/u is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::b/k\" because no identity-based policy allows the s3:PutObject action").unwrap();
        assert_eq!(d.resource.as_deref(), Some("arn:aws:s3:::b/k"));
        let d = Denied::parse("User: arn:aws:iam::1:user/u is not authorized to perform: dynamodb:Scan on resource: arn:aws:dynamodb:us-east-1:1:table/T Encoded authorization failure message: eJx").unwrap();
        assert_eq!(
            d.resource.as_deref(),
            Some("arn:aws:dynamodb:us-east-1:1:table/T")
        );
        assert!(!d.explain().contains("eJx"));
        assert_eq!(Denied::parse("Access Denied"), None);
    }

    #[test]
    fn every_shipped_policy_parses_and_an_unknown_action_has_none() {
        for (file, text) in POLICIES {
            serde_json::from_str::<serde_json::Value>(text)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        assert!(granting("sts:AssumeRole").is_empty());
        assert!(!granting("s3:putobject").is_empty());
        assert!(granting("s3:PutObject")
            .iter()
            .any(|g| g.starts_with("iam/export-policy.json")));
    }
}
