//! A whole node: its data directory assembled into one value.
//!
//! The relay store, the one-time grant keys and the receipt signer were put
//! together by hand wherever a node ran (the CLI, the load generator, the
//! simulation, examples, tests); [`Node`] is that assembly, once. The TLS
//! certificate and the key files beside it stay with the transport
//! (`vigil_net::NodeIdentity`), which hands the signer in: a node crate that
//! knew about TLS would pull rustls into the simulation.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_crypto::SigningIdentity;
use vigil_proto::FrameHandler;

use crate::grant_keys::GrantKeys;
use crate::relay::{Relay, RelayConfig, RelaySession};
use crate::store::{MailboxStore, StoreError};

/// The relay store's directory inside a node's data directory.
pub const RELAY_DIR: &str = "relay";
/// The one-time grant keys' directory inside a node's data directory.
pub const GRANT_KEYS_DIR: &str = "grant-keys";

/// Makes one frame handler per new connection (what `vigil_net::NodeServer`
/// takes).
pub type HandlerFactory = Arc<dyn Fn() -> Box<dyn FrameHandler> + Send + Sync>;

/// How to assemble a [`Node`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeConfig {
    /// The relay's limits.
    pub relay: RelayConfig,
    /// Seeds the grant-key generator. `None` (the default, and what a real
    /// node uses) takes system randomness; tests and the simulation pass a
    /// fixed seed to be reproducible.
    pub grant_key_seed: Option<[u8; 32]>,
}

/// Why a node could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The relay store would not open (see [`StoreError::Locked`] for a
    /// store another process is serving).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The grant keys' directory could not be created.
    #[error("grant keys in {}: {source}", dir.display())]
    GrantKeys {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// No system randomness to seed the grant-key generator.
    #[error("system randomness unavailable: {0}")]
    Randomness(#[source] getrandom::Error),
}

/// A node: the relay over its store, with the alert role (grant keys) and,
/// once given a signer, deletion receipts. Clones share everything.
#[derive(Debug, Clone)]
pub struct Node {
    relay: Relay,
}

impl Node {
    /// Opens (or creates) the node in `dir`: the store in `dir/relay`, the
    /// grant keys in `dir/grant-keys`. Existing data directories open as
    /// they are.
    pub fn open(dir: &Path, config: &NodeConfig) -> Result<Node, NodeError> {
        let store = MailboxStore::open(&dir.join(RELAY_DIR))?;
        Self::with_store(store, &dir.join(GRANT_KEYS_DIR), config)
    }

    /// A node whose store lives in memory only (for the simulation and
    /// tests); grant keys are files by design, kept in `grant_keys_dir`.
    pub fn in_memory(grant_keys_dir: &Path, config: &NodeConfig) -> Result<Node, NodeError> {
        Self::with_store(MailboxStore::in_memory(), grant_keys_dir, config)
    }

    /// A node over an already open store: a fresh relay (empty caches) over
    /// kept state, as after a restart of the node process.
    pub fn with_store(
        store: MailboxStore,
        grant_keys_dir: &Path,
        config: &NodeConfig,
    ) -> Result<Node, NodeError> {
        let seed = match config.grant_key_seed {
            Some(seed) => seed,
            None => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(NodeError::Randomness)?;
                seed
            }
        };
        let keys =
            GrantKeys::open(grant_keys_dir, seed).map_err(|source| NodeError::GrantKeys {
                dir: grant_keys_dir.to_owned(),
                source,
            })?;
        Ok(Node {
            relay: Relay::new(store, config.relay).with_alerts(keys),
        })
    }

    /// Signs deletion receipts with `signer` (the key in the enrolment code).
    pub fn with_receipts(self, signer: &SigningIdentity) -> Self {
        // The caller keeps its identity; the relay holds its own copy.
        let own = SigningIdentity::from_bytes(signer.expose_secret());
        Node {
            relay: self.relay.with_receipts(own),
        }
    }

    /// Queues each new alert for these webhooks (set before the first
    /// connection: every handler shares it).
    pub fn with_webhooks(self, webhooks: crate::webhook::Webhooks) -> Self {
        Node {
            relay: self.relay.with_webhooks(webhooks),
        }
    }

    /// A frame handler for one new connection.
    pub fn handler(&self) -> Box<dyn FrameHandler> {
        Box::new(self.relay.session())
    }

    /// The relay session for one new connection, as its concrete type (for
    /// callers that drive it directly, without a transport).
    pub fn session(&self) -> RelaySession {
        self.relay.session()
    }

    /// A handler factory for `vigil_net::NodeServer`: one session per
    /// connection, all over this node.
    pub fn handler_factory(&self) -> HandlerFactory {
        let relay = self.relay.clone();
        Arc::new(move || Box::new(relay.session()))
    }

    /// The relay, for callers that keep it (the admin channel, the sweeper).
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// The store (for the operator).
    pub fn store(&self) -> &MailboxStore {
        self.relay.store()
    }
}
