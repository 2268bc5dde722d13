//! Small gaps of issue 18: times in messages follow the display zone like
//! the rest of the output.

mod common;
use common::in_process::{Node, live_vault};
use common::*;

use serde_json::Value;

#[test]
fn the_shredded_elsewhere_message_gives_the_time_in_the_display_zone() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let phone = tmp.path().join("phone");
    let tablet = tmp.path().join("tablet");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &node.ticket("Ana")]).ok();
    run(vigil(&phone), ["record", "temperature", "36.6"]).ok();
    let first = run(
        vigil(&tablet),
        ["--json", "pair", "join", &node.code, "--timeout", "0"],
    );
    let line: Value = serde_json::from_str(first.out.lines().next().unwrap()).unwrap();
    let joiner = line["joiner_code"].as_str().unwrap().to_owned();
    run(
        vigil(&phone),
        ["pair", "show", &joiner, "--node", &node.code],
    )
    .ok();
    run(
        vigil(&tablet),
        ["pair", "join", &node.code, "--timeout", "0", "--yes"],
    )
    .ok();
    run(vigil(&tablet), ["sync"]).ok();
    run(vigil(&phone), ["shred", "--yes", "--node", &node.code]).ok();
    // The resident in Beijing reads the time of the shred in their zone.
    let mut beijing = vigil(&tablet);
    beijing.env("TZ", "Asia/Shanghai");
    let r = run(beijing, ["sync"]);
    r.fails(4, "shredded on another device");
    assert!(r.err.contains("+08:00"), "local time: {r:?}");
}
