//! Enrolment tickets (docs/spec.md §15): staff issue one per resident; the
//! node creates a new vault's mailbox, and takes its grant, only against
//! an unused, unexpired ticket, which it then binds to that vault and that
//! grant. The node keeps only a hash of each ticket's secret.

use serde::{Deserialize, Serialize};
use vigil_crypto::rand_core::CryptoRng;
use vigil_crypto::{MailboxVerifier, TicketSecret, TicketVerifier};
use vigil_proto::{ProtoError, Response, Ticket, TicketId, VaultIdBytes};

use crate::kv::KvBatch;
use crate::label::{LabelError, normalize_label};
use crate::relay::Relay;
use crate::store::{MailboxInfo, MailboxStore, StoreError};
use crate::sweep::SweepReport;

/// A ticket's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketState {
    /// Issued, not redeemed yet.
    Unused,
    /// Redeemed: bound to this vault and, once it gave one, this grant.
    Enrolled {
        /// The vault.
        vault: VaultIdBytes,
        /// The grant, once given.
        grant: Option<[u8; 16]>,
        /// When the ticket was redeemed, ms.
        at_ms: i64,
    },
    /// Revoked by staff (before or after it was redeemed).
    Revoked {
        /// The vault it had enrolled, if any.
        vault: Option<VaultIdBytes>,
        /// The grant it had, if any (ended by the revocation).
        grant: Option<[u8; 16]>,
        /// When, ms.
        at_ms: i64,
    },
}

/// A ticket as the node keeps it (`t` || id, postcard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    /// Its id.
    pub id: TicketId,
    /// `SHA-256("vigil/v1/ticket-verifier" || id || secret)`; never the secret.
    pub verifier: [u8; 32],
    /// The label staff typed (normalised).
    pub label: String,
    /// When staff issued it, ms.
    pub issued_ms: i64,
    /// The end of the period staff set, ms: an unused ticket expires then,
    /// and the vault and grant it enrols end then at the latest.
    pub period_end_ms: i64,
    /// Where it stands.
    pub state: TicketState,
}

impl TicketRecord {
    /// The grant this ticket enrolled, if any.
    pub fn grant(&self) -> Option<[u8; 16]> {
        match self.state {
            TicketState::Enrolled { grant, .. } | TicketState::Revoked { grant, .. } => grant,
            TicketState::Unused => None,
        }
    }

    /// The vault this ticket enrolled, if any.
    pub fn vault(&self) -> Option<VaultIdBytes> {
        match self.state {
            TicketState::Enrolled { vault, .. } => Some(vault),
            TicketState::Revoked { vault, .. } => vault,
            TicketState::Unused => None,
        }
    }

    /// "unused", "enrolled", "revoked" or "period over", at `now_ms`.
    pub fn status(&self, now_ms: i64) -> &'static str {
        match self.state {
            TicketState::Revoked { .. } => "revoked",
            _ if self.period_end_ms <= now_ms => "period over",
            TicketState::Unused => "unused",
            TicketState::Enrolled { .. } => "enrolled",
        }
    }
}

/// A ticket just issued: hand [`IssuedTicket::ticket`] to the resident (it
/// is shown once; the node cannot show it again).
#[derive(Debug)]
pub struct IssuedTicket {
    /// The ticket's id and secret.
    pub ticket: Ticket,
    /// The label as stored (normalised).
    pub label: String,
    /// The period end.
    pub period_end_ms: i64,
}

/// Why staff could not issue a ticket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The label is unusable.
    #[error(transparent)]
    Label(#[from] LabelError),
    /// The period end is not in the future.
    #[error("the period end must be in the future")]
    PeriodOver,
    /// As many tickets as the node allows are outstanding (unused).
    #[error(
        "{limit} unused tickets are outstanding, the most this node allows (limits.max_tickets): revoke unused ones or wait for them to expire"
    )]
    TooMany {
        /// The limit.
        limit: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The ticket, revoked.
    pub ticket: TicketRecord,
    /// It already was.
    pub already: bool,
    /// What ending its grant deleted (zero for an unused ticket).
    pub deleted: SweepReport,
    /// Unacknowledged alerts kept for staff.
    pub kept_alerts: u64,
}

fn ticket_key(id: &TicketId) -> Vec<u8> {
    let mut k = vec![b't'];
    k.extend_from_slice(id);
    k
}

fn enrolled_key(vault: &VaultIdBytes) -> Vec<u8> {
    let mut k = vec![b'e'];
    k.extend_from_slice(vault);
    k
}

/// The count of unused tickets (`n`): the cap checks it in O(1).
const UNUSED_KEY: &[u8] = b"n";

fn encode(t: &TicketRecord) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(t).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl MailboxStore {
    /// A ticket by id.
    pub fn ticket(&self, id: &TicketId) -> Result<Option<TicketRecord>, StoreError> {
        match self.db().get(&ticket_key(id))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("ticket".into())),
        }
    }

    /// Every ticket.
    pub fn tickets(&self) -> Result<Vec<TicketRecord>, StoreError> {
        self.db()
            .scan_prefix(b"t")?
            .into_iter()
            .map(|(_, v)| {
                postcard::from_bytes(&v).map_err(|_| StoreError::Corrupt("ticket".into()))
            })
            .collect()
    }

    /// The ticket that enrolled `vault`, if any.
    pub fn ticket_of_vault(
        &self,
        vault: &VaultIdBytes,
    ) -> Result<Option<TicketRecord>, StoreError> {
        let Some(id) = self.db().get(&enrolled_key(vault))? else {
            return Ok(None);
        };
        let id: TicketId = id
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("enrolment index".into()))?;
        self.ticket(&id)
    }

    /// How many tickets are unused (not yet swept).
    pub fn unused_tickets(&self) -> Result<u64, StoreError> {
        Ok(self
            .db()
            .get(UNUSED_KEY)?
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Adds `delta` to the unused count in `batch`.
    fn count_unused(&self, batch: &mut KvBatch, delta: i64) -> Result<(), StoreError> {
        let n = self.unused_tickets()?.saturating_add_signed(delta);
        batch.insert(UNUSED_KEY.to_vec(), n.to_be_bytes().to_vec());
        Ok(())
    }

    fn commit(&self, batch: KvBatch) -> Result<(), StoreError> {
        self.db().apply(batch)?;
        self.db().flush()
    }

    /// Deletes every unused ticket whose period ended, and every other one
    /// whose period ended at least `grace_ms` before `now_ms` (its label is
    /// the resident's name). Returns how many.
    pub(crate) fn sweep_tickets(&self, now_ms: i64, grace_ms: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for t in self.tickets()? {
            let unused = t.state == TicketState::Unused;
            let end = if unused {
                t.period_end_ms
            } else {
                t.period_end_ms.saturating_add(grace_ms)
            };
            if end > now_ms {
                continue;
            }
            let mut batch = KvBatch::default();
            batch.remove(ticket_key(&t.id));
            if let Some(v) = t.vault() {
                batch.remove(enrolled_key(&v));
            }
            if unused {
                self.count_unused(&mut batch, -1)?;
            }
            self.commit(batch)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Whether the session's vault may be given a grant: its ticket, or the
/// refusal.
pub(crate) enum Permit {
    /// The vault's live ticket.
    Granted(TicketRecord),
    /// Refused.
    Refused(ProtoError),
}

impl Relay {
    /// Issues a ticket for a resident staff name `label`, valid until
    /// `period_end_ms` (docs/spec.md §15). The label is normalised
    /// ([`normalize_label`]); at most `max_tickets` may be unused at once.
    pub fn issue_ticket<R: CryptoRng + ?Sized>(
        &self,
        label: &str,
        period_end_ms: i64,
        now_ms: i64,
        rng: &mut R,
    ) -> Result<IssuedTicket, TicketError> {
        let label = normalize_label(label)?;
        if period_end_ms <= now_ms {
            return Err(TicketError::PeriodOver);
        }
        let _guard = self.lock_tickets();
        let store = self.store();
        let limit = self.config().max_tickets;
        if store.unused_tickets()? >= limit {
            tracing::warn!(limit, "ticket refused: too many unused tickets");
            return Err(TicketError::TooMany { limit });
        }
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let secret = TicketSecret::generate(rng);
        let record = TicketRecord {
            id,
            verifier: secret.verifier(&id).to_bytes(),
            label: label.clone(),
            issued_ms: now_ms,
            period_end_ms,
            state: TicketState::Unused,
        };
        let mut batch = KvBatch::default();
        batch.insert(ticket_key(&id), encode(&record)?);
        store.count_unused(&mut batch, 1)?;
        store.commit(batch)?;
        tracing::info!(ticket = %hex::encode(&id[..6]), "ticket issued");
        Ok(IssuedTicket {
            ticket: Ticket { id, secret },
            label,
            period_end_ms,
        })
    }

    /// Every ticket, with its state.
    pub fn tickets(&self) -> Result<Vec<TicketRecord>, StoreError> {
        self.store().tickets()
    }

    /// Revokes a ticket: an unused one can no longer enrol anyone; an
    /// enrolled one's grant ends (its record and one-time key are deleted,
    /// its unacknowledged alerts stay for staff as after a shred), and the
    /// vault can give no grant again. `None` if there is no such ticket.
    pub fn revoke_ticket(&self, id: &TicketId, now_ms: i64) -> Result<Option<Revoked>, StoreError> {
        let store = self.store();
        // The grant's lock first (as a `Grant` or an `Alert` takes it), then
        // the tickets'; the ticket is read again under both.
        let grant_now = store.ticket(id)?.and_then(|t| t.grant());
        let _grant = grant_now.map(|g| self.lock_grant(&g));
        let _guard = self.lock_tickets();
        let Some(mut t) = store.ticket(id)? else {
            return Ok(None);
        };
        let (vault, grant) = match t.state {
            TicketState::Revoked { .. } => {
                return Ok(Some(Revoked {
                    ticket: t,
                    already: true,
                    deleted: SweepReport::default(),
                    kept_alerts: 0,
                }));
            }
            TicketState::Unused => (None, None),
            TicketState::Enrolled { vault, grant, .. } => (Some(vault), grant),
        };
        let unused = t.state == TicketState::Unused;
        t.state = TicketState::Revoked {
            vault,
            grant,
            at_ms: now_ms,
        };
        let mut batch = KvBatch::default();
        batch.insert(ticket_key(id), encode(&t)?);
        if unused {
            store.count_unused(&mut batch, -1)?;
        }
        // The ticket is revoked before its grant ends: a grant sent in
        // between is refused.
        store.commit(batch)?;
        let (mut deleted, mut kept_alerts) = (SweepReport::default(), 0);
        if let Some(g) = grant {
            let grant_key = store.grant(&g)?.map(|r| r.grant.grant_key);
            (deleted, kept_alerts) = store.end_grant(&g, now_ms)?;
            self.forget_grant_key(&g, grant_key);
        }
        tracing::info!(ticket = %hex::encode(&id[..6]), ?deleted, kept_alerts, "ticket revoked");
        Ok(Some(Revoked {
            ticket: t,
            already: false,
            deleted,
            kept_alerts,
        }))
    }

    /// `Enrol`: registers `vault`'s mailbox against a ticket, binding it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enrol(
        &self,
        id: TicketId,
        secret: [u8; 32],
        vault: VaultIdBytes,
        verifier: [u8; 32],
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<Response, StoreError> {
        let refuse = |e: ProtoError, why: &str| {
            tracing::warn!(ticket = %hex::encode(&id[..6]), why, "enrolment refused");
            Ok(Response::Error(e))
        };
        let _guard = self.lock_tickets();
        let store = self.store();
        let secret = TicketSecret::from_bytes(secret);
        // A wrong secret reads as an unknown ticket: ids say nothing.
        let Some(mut t) = store
            .ticket(&id)?
            .filter(|t| TicketVerifier::from_bytes(t.verifier).verify(&id, &secret))
        else {
            return refuse(ProtoError::TicketUnknown, "unknown ticket or wrong secret");
        };
        if matches!(t.state, TicketState::Revoked { .. }) {
            return refuse(ProtoError::TicketRevoked, "revoked");
        }
        if t.period_end_ms <= now_ms {
            return refuse(ProtoError::TicketExpired, "period over");
        }
        let expires_ms = expires_ms.min(t.period_end_ms);
        if expires_ms <= now_ms {
            return Ok(Response::Error(ProtoError::PeriodOver));
        }
        if let Some(m) = store.shred_marker(&vault)? {
            let ours =
                MailboxVerifier::from_bytes(m.verifier) == MailboxVerifier::from_bytes(verifier);
            return Ok(Response::Error(if ours {
                ProtoError::VaultShredded { notice: m.notice }
            } else {
                ProtoError::Unauthorized
            }));
        }
        let enrolled = || {
            Ok(Response::Enrolled {
                label: t.label.clone(),
                period_end_ms: t.period_end_ms,
            })
        };
        let mailbox = store.mailbox(&vault)?;
        let same_key = |m: &MailboxInfo| {
            MailboxVerifier::from_bytes(m.verifier) == MailboxVerifier::from_bytes(verifier)
        };
        match (&t.state, &mailbox) {
            // A retry, or another device of the vault: the same answer.
            (TicketState::Enrolled { vault: v, .. }, Some(m)) if *v == vault && same_key(m) => {
                return enrolled();
            }
            (TicketState::Enrolled { .. }, _) => {
                return refuse(ProtoError::TicketUsed, "bound to another vault");
            }
            (_, Some(m)) if !same_key(m) => {
                return Ok(Response::Error(ProtoError::AlreadyRegistered));
            }
            _ => {}
        }
        if store.ticket_of_vault(&vault)?.is_some_and(|o| o.id != id) {
            return refuse(
                ProtoError::AlreadyEnrolled,
                "vault enrolled by another ticket",
            );
        }
        // Bind: the mailbox (a vault registered before tickets keeps its
        // counters), the ticket's state and the index, in one batch.
        let info = match mailbox {
            Some(m) => MailboxInfo {
                expires_ms: m.expires_ms.min(t.period_end_ms),
                ..m
            },
            None => MailboxInfo {
                verifier,
                expires_ms,
                bytes: 0,
                blobs: 0,
            },
        };
        t.state = TicketState::Enrolled {
            vault,
            grant: None,
            at_ms: now_ms,
        };
        let mut batch = KvBatch::default();
        batch.insert(MailboxStore::mailbox_key(&vault), info.encode());
        batch.insert(ticket_key(&id), encode(&t)?);
        batch.insert(enrolled_key(&vault), id.to_vec());
        store.count_unused(&mut batch, -1)?;
        store.commit(batch)?;
        tracing::info!(ticket = %hex::encode(&id[..6]), vault = %hex::encode(&vault[..4]), "vault enrolled");
        enrolled()
    }

    /// Whether an authenticated session for `vault` may ask for a grant key
    /// or give a grant: its vault must hold a live ticket.
    pub(crate) fn grant_permit(
        &self,
        vault: Option<VaultIdBytes>,
        now_ms: i64,
    ) -> Result<Permit, StoreError> {
        let Some(vault) = vault else {
            return Ok(Permit::Refused(ProtoError::NotAuthenticated));
        };
        // A session outlives a shred of its vault (by another device): the
        // ticket stays bound, but monitoring the resident ended must not
        // resume, so no mailbox, no grant key and no grant.
        if self.store().mailbox(&vault)?.is_none() {
            return Ok(Permit::Refused(
                match self.store().shred_marker(&vault)? {
                    Some(m) => ProtoError::VaultShredded { notice: m.notice },
                    None => ProtoError::UnknownVault,
                },
            ));
        }
        let Some(t) = self.store().ticket_of_vault(&vault)? else {
            return Ok(Permit::Refused(ProtoError::TicketRequired));
        };
        Ok(Permit::Refused(match t.state {
            TicketState::Revoked { .. } => ProtoError::TicketRevoked,
            _ if t.period_end_ms <= now_ms => ProtoError::TicketExpired,
            TicketState::Unused => ProtoError::TicketRequired,
            TicketState::Enrolled { .. } => return Ok(Permit::Granted(t)),
        }))
    }

    /// Binds the grant `grant` to the ticket `t` (a no-op if it is).
    pub(crate) fn bind_grant(&self, t: &TicketRecord, grant: [u8; 16]) -> Result<(), StoreError> {
        let _guard = self.lock_tickets();
        let store = self.store();
        let Some(mut now) = store.ticket(&t.id)? else {
            return Ok(());
        };
        if let TicketState::Enrolled {
            grant: g @ None, ..
        } = &mut now.state
        {
            *g = Some(grant);
            let mut batch = KvBatch::default();
            batch.insert(ticket_key(&t.id), encode(&now)?);
            store.commit(batch)?;
        }
        Ok(())
    }
}
