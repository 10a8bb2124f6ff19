//! Database bundles come from mirrors and removable media: parse arbitrary bytes as every role's
//! TUF metadata and as a bundle tar, checked against a fixed root; no panic, and nothing the
//! fuzzer writes may pass as signed by keys it does not have.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    svm::db::fuzz_metadata(data);
});
