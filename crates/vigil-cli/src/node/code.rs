//! The enrolment code: which address goes in it, and how it is shown (text,
//! a QR code for the terminal, JSON). `serve` records the address it bound
//! in `DATA/node.json` so `code` needs no flags.

use std::net::SocketAddr;
use std::path::Path;

use qrcode::render::unicode::Dense1x2;
use serde::Serialize;
use vigil_net::{EnrolmentCode, NodeIdentity, TicketCode};

use super::admin::{IssuedView, Status};
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

/// The ticket staff hand a resident: the node's code `node` and the ticket
/// the node just issued (`residents_add`'s answer). Its text (`Display`)
/// is what `vigil enrol` takes and what every QR code of it holds: `vigil-
/// node residents add` and the dashboard's enrolment sheet both build it
/// here, and both draw its QR code with `vigil_web::qr::code`.
pub(crate) fn ticket_code(node: &EnrolmentCode, issued: &IssuedView) -> Result<TicketCode, String> {
    let bad = |what: &str| format!("the node's answer has a malformed ticket {what}");
    let mut id = [0u8; 16];
    hex::decode_to_slice(&issued.id, &mut id).map_err(|_| bad("id"))?;
    let mut secret = vigil_crypto::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(&issued.secret, secret.as_mut()).map_err(|_| bad("secret"))?;
    Ok(TicketCode {
        node: node.clone(),
        ticket: vigil_proto::Ticket {
            id,
            secret: vigil_proto::TicketSecret::from_bytes(*secret),
        },
    })
}

/// The code as a QR code (see [`qr`]) of any text, encoded as the
/// dashboard's sheet encodes it.
pub(crate) fn qr_text(text: &str) -> Result<String, String> {
    let q = vigil_web::qr::code(text)?;
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
    fn a_ticket_is_the_code_and_the_issued_ticket_and_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let identity = NodeIdentity::load_or_create(dir.path()).unwrap();
        let code = enrolment_code(&identity, "192.0.2.1:4433".parse().unwrap()).unwrap();
        let issued = IssuedView {
            id: "0123456789abcdef0123456789abcdef".into(),
            secret: "5e".repeat(32),
            label: "Ana".into(),
            period_end_ms: 1,
            period_end: String::new(),
        };
        let t = ticket_code(&code, &issued).unwrap();
        let text = t.to_string();
        assert_eq!(
            text,
            format!(
                "{}/{}/{}",
                code.to_string().replacen("vigil1", "vigil-ticket1", 1),
                issued.id,
                issued.secret
            )
        );
        assert_eq!(text.parse::<TicketCode>().unwrap(), t);
        assert_eq!(scan(&qr_text(&text).unwrap()), text);
        let broken = IssuedView {
            secret: "zz".into(),
            ..issued
        };
        assert!(ticket_code(&code, &broken).unwrap_err().contains("secret"));
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
