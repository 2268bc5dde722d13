//! `vigil-node staff add|list|remove`: the dashboard's staff accounts
//! (`DATA/staff.json`, argon2id hashes; see `vigil_web::staff`).

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use serde::Serialize;
use vigil_crypto::Zeroizing;
use vigil_web::staff::{Staff, StaffError};

use super::json;
use crate::common::Error;
use crate::common::time::{now_ms, short_utc};
use crate::node::util::{out, printable, table};

fn staff_error(e: StaffError) -> Error {
    match e {
        StaffError::BadName(_) | StaffError::BadPassword => Error::usage(e.to_string()),
        e => Error::failed(e.to_string()),
    }
}

/// The password: one line of stdin, or asked twice on the terminal.
fn read_password(from_stdin: bool) -> Result<Zeroizing<String>, Error> {
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::failed(format!("reading the password from stdin: {e}")))?;
        let trimmed = line.trim_end_matches(['\n', '\r']);
        return Ok(Zeroizing::new(trimmed.to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "no terminal to ask for the password on: pipe it with --password-stdin",
        ));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| Error::failed(format!("reading the password: {e}")))
    };
    let first = ask("password (at least 10 characters): ")?;
    let again = ask("the same password again: ")?;
    if *first != *again {
        return Err(Error::usage("the two passwords differ; nothing changed"));
    }
    Ok(first)
}

/// `vigil-node staff add NAME`.
pub(crate) fn staff_add(data: &Path, name: &str, password_stdin: bool) -> Result<(), Error> {
    vigil_web::staff::check_name(name).map_err(staff_error)?;
    crate::node::serve::create_data_dir(data)?;
    let staff = Staff::in_dir(data);
    // Checked before the prompt: no password typed for nothing.
    if staff.exists(name).map_err(staff_error)? {
        return Err(staff_error(StaffError::Exists(name.to_owned())));
    }
    let password = read_password(password_stdin)?;
    staff.add(name, &password, now_ms()).map_err(staff_error)?;
    out(&format!(
        "added staff member {}: they can log in to the dashboard (vigil-node serve --http ADDR)",
        printable(name)
    ))
}

#[derive(Serialize)]
struct Member<'a> {
    name: &'a str,
    added_ms: i64,
}

/// `vigil-node staff list`.
pub(crate) fn staff_list(data: &Path, as_json: bool) -> Result<(), Error> {
    let list = Staff::in_dir(data).list().map_err(staff_error)?;
    if as_json {
        return json(
            &list
                .iter()
                .map(|m| Member {
                    name: &m.name,
                    added_ms: m.added_ms,
                })
                .collect::<Vec<_>>(),
        );
    }
    if list.is_empty() {
        return out("no staff members (vigil-node staff add NAME)");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|m| vec![printable(&m.name), short_utc(m.added_ms)])
        .collect();
    out(&table(&["NAME", "ADDED (UTC)"], &rows))
}

/// `vigil-node staff remove NAME`.
pub(crate) fn staff_remove(data: &Path, name: &str) -> Result<(), Error> {
    Staff::in_dir(data).remove(name).map_err(staff_error)?;
    out(&format!(
        "removed staff member {}: they can no longer log in; their open sessions end",
        printable(name)
    ))
}
