//! The dashboard's view of the node: the same admin requests `vigil-node
//! alerts`, `alerts ack`, `residents` (`add`, `revoke`) and `status` run,
//! so pages and commands answer alike.

use serde::Deserialize;
use vigil_node::Relay;
use vigil_web::backend::{IssuedTicket, NodeInfo, Resident};
use vigil_web::{Alert, Backend};

use super::admin::{self, IssuedView, Request, Serving};
use super::code::ticket_code;

/// The serving node, for the dashboard.
#[derive(Debug)]
pub(crate) struct NodeBackend {
    relay: Relay,
    serving: Serving,
}

impl NodeBackend {
    pub(crate) fn new(relay: Relay, serving: Serving) -> Self {
        NodeBackend { relay, serving }
    }

    fn run<T: serde::de::DeserializeOwned>(&self, req: &Request, now_ms: i64) -> Result<T, String> {
        let v = admin::execute(&self.relay, req, now_ms, Some(&self.serving))?;
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

    fn residents(&self, all: bool, now_ms: i64) -> Result<Vec<Resident>, String> {
        // The same listing as `vigil-node residents`, without the JSON round
        // trip `run` makes (a third of the page's CPU at 10,000 residents).
        Ok(admin::residents(&self.relay, all, now_ms)?
            .into_iter()
            .map(|v| Resident {
                id: v.id,
                ticket: v.ticket,
                label: v.label,
                status: v.status,
                period_end_ms: v.period_end_ms,
                last_contact_ms: v.last_contact_ms,
                alerts: v.alerts,
                unacked: v.unacked,
            })
            .collect())
    }

    fn issue_ticket(
        &self,
        label: &str,
        period_ms: i64,
        now_ms: i64,
    ) -> Result<IssuedTicket, String> {
        // The code first, as `residents add` does: no ticket is issued that
        // could not be handed out.
        let code = self.serving.code.as_ref().map_err(Clone::clone)?;
        let req = Request::ResidentsAdd {
            label: label.to_owned(),
            period_end_ms: now_ms.saturating_add(period_ms),
        };
        let mut issued: IssuedView = self.run(&req, now_ms)?;
        let ticket = ticket_code(code, &issued);
        // The answer's copy of the secret is wiped here; the sheet's is the
        // ticket's text.
        let _secret = vigil_crypto::Zeroizing::new(std::mem::take(&mut issued.secret));
        Ok(IssuedTicket {
            ticket: vigil_crypto::Zeroizing::new(ticket?.to_string()),
            id: issued.id,
            label: issued.label,
            period_end_ms: issued.period_end_ms,
        })
    }

    fn revoke(&self, id: &str, now_ms: i64) -> Result<(Resident, bool), String> {
        #[derive(Deserialize)]
        struct Revoked {
            already: bool,
            resident: Resident,
        }
        let r: Revoked = self.run(&Request::ResidentsRevoke { id: id.to_owned() }, now_ms)?;
        Ok((r.resident, r.already))
    }

    fn node_info(&self, now_ms: i64) -> Result<NodeInfo, String> {
        self.run(&Request::Status, now_ms)
    }
}
