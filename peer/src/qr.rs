//! Terminal QR codes.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// Renders `text` as a QR code of unicode half blocks (two modules per character cell), with a
/// quiet zone, dark on light so phones read it from any terminal theme.
pub fn render(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Dark)
            .light_color(Dense1x2::Light)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_url() {
        let qr = super::render("http://127.0.0.1:1234/#AAAA").expect("qr");
        assert!(qr.lines().count() > 10);
    }
}
