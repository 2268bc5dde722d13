//! `vigil record-gatt`: a wristband's raw Bluetooth GATT value, decoded and
//! recorded (docs/spec.md §6.1).

use std::io::Write;

use serde::Serialize;
use vigil_log::gatt;

use crate::common::Error;
use crate::common::time::format_time;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// `vigil record-gatt`.
pub(crate) fn run(ctx: &mut Ctx, args: &RecordGattArgs) -> Result<(), Error> {
    let c = args.characteristic;
    let hex_text: String = args
        .bytes
        .concat()
        .chars()
        .filter(|ch| !ch.is_whitespace())
        .collect();
    let bytes = hex::decode(&hex_text).map_err(|e| {
        Error::usage(format!(
            "invalid bytes {hex_text:?}: {e} (expected hex such as 06B00E00FE)"
        ))
    })?;
    // Decoded here first, before the vault is opened, to check the reading's
    // time against the period and the clock as `vigil record` does.
    let packet = gatt::decode(c, &bytes).map_err(|e| {
        Error::usage(format!(
            "GATT packet {c:04X} {hex_text} refused: {e} (nothing was recorded)"
        ))
    })?;
    for (metric, value) in packet.values() {
        validate_value(metric, value)?;
    }
    let received = args.at.map_or(ctx.now_ms, |t| t.resolve(ctx.now_ms));
    let at = packet.time_ms(received);
    let mut vault = super::record::open_for_reading_at(ctx, at)?;
    let before = vault.pending_alerts()?.len();
    let readings = vault.record_gatt(c, &bytes, received)?;
    let queued = vault.pending_alerts()?.len().saturating_sub(before);
    if ctx.json {
        return ctx.print_json(&RecordedGatt {
            alerts_queued: queued,
            characteristic: format!("{c:04X}"),
            readings: readings
                .iter()
                .map(|r| GattReading {
                    id: r.id.to_string(),
                    metric: mname(r.metric),
                    time: format_time(r.time_ms),
                    unit: unit_label(r.metric),
                    value: Num(r.value),
                })
                .collect(),
        });
    }
    for r in &readings {
        writeln!(
            ctx.out,
            "Recorded {} {} at {} (id {}) from GATT {c:04X}",
            mname(r.metric),
            value_with_unit(r.metric, r.value),
            ctx.time(r.time_ms),
            short_id(r.id)
        )?;
    }
    if queued > 0 {
        writeln!(
            ctx.out,
            "A fever alert is queued for the community node; it is sent at the next `vigil sync`."
        )?;
    }
    Ok(())
}

/// `vigil record-gatt --json`.
#[derive(Debug, Serialize)]
struct RecordedGatt {
    alerts_queued: usize,
    characteristic: String,
    readings: Vec<GattReading>,
}

/// One reading in `vigil record-gatt --json`.
#[derive(Debug, Serialize)]
struct GattReading {
    id: String,
    metric: &'static str,
    time: String,
    unit: &'static str,
    value: Num,
}
