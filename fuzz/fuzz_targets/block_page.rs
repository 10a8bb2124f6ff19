//! Block page templates: any text is parsed or refused; a parsed one renders any values with
//! the Content-Length the body has, and no value brings a markup character in.
#![no_main]

use dataplane::blockpage::{PageValues, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (template, value) = text.split_at(text.find('\u{0}').unwrap_or(text.len()));
    let values = PageValues {
        address: value,
        category: value,
        list: value,
        entry: value,
    };
    if let Ok(t) = Template::parse(template) {
        let resp = t.response(&values);
        let head_end = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        let body = &resp[head_end..];
        let head = std::str::from_utf8(&resp[..head_end]).expect("ascii head");
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
    if let Ok(t) = Template::parse("{{address}}") {
        let page = t.render(&values);
        assert!(!page.contains(['<', '>', '"', '\'']));
    }
});
