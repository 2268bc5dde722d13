//! The node's persisted identity: TLS certificate and key, and X25519 key.

use core::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use vigil_crypto::{NodeId, SigningIdentity, X25519Identity, Zeroizing};

use crate::{EnrolmentCode, NetError, SERVER_NAME};

const CERT_FILE: &str = "node-cert.der";
const KEY_FILE: &str = "node-key.der";
const X25519_FILE: &str = "node-x25519.key";
const SIGNING_FILE: &str = "node-ed25519.key";

/// Node identity persisted in the node's data dir: a self-signed TLS
/// certificate (made for the name devices ask for) with its private key, and
/// an X25519 identity. Files: `node-cert.der`, `node-key.der` (mode 0600),
/// `node-x25519.key` (mode 0600, 32 raw bytes).
pub struct NodeIdentity {
    cert: CertificateDer<'static>,
    key: Zeroizing<Vec<u8>>,
    x25519: X25519Identity,
    signing: SigningIdentity,
    fingerprint: [u8; 32],
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("fingerprint", &hex::encode(self.fingerprint))
            .field("x25519", &self.x25519)
            .finish_non_exhaustive()
    }
}

fn io_err(what: &str, path: &Path, e: io::Error) -> NetError {
    NetError::io(format!("{what} {}", path.display()), e)
}

/// Reads a file, `None` if it does not exist.
fn read_opt(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, NetError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path, e)),
    }
}

/// Writes atomically (vigil-fs), so a crash never leaves a half-written
/// file under the real name; `secret` files get mode 0600, others 0644.
fn write_file(dir: &Path, name: &str, bytes: &[u8], secret: bool) -> Result<(), NetError> {
    let path = dir.join(name);
    let mode = if secret {
        vigil_fs::Mode::OwnerOnly
    } else {
        vigil_fs::Mode::WorldReadable
    };
    vigil_fs::write_atomic(&path, bytes, mode).map_err(|e| io_err("writing", &path, e))
}

impl NodeIdentity {
    /// Loads the identity from `dir`, creating it (and `dir`) on first use.
    /// A partial or unparsable identity is an error, never silently replaced:
    /// enrolled devices pin this certificate.
    pub fn load_or_create(dir: &Path) -> Result<NodeIdentity, NetError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("creating", dir, e))?;
        match Self::load(dir)? {
            Some(identity) => Ok(identity),
            None => Self::create(dir),
        }
    }

    /// Loads the identity from `dir` without creating one: `Ok(None)` when
    /// `dir` holds none of the identity files (or does not exist), for
    /// operator tools that must not mint a new identity by accident. A
    /// partial or unparsable identity is an error, as in
    /// [`NodeIdentity::load_or_create`]. (An identity made before receipts
    /// existed gains its signing key file here too.)
    pub fn load(dir: &Path) -> Result<Option<NodeIdentity>, NetError> {
        let cert = read_opt(&dir.join(CERT_FILE))?;
        let key = read_opt(&dir.join(KEY_FILE))?;
        let x25519 = read_opt(&dir.join(X25519_FILE))?;
        match (cert, key, x25519) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(x25519)) => {
                Self::from_parts(cert.to_vec(), key, &x25519, &*Self::signing_seed(dir)?).map(Some)
            }
            (cert, key, x25519) => {
                let missing: Vec<&str> = [(CERT_FILE, cert.is_none()), (KEY_FILE, key.is_none())]
                    .into_iter()
                    .chain([(X25519_FILE, x25519.is_none())])
                    .filter_map(|(name, gone)| gone.then_some(name))
                    .collect();
                Err(NetError::CorruptIdentity(format!(
                    "identity in {} is incomplete ({} missing); restore it, or delete the rest \
                     to create a new one (devices must then re-enrol)",
                    dir.display(),
                    missing.join(", ")
                )))
            }
        }
    }

    fn create(dir: &Path) -> Result<NodeIdentity, NetError> {
        let generated = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
            .map_err(NetError::Certificate)?;
        let key = Zeroizing::new(generated.signing_key.serialize_der());
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut()).map_err(NetError::Randomness)?;
        // Secrets first, certificate last: the certificate is what devices see.
        write_file(dir, KEY_FILE, &key, true)?;
        write_file(dir, X25519_FILE, secret.as_ref(), true)?;
        let seed = Self::signing_seed(dir)?;
        write_file(dir, CERT_FILE, generated.cert.der(), false)?;
        Self::from_parts(generated.cert.der().to_vec(), key, secret.as_ref(), &seed)
    }

    /// The receipt-signing seed, created on first use (identities made
    /// before receipts existed gain one without changing their certificate).
    fn signing_seed(dir: &Path) -> Result<Zeroizing<[u8; 32]>, NetError> {
        if let Some(b) = read_opt(&dir.join(SIGNING_FILE))? {
            let seed = <[u8; 32]>::try_from(b.as_slice()).map_err(|_| {
                NetError::CorruptIdentity(format!("{SIGNING_FILE} must hold 32 bytes"))
            })?;
            return Ok(Zeroizing::new(seed));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(NetError::Randomness)?;
        write_file(dir, SIGNING_FILE, seed.as_ref(), true)?;
        Ok(seed)
    }

    fn from_parts(
        cert: Vec<u8>,
        key: Zeroizing<Vec<u8>>,
        x25519: &[u8],
        signing: &[u8; 32],
    ) -> Result<Self, NetError> {
        let secret = <[u8; 32]>::try_from(x25519).map_err(|_| {
            NetError::CorruptIdentity(format!(
                "{X25519_FILE} must hold 32 bytes, found {}",
                x25519.len()
            ))
        })?;
        let cert = CertificateDer::from(cert);
        // Parse both halves now and check they belong together, so a bad
        // file is reported here rather than as a failed handshake later.
        let provider = rustls::crypto::ring::default_provider();
        rustls::sign::CertifiedKey::from_der(
            vec![cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
            &provider,
        )
        .map_err(|e| NetError::CorruptIdentity(format!("{CERT_FILE}/{KEY_FILE}: {e}")))?;
        Ok(Self {
            fingerprint: Sha256::digest(&cert).into(),
            cert,
            key,
            x25519: X25519Identity::from_bytes(secret),
            signing: SigningIdentity::from_bytes(*signing),
        })
    }

    /// The node's receipt-signing identity (Ed25519).
    pub fn signing(&self) -> &SigningIdentity {
        &self.signing
    }

    /// SHA-256 of the certificate DER, which devices pin.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The node's X25519 identity.
    pub fn x25519(&self) -> &X25519Identity {
        &self.x25519
    }

    /// The node's identity as devices know it (from its enrolment code).
    pub fn node_id(&self) -> NodeId {
        NodeId::new(self.x25519.public_key(), self.fingerprint)
    }

    /// The code a device needs to reach this node at `addr` and pin it.
    pub fn enrolment_code(&self, addr: SocketAddr) -> EnrolmentCode {
        EnrolmentCode {
            addr,
            node_public: self.x25519.public_key(),
            fingerprint: self.fingerprint,
            receipt_key: self.signing.verify_key(),
        }
    }

    pub(crate) fn cert(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.to_vec()))
    }
}
