//! The enrolment code: which address goes in it, and how it is shown (text,
//! a QR code for the terminal, JSON). `serve` records the address it bound
//! in `DATA/node.json` so `code` needs no flags.

use std::net::SocketAddr;
use std::path::Path;

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};
use serde::Serialize;
use vigil_net::{EnrolmentCode, NodeIdentity};

use super::admin::Status;
use super::channel;
use super::cli::CodeArgs;
use super::util::out;
use crate::common::Error;

/// Where `serve` records what it bound.
pub(crate) const STATE: &str = "node.json";

/// Records the serving node's addresses, atomically.
pub(crate) fn write_state(data: &Path, status: &Status) -> Result<(), Error> {
    let mut text = serde_json::to_vec_pretty(status).map_err(|e| Error::failed(e.to_string()))?;
    text.push(b'\n');
    vigil_fs::write_atomic(&data.join(STATE), &text, vigil_fs::Mode::OwnerOnly)
        .map_err(|e| Error::failed(format!("writing {}: {e}", data.join(STATE).display())))
}

/// What the last `serve` recorded, if anything.
pub(crate) fn read_state(data: &Path) -> Result<Option<Status>, Error> {
    let path = data.join(STATE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::failed(format!("{} is damaged: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::failed(format!("{}: {e}", path.display()))),
    }
}

/// The code for `addr`, refusing addresses no device can reach.
pub(crate) fn enrolment_code(
    identity: &NodeIdentity,
    addr: SocketAddr,
) -> Result<EnrolmentCode, String> {
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(format!(
            "{addr} is not an address devices can reach; give the node's reachable address \
             (`vigil-node code --addr IP:PORT`, or `advertise` / --advertise for serve)"
        ));
    }
    let code = identity.enrolment_code(addr);
    // Parse it back, as a device will.
    code.to_string()
        .parse::<EnrolmentCode>()
        .map_err(|e| e.to_string())
}

/// The code as a QR code of Unicode half blocks (two modules a character),
/// light on dark so it scans from a dark terminal.
pub(crate) fn qr(code: &EnrolmentCode) -> Result<String, String> {
    qr_text(&code.to_string())
}

#[derive(Serialize)]
struct CodeJson {
    code: String,
    addr: SocketAddr,
    node_public: String,
    fingerprint: String,
    receipt_key: String,
    running: bool,
    qr: String,
}

/// The node's enrolment code for `addr`, else the address it advertises or
/// last bound; and whether a node is serving `data` now.
pub(crate) fn current_code(
    data: &Path,
    addr: Option<SocketAddr>,
) -> Result<(EnrolmentCode, bool), Error> {
    channel::existing_data_dir(data)?;
    let identity = NodeIdentity::load(data)
        .map_err(|e| Error::failed(e.to_string()))?
        .ok_or_else(|| {
            Error::failed(format!(
                "no node identity in {}: start the node once with `vigil-node serve --data {}`",
                data.display(),
                data.display()
            ))
        })?;
    let running = channel::status(data);
    let state = match &running {
        Some(s) => Some(s.clone()),
        None => read_state(data)?,
    };
    let given = addr.is_some();
    let addr = match (addr, &state) {
        (Some(a), _) => a,
        (None, Some(s)) => s.advertise.unwrap_or(s.listen),
        (None, None) => {
            return Err(Error::failed(format!(
                "no address known for the node in {}: it has never served; pass --addr IP:PORT",
                data.display()
            )));
        }
    };
    let code = enrolment_code(&identity, addr).map_err(Error::failed)?;
    if running.is_none() && !given {
        eprintln!(
            "note: no node is serving {}; the code has the address it last listened on ({addr})",
            data.display()
        );
    }
    Ok((code, running.is_some()))
}

/// The code as a QR code (see [`qr`]) of any text.
pub(crate) fn qr_text(text: &str) -> Result<String, String> {
    let q = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L)
        .map_err(|e| format!("cannot make a QR code: {e}"))?;
    Ok(q.render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// `vigil-node code`.
pub(crate) fn run(data: &Path, args: &CodeArgs) -> Result<(), Error> {
    let (code, running) = current_code(data, args.addr)?;
    let qr = qr(&code).map_err(Error::failed)?;
    if args.json {
        let j = CodeJson {
            code: code.to_string(),
            addr: code.addr,
            node_public: hex::encode(code.node_public.as_bytes()),
            fingerprint: hex::encode(code.fingerprint),
            receipt_key: hex::encode(code.receipt_key.as_bytes()),
            running,
            qr,
        };
        return out(&serde_json::to_string_pretty(&j).map_err(|e| Error::failed(e.to_string()))?);
    }
    if !args.no_qr {
        out(&qr)?;
    }
    out(&format!("enrolment code: {code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the terminal rendering back as pixels (a block is a light
    /// module: the code is drawn light on dark) and decodes it as a scanner
    /// would.
    fn scan(text: &str) -> String {
        let mut rows: Vec<Vec<bool>> = vec![];
        for line in text.lines() {
            let (top, bottom): (Vec<bool>, Vec<bool>) = line
                .chars()
                .map(|c| match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    _ => (false, false),
                })
                .unzip();
            rows.push(top);
            rows.push(bottom);
        }
        let (w, h, scale) = (rows[0].len(), rows.len(), 4);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
            if rows[y / scale].get(x / scale).copied().unwrap_or(false) {
                255
            } else {
                0
            }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    #[test]
    fn the_qr_code_scans_to_the_enrolment_code() {
        let dir = tempfile::tempdir().unwrap();
        let identity = NodeIdentity::load_or_create(dir.path()).unwrap();
        let code = enrolment_code(&identity, "[2001:db8::7]:4433".parse().unwrap()).unwrap();
        assert_eq!(scan(&qr(&code).unwrap()), code.to_string());
    }

    #[test]
    fn unreachable_addresses_make_no_code() {
        let dir = tempfile::tempdir().unwrap();
        let identity = NodeIdentity::load_or_create(dir.path()).unwrap();
        for addr in ["0.0.0.0:4433", "[::]:4433", "127.0.0.1:0"] {
            let e = enrolment_code(&identity, addr.parse().unwrap()).unwrap_err();
            assert!(e.contains("not an address devices can reach"), "{e}");
        }
    }

    #[test]
    fn the_recorded_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_state(dir.path()).unwrap(), None);
        let s = Status {
            pid: 7,
            listen: "127.0.0.1:4433".parse().unwrap(),
            advertise: Some("192.0.2.1:4433".parse().unwrap()),
            started_ms: 1,
            version: "0.1.0".into(),
        };
        write_state(dir.path(), &s).unwrap();
        assert_eq!(read_state(dir.path()).unwrap(), Some(s));
        std::fs::write(dir.path().join(STATE), b"{").unwrap();
        assert!(
            read_state(dir.path())
                .unwrap_err()
                .one_line()
                .contains("damaged")
        );
    }
}
