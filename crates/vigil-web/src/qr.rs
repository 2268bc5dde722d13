//! The QR code of an enrolment ticket, one encoding for every rendering:
//! the sheet's SVG here, and the terminal's half blocks in `vigil-node
//! residents add` (which builds its code with [`code`] too), so a ticket
//! scans the same from paper and from a screen.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The QR code of `text`: byte mode, error correction level L (a ticket is
/// about 330 characters; L keeps the modules large enough to scan from a
/// phone at arm's length, on paper or on a terminal).
pub fn code(text: &str) -> Result<QrCode, String> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L)
        .map_err(|e| format!("cannot make a QR code: {e}"))
}

/// `text` as an inline SVG element: one unit a module (the page's CSS sets
/// the printed size; the viewBox scales it), quiet zone included, black on
/// white. Hidden from screen readers: the page gives the text beside it.
pub fn svg(text: &str) -> Result<String, String> {
    let image = code(text)?
        .render::<svg::Color<'_>>()
        .module_dimensions(1, 1)
        .quiet_zone(true)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    // Inline in HTML: no XML prolog.
    let at = image
        .find("<svg")
        .ok_or_else(|| "the QR renderer made no <svg>".to_owned())?;
    Ok(image[at..].replacen("<svg ", r#"<svg aria-hidden="true" focusable="false" "#, 1))
}
