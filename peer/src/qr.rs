//! Terminal QR codes.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// Renders `text` as a QR code of unicode half blocks (two modules per character cell), with a
/// quiet zone. Dark modules are left blank and light ones drawn, so on the usual dark terminal
/// the code shows dark on light as printed codes do (phone scanners also read the inverse).
pub fn render(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
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
