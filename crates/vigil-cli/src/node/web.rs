//! The dashboard's view of the node: the same admin requests `vigil-node
//! alerts` and `alerts ack` run, so pages and commands answer alike.

use serde::Deserialize;
use vigil_node::Relay;
use vigil_web::backend::{IssuedTicket, NodeInfo, Resident};
use vigil_web::{Alert, Backend};

use super::admin::{self, Request};

/// The serving node, for the dashboard.
#[derive(Debug)]
pub(crate) struct NodeBackend {
    relay: Relay,
}

impl NodeBackend {
    pub(crate) fn new(relay: Relay) -> Self {
        NodeBackend { relay }
    }

    fn run<T: serde::de::DeserializeOwned>(&self, req: &Request, now_ms: i64) -> Result<T, String> {
        let v = admin::execute(&self.relay, req, now_ms, None)?;
        serde_json::from_value(v).map_err(|e| format!("unexpected answer: {e}"))
    }
}

impl Backend for NodeBackend {
    fn alerts(&self, now_ms: i64) -> Result<Vec<Alert>, String> {
        self.run(&Request::Alerts, now_ms)
    }

    fn ack(&self, id: &str, by: &str, now_ms: i64) -> Result<(Alert, bool), String> {
        #[derive(Deserialize)]
        struct Acked {
            already: bool,
            alert: Alert,
        }
        // The staff member's name goes on the alert too, as `alerts ack
        // --by` puts it: the CLI and every page show who acknowledged.
        let req = Request::Ack {
            id: id.to_owned(),
            by: Some(by.to_owned()),
            note: None,
        };
        let a: Acked = self.run(&req, now_ms)?;
        Ok((a.alert, a.already))
    }

    fn residents(&self, _all: bool, _now_ms: i64) -> Result<Vec<Resident>, String> {
        Err("not yet".into())
    }

    fn issue_ticket(&self, _label: &str, _period_ms: i64, _now_ms: i64) -> Result<IssuedTicket, String> {
        Err("not yet".into())
    }

    fn revoke(&self, _id: &str, _now_ms: i64) -> Result<(Resident, bool), String> {
        Err("not yet".into())
    }

    fn node_info(&self, _now_ms: i64) -> Result<NodeInfo, String> {
        Err("not yet".into())
    }
}
