//! `vigil-node sweep`: delete now what ended periods left.

use std::path::Path;
use std::time::Duration;

use super::{json, request};
use crate::common::Error;
use crate::common::time::ms;
use crate::node::admin::{Request, SweepView};
use crate::node::util::{bytes, out};

/// `vigil-node sweep`.
pub(crate) fn sweep(data: &Path, grace: Duration, as_json: bool) -> Result<(), Error> {
    let r: SweepView = request(
        data,
        &Request::Sweep {
            grace_ms: ms(grace),
        },
    )?;
    if as_json {
        return json(&r);
    }
    if r == SweepView::default() {
        return out("nothing to sweep");
    }
    let n = |count: u64, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    out(&format!(
        "swept {} ({}, {}), {}, {}, {}, {}",
        n(r.mailboxes, "vault", "vaults"),
        n(r.blobs, "blob", "blobs"),
        bytes(r.bytes),
        n(r.grants, "grant", "grants"),
        n(r.alerts, "alert", "alerts"),
        n(r.pairings, "pairing offer", "pairing offers"),
        n(r.grant_keys, "unused grant key", "unused grant keys"),
    ))
}
