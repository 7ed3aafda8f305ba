//! Reference data of one estate and the checks that keep it consistent.

use super::*;

/// Normalises a tag value as a handset may report it. NFC UIDs come as `04:a2:19:7c`,
/// `04-A2-19-7C`, `04 a2 19 7c`, `0x04A2197C` …: separators and a `0x` prefix are dropped and
/// hex is upper-cased (`04A2197C`). A value that is not hex after that is kept upper-cased
/// (it will not match a tag, and the scan is flagged `unknown_tag`, never refused). QR
/// payloads are trimmed of surrounding white space only.
pub fn normalise_tag(kind: TagKind, raw: &str) -> String {
    let _ = (kind, raw);
    todo!()
}

/// Applies `ops` in order to `set` and checks the result as a whole. On success, the new set
/// and one [`RefChange`] per entity written (puts and tombstones, in op order; an entity put
/// twice appears once, last write). On failure, every problem found, each `at` its op index;
/// nothing is applied.
pub fn apply(
    set: &ReferenceSet,
    ops: &[RefOp],
) -> Result<(ReferenceSet, Vec<RefChange>), Vec<RefError>> {
    let _ = (set, ops);
    todo!()
}
