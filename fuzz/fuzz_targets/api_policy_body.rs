//! Fuzz the policy push body: the PUT handler's body parsing (UTF-8, JSON, syntax errors as 422)
//! and policy validation of whatever JSON comes out, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = policy::Policy::from_json(text);
    }
    match svm::api::handlers::parse_policy_body(data) {
        Ok(value) => {
            if let Ok(p) = policy::Policy::from_value(&value) {
                // The canonical document reads back to the same policy.
                let again = policy::Policy::from_value(&p.to_json());
                assert_eq!(again.as_ref(), Ok(&p));
            }
        }
        Err(svm::api::ApiError::InvalidPolicy(problems)) => assert!(!problems.is_empty()),
        Err(_) => {}
    }
});
