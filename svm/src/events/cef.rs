//! CEF: `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension`. Header fields escape
//! `\` and `|`; extension values escape `\`, `=` and line breaks (`\n`, `\r`). Severity is 0..10:
//! info 3, warning 5, error 8, critical 10.

use serde_json::Value;

use super::record::{Record, Severity};

fn header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escape an extension value.
pub fn ext_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// CEF severity for our 1..4.
pub const fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 3,
        Severity::Warning => 5,
        Severity::Error => 8,
        Severity::Critical => 10,
    }
}

/// Format one event.
pub fn format(rec: &Record) -> String {
    let sig = rec
        .str_at("/alert/signature_id")
        .unwrap_or_else(|| rec.event_type().to_owned());
    let name = rec
        .str_at("/alert/signature")
        .unwrap_or_else(|| rec.event_type().to_owned());
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", (rec.ts.micros() / 1000).to_string()),
        ("externalId", rec.id().to_owned()),
        ("cat", rec.event_type().to_owned()),
    ];
    for (key, ptr) in [
        ("src", "/src_ip"),
        ("spt", "/src_port"),
        ("dst", "/dest_ip"),
        ("dpt", "/dest_port"),
        ("proto", "/proto"),
        ("act", "/alert/response"),
    ] {
        if let Some(v) = rec.str_at(ptr) {
            ext.push((key, v));
        }
    }
    if let Some(Value::Array(vlans)) = rec.value.get("vlan") {
        let ids: Vec<String> = vlans.iter().map(Value::to_string).collect();
        ext.push(("cs1Label", "vlan".into()));
        ext.push(("cs1", ids.join(".")));
    }
    // A web address scan hit: the address (CEF `request`), its list and category.
    if let Some(address) = rec.str_at("/web_address/address") {
        ext.push(("request", address));
        for (label_key, label, key, ptr) in [
            ("cs2Label", "list", "cs2", "/web_address/list"),
            ("cs3Label", "category", "cs3", "/web_address/category"),
        ] {
            if let Some(v) = rec.str_at(ptr) {
                ext.push((label_key, label.into()));
                ext.push((key, v));
            }
        }
    }
    if let Some(msg) = rec.str_at("/message") {
        ext.push(("msg", msg));
    }
    let ext: Vec<String> = ext
        .into_iter()
        .map(|(k, v)| format!("{k}={}", ext_value(&v)))
        .collect();
    format!(
        "CEF:0|svm|svm|{}|{}|{}|{}|{}",
        header(env!("CARGO_PKG_VERSION")),
        header(&sig),
        header(&name),
        cef_severity(rec.severity()),
        ext.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::time::Timestamp;

    #[test]
    fn escapes_header_and_extension() {
        assert_eq!(header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(ext_value("a=b\\c\nd\re"), r"a\=b\\c\nd\re");
    }

    #[test]
    fn formats_a_control_event() {
        let mut f = serde_json::Map::new();
        f.insert("message".into(), "x=1|y".into());
        let rec = Record::new(Timestamp(2_000_000), "policy|rejected", Severity::Error, f);
        let line = format(&rec);
        assert!(
            line.starts_with("CEF:0|svm|svm|0.1.0|policy\\|rejected|policy\\|rejected|8|rt=2000 "),
            "{line}"
        );
        assert!(line.ends_with(r"msg=x\=1|y"), "{line}");
    }

    #[test]
    fn web_address_hits_name_the_request_list_and_category() {
        let mut f = serde_json::Map::new();
        f.insert(
            "web_address".into(),
            serde_json::json!({"address": "bad.example/x=1", "list": "urlhaus.txt", "category": "malware"}),
        );
        let line = format(&Record::new(Timestamp(0), "alert", Severity::Critical, f));
        assert!(
            line.contains(r"request=bad.example/x\=1 cs2Label=list cs2=urlhaus.txt cs3Label=category cs3=malware"),
            "{line}"
        );
    }
}
