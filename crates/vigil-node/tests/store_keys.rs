//! Features that share the node's store keep to their own keys: the staff
//! audit log and the webhook queue once both used the prefix `w`, so the
//! queue dropped audit records as deliveries of an unknown webhook and
//! failed to decode them as deliveries.

use vigil_node::webhook::{TargetId, WebhookPolicy, WebhookQueue};
use vigil_node::{AuditRecord, InboxEntry, MailboxStore};

fn alert() -> InboxEntry {
    InboxEntry {
        grant_id: [1; 16],
        label: "Ana".into(),
        episode: [2; 16],
        kind: vigil_proto::alert::ALERT_START,
        onset_ms: 1_790_000_000_000,
        level: 2,
        received_ms: 1_790_000_060_000,
        acked_ms: None,
        monitoring_ended: None,
        ack: None,
    }
}

#[test]
fn the_audit_log_and_the_webhook_queue_do_not_read_each_other() {
    let store = MailboxStore::in_memory();
    let record = AuditRecord {
        at_ms: 1_790_000_070_000,
        staff: "Mei".into(),
        action: "ack".into(),
        subject: "cd7c7dbce8f3".into(),
    };
    store.append_audit(&record, [7; 8]).unwrap();
    let queue = WebhookQueue::new(store.clone(), WebhookPolicy::default());
    let hook = TargetId::of("http://127.0.0.1:9/hook");
    queue.enqueue(&[hook], &alert(), 1_790_000_060_000).unwrap();

    // Each sees only its own records.
    assert_eq!(queue.len().unwrap(), 1);
    assert_eq!(queue.due(1_790_000_060_000, 10).unwrap().len(), 1);
    assert_eq!(store.audit_log().unwrap(), vec![record.clone()]);

    // Removing every webhook drops its deliveries, and nothing of the audit log.
    assert_eq!(queue.retain_targets(&[]).unwrap(), 1);
    assert_eq!(store.audit_log().unwrap(), vec![record]);
}
