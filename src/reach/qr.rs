//! QR codes of a unit's survey URL, as SVG (for the poster and print) and PNG.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::config::Settings;

/// The address citizens open: `{public_base_url}/s/{unit}`.
pub fn survey_url(settings: &Settings, unit_code: &str) -> String {
    format!("{}/s/{unit_code}", settings.public_base_url.trim_end_matches('/'))
}

fn code(url: &str) -> anyhow::Result<QrCode> {
    // Level M survives a crease or a stain on a printed poster.
    Ok(QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)?)
}

/// An SVG document (without the XML declaration, so it can sit inside HTML).
pub fn svg(url: &str, size: u32) -> anyhow::Result<String> {
    let image = code(url)?.render::<svg::Color>().min_dimensions(size, size).quiet_zone(true).build();
    Ok(image.split_once("?>").map_or(image.clone(), |(_, rest)| rest.trim_start().to_string()))
}

pub fn png(url: &str, size: u32) -> anyhow::Result<Vec<u8>> {
    let image = code(url)?.render::<image::Luma<u8>>().min_dimensions(size, size).quiet_zone(true).build();
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}
