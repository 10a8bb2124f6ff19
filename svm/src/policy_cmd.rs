//! `svm policy show` (the running policy from the API, as YAML) and `svm policy default` (the
//! built-in default as a commented YAML template that `svm policy check` accepts).

use crate::admin_cli::ClientArgs;
use crate::cli::Exit;

/// The commented template `svm policy default` prints: every field at its default value.
pub const DEFAULT_TEMPLATE: &str = include_str!("policy_default.yaml");

/// Run `svm policy default`.
pub fn default() -> Exit {
    print!("{DEFAULT_TEMPLATE}");
    Exit::Ok
}

/// The running policy's answer (`GET /api/v1/policy`) as YAML, headed by its version.
pub fn show_yaml(body: &[u8]) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable answer: {e}"))?;
    let version = v
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let doc = v.get("document").ok_or("the answer has no document")?;
    let yaml = serde_norway::to_string(doc).map_err(|e| e.to_string())?;
    Ok(format!(
        "# running policy version {version} (0: the configuration's policy file or the built-in default)\n{yaml}"
    ))
}

/// Run `svm policy show`.
pub fn show(client: &ClientArgs) -> Exit {
    crate::admin_cli::get(client, "/api/v1/policy", |body| match show_yaml(body) {
        Ok(y) => print!("{y}"),
        Err(e) => eprintln!("svm: {e}"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_template_is_the_default_policy() {
        let p: policy::Policy = policy::Policy::from_yaml(DEFAULT_TEMPLATE).unwrap();
        assert_eq!(p.to_json(), policy::Policy::default().to_json());
    }

    #[test]
    fn show_prints_yaml_that_reads_back_as_the_document() {
        let doc = policy::Policy::default().to_json();
        let body = serde_json::json!({"version": 4, "etag": "\"4\"", "document": doc}).to_string();
        let y = show_yaml(body.as_bytes()).unwrap();
        assert!(y.starts_with("# running policy version 4"), "{y}");
        let back: serde_json::Value = serde_norway::from_str(&y).unwrap();
        assert_eq!(back, doc);
        assert!(show_yaml(b"{}").is_err());
    }
}
