//! `vigil-node webhook secret`: the secret webhook bodies are signed with.

use crate::common::Error;
use crate::node::channel::existing_data_dir;
use crate::node::config::Settings;
use crate::node::hooks;
use crate::node::util::out;

/// `vigil-node webhook secret`: prints the secret `serve` signs with,
/// creating the data directory's at first use.
pub(crate) fn webhook_secret(settings: &Settings) -> Result<(), Error> {
    let data = settings.data_dir()?;
    existing_data_dir(data)?;
    let s = hooks::secret(settings, data)?;
    out(s.expose())
}
