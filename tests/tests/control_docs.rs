//! docs/api.md and the generated OpenAPI document list the same routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;

#[test]
fn api_doc_matches_openapi() {
    let openapi: serde_json::Value = serde_json::from_str(&svm::api::openapi_json()).unwrap();
    let mut from_openapi = BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                from_openapi.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    let mut from_doc = BTreeSet::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 && cells[1].starts_with('`') && cells[2].starts_with("`/") {
            from_doc.insert((
                cells[1].trim_matches('`').to_owned(),
                cells[2].trim_matches('`').to_owned(),
            ));
        }
    }
    assert_eq!(
        from_doc, from_openapi,
        "docs/api.md routes (left) differ from the OpenAPI document (right)"
    );
    assert_eq!(from_openapi.len(), 20);
}
