//! The management API over real mutual TLS on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use hyper::{Method, StatusCode};
use svm_e2e::control::{BOUNCER_KEY, Harness, json};

const GOOD: &str = r#"{"mode":"monitoring","exclusions":[{"address":"10.0.0.0/24","vlan":100,"rule":"do_not_scan"}]}"#;
const BAD: &str = r#"{"mode":"loud","attack_blocker":{"detectors":{"syn_flood":{"count":-1}}},"exclusions":[{"address":"10.0.0.300","vlan":100,"rule":"default"},{"address":"10.0.0.1","vlan":5000,"rule":"nope"}],"extra":1}"#;

#[tokio::test]
async fn client_from_another_ca_is_refused() {
    let h = Harness::start().await;
    let r = h
        .call(&h.foreign, Method::GET, "/api/v1/status", &[], "")
        .await;
    assert!(r.is_err(), "handshake must fail: {r:?}");
    // A certificate of the right CA with no role mapped gets 403, and no certificate at all
    // reaches nothing but the decisions stream (bouncer keys are configured here).
    let r = h
        .call(&h.nobody, Method::GET, "/api/v1/status", &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(&h.anonymous, Method::GET, "/api/v1/policy", &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(&h.anonymous, Method::GET, "/healthz", &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(&h.nobody, Method::GET, "/healthz", &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    h.stop();
}

#[tokio::test]
async fn read_only_role_reads_but_cannot_change() {
    let h = Harness::start().await;
    for path in [
        "/api/v1/policy",
        "/api/v1/blocked-hosts",
        "/api/v1/status",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        let r = h.call(&h.reader, Method::GET, path, &[], "").await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    let r = h
        .call(&h.reader, Method::PUT, "/api/v1/policy", &[], GOOD)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            &h.reader,
            Method::POST,
            "/api/v1/blocked-hosts",
            &[],
            r#"{"address":"10.0.0.9","vlan":100,"minutes":5}"#,
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            &h.reader,
            Method::DELETE,
            "/api/v1/blocked-hosts/100/10.0.0.9",
            &[],
            "",
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        json(
            &h.call(&h.reader, Method::GET, "/api/v1/policy", &[], "")
                .await
                .unwrap()
        )["version"],
        0
    );
    h.stop();
}

#[tokio::test]
async fn bad_policy_is_422_with_every_path_and_changes_nothing() {
    let h = Harness::start().await;
    let before = json(
        &h.call(&h.admin, Method::GET, "/api/v1/policy", &[], "")
            .await
            .unwrap(),
    );
    let r = h
        .call(&h.admin, Method::PUT, "/api/v1/policy", &[], BAD)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = json(&r);
    assert_eq!(body["error"], "invalid_policy");
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for want in [
        "mode",
        "attack_blocker.detectors.syn_flood.count",
        "exclusions[0].address",
        "exclusions[1].vlan",
        "exclusions[1].rule",
        "extra",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    // Syntax errors are 422 too, at the document path.
    let r = h
        .call(&h.admin, Method::PUT, "/api/v1/policy", &[], "{\"mode\": ")
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&r)["problems"][0]["path"], "");
    // Both refusals are reported as policy_rejected, the syntax error with the parser's place.
    h.control.hub().flush();
    let r = h
        .call(
            &h.admin,
            Method::GET,
            "/api/v1/events?type=policy_rejected",
            &[],
            "",
        )
        .await
        .unwrap();
    let rejected = json(&r);
    let rejected = rejected.as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let syntax = rejected[1]["problems"][0]["message"].as_str().unwrap();
    assert!(syntax.contains("line 1 column"), "{syntax}");
    let after = json(
        &h.call(&h.admin, Method::GET, "/api/v1/policy", &[], "")
            .await
            .unwrap(),
    );
    assert_eq!(before, after);
    h.stop();
}

#[tokio::test]
async fn good_policy_bumps_version_with_etag_and_if_match() {
    let h = Harness::start().await;
    let r = h
        .call(&h.admin, Method::PUT, "/api/v1/policy", &[], GOOD)
        .await
        .unwrap();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.headers["etag"], "\"1\"");
    assert_eq!(json(&r)["version"], 1);
    // If-Match with the running version applies; a stale one is 412 and changes nothing.
    let r = h
        .call(
            &h.admin,
            Method::PUT,
            "/api/v1/policy",
            &[("if-match", "\"1\"".into())],
            GOOD,
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["etag"], "\"2\"");
    let r = h
        .call(
            &h.admin,
            Method::PUT,
            "/api/v1/policy",
            &[("if-match", "\"1\"".into())],
            "{}",
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.headers["etag"], "\"2\"");
    let got = h
        .call(&h.reader, Method::GET, "/api/v1/policy", &[], "")
        .await
        .unwrap();
    assert_eq!(got.headers["etag"], "\"2\"");
    let doc = json(&got);
    assert_eq!(doc["document"]["mode"], "monitoring");
    assert_eq!(doc["document"]["exclusions"][0]["address"], "10.0.0.0/24");
    h.stop();
}

#[tokio::test]
async fn block_list_add_and_lift() {
    let h = Harness::start().await;
    for (addr, vlan) in [
        ("10.0.0.9", "100"),
        ("10.0.0.10", "100"),
        ("10.0.0.9", "\"untagged\""),
    ] {
        let r = h
            .call(
                &h.admin,
                Method::POST,
                "/api/v1/blocked-hosts",
                &[],
                &format!(
                    r#"{{"address":"{addr}","vlan":{vlan},"minutes":5,"reason":"ticket 42"}}"#
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let dup = h
        .call(
            &h.admin,
            Method::POST,
            "/api/v1/blocked-hosts",
            &[],
            r#"{"address":"10.0.0.9","vlan":100,"minutes":5}"#,
        )
        .await
        .unwrap();
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let list = json(
        &h.call(
            &h.reader,
            Method::GET,
            "/api/v1/blocked-hosts?vlan=100",
            &[],
            "",
        )
        .await
        .unwrap(),
    );
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["address"], "10.0.0.9");
    assert_eq!(list[0]["remaining_secs"], 300);
    assert_eq!(list[0]["reason"], "ticket 42");
    let list = json(
        &h.call(
            &h.reader,
            Method::GET,
            "/api/v1/blocked-hosts?address=10.0.0.9",
            &[],
            "",
        )
        .await
        .unwrap(),
    );
    assert_eq!(list.as_array().unwrap().len(), 2);
    let r = h
        .call(
            &h.admin,
            Method::DELETE,
            "/api/v1/blocked-hosts/untagged/10.0.0.9",
            &[],
            "",
        )
        .await
        .unwrap();
    assert_eq!(json(&r)["removed"], 1);
    // By prefix (slash URL-encoded), in VLAN 100.
    let r = h
        .call(
            &h.admin,
            Method::DELETE,
            "/api/v1/blocked-hosts/100/10.0.0.0%2F24",
            &[],
            "",
        )
        .await
        .unwrap();
    assert_eq!(json(&r)["removed"], 2);
    let r = h
        .call(
            &h.admin,
            Method::DELETE,
            "/api/v1/blocked-hosts/any/10.0.0.9",
            &[],
            "",
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let list = json(
        &h.call(&h.reader, Method::GET, "/api/v1/blocked-hosts", &[], "")
            .await
            .unwrap(),
    );
    assert!(list.as_array().unwrap().is_empty());
    h.stop();
}

/// Minimal Prometheus text-format check: HELP/TYPE lines, then samples `name{k="v",...} value`
/// of a declared family; no label value is an IP address.
fn check_prometheus(text: &str) -> usize {
    let mut declared = std::collections::HashSet::new();
    let mut samples = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(rest.split_once(' ').is_some(), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind));
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            declared.insert(name.to_owned());
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
            let name = series.split('{').next().unwrap();
            assert!(declared.contains(name), "undeclared {name}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if let Some(labels) = series.strip_prefix(name).and_then(|l| l.strip_prefix('{')) {
                for pair in labels.trim_end_matches('}').split(',') {
                    let (_, v) = pair.split_once('=').unwrap();
                    let v = v.trim_matches('"');
                    assert!(
                        v.parse::<std::net::IpAddr>().is_err(),
                        "address as label: {line}"
                    );
                }
            }
            samples += 1;
        }
    }
    samples
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let h = Harness::start().await;
    h.call(
        &h.admin,
        Method::POST,
        "/api/v1/blocked-hosts",
        &[],
        r#"{"address":"10.0.0.9","vlan":100,"minutes":5}"#,
    )
    .await
    .unwrap();
    let r = h
        .call(&h.reader, Method::GET, "/metrics", &[], "")
        .await
        .unwrap();
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(check_prometheus(&text) > 10, "{text}");
    assert!(text.contains("svm_blocked_hosts 1\n"), "{text}");
    assert!(
        text.contains("svm_blocks_added_total{origin=\"manual\"} 1\n"),
        "{text}"
    );
    h.stop();
}

#[tokio::test]
async fn decisions_stream_has_new_then_deleted_after_expiry() {
    let h = Harness::start().await;
    let key = [("x-api-key", BOUNCER_KEY.to_owned())];
    let r = h
        .call(
            &h.anonymous,
            Method::GET,
            "/v1/decisions/stream?startup=true",
            &[("x-api-key", "wrong".into())],
            "",
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let start = json(
        &h.call(
            &h.anonymous,
            Method::GET,
            "/v1/decisions/stream?startup=true",
            &key,
            "",
        )
        .await
        .unwrap(),
    );
    assert_eq!(start["new"].as_array().unwrap().len(), 0);
    h.call(
        &h.admin,
        Method::POST,
        "/api/v1/blocked-hosts",
        &[],
        r#"{"address":"10.0.0.9","vlan":100,"minutes":2}"#,
    )
    .await
    .unwrap();
    h.call(
        &h.admin,
        Method::POST,
        "/api/v1/blocked-hosts",
        &[],
        r#"{"address":"2001:db8::7","vlan":"untagged","minutes":10}"#,
    )
    .await
    .unwrap();
    let s = json(
        &h.call(
            &h.anonymous,
            Method::GET,
            "/v1/decisions/stream?startup=false",
            &key,
            "",
        )
        .await
        .unwrap(),
    );
    let new = s["new"].as_array().unwrap();
    assert_eq!(new.len(), 2, "{s}");
    assert_eq!(new[0]["value"], "10.0.0.9");
    assert_eq!(new[0]["type"], "ban");
    assert_eq!(new[0]["scope"], "Ip");
    assert_eq!(new[0]["duration"], "2m0s");
    assert_eq!(new[0]["origin"], "cscli");
    // Nothing changed since.
    let s = json(
        &h.call(&h.anonymous, Method::GET, "/v1/decisions/stream", &key, "")
            .await
            .unwrap(),
    );
    assert!(s["new"].as_array().unwrap().is_empty() && s["deleted"].as_array().unwrap().is_empty());
    // The first block expires.
    h.clock.advance_secs(121);
    let s = json(
        &h.call(
            &h.anonymous,
            Method::GET,
            "/v1/decisions/stream?startup=false",
            &key,
            "",
        )
        .await
        .unwrap(),
    );
    let deleted = s["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{s}");
    assert_eq!(deleted[0]["value"], "10.0.0.9");
    // A manual unblock is a deletion too.
    h.call(
        &h.admin,
        Method::DELETE,
        "/api/v1/blocked-hosts/untagged/2001:db8::7",
        &[],
        "",
    )
    .await
    .unwrap();
    let s = json(
        &h.call(&h.anonymous, Method::GET, "/v1/decisions/stream", &key, "")
            .await
            .unwrap(),
    );
    assert_eq!(s["deleted"][0]["value"], "2001:db8::7");
    // startup=true again: only what is active (nothing).
    let s = json(
        &h.call(
            &h.anonymous,
            Method::GET,
            "/v1/decisions/stream?startup=true",
            &key,
            "",
        )
        .await
        .unwrap(),
    );
    assert!(s["new"].as_array().unwrap().is_empty());
    h.stop();
}
