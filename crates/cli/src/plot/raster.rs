//! The font, and PNG from SVG.
//!
//! Why this route: plotters draws the figure once, as SVG, with text as SVG `<text>` (no
//! font needed to write it). The PNG is that same SVG rasterized by resvg (pure Rust),
//! so both files show the same figure; plotters' own bitmap backend would draw it a
//! second time without anti-aliased lines. Both need glyph metrics that match what a
//! viewer shows: the font is bundled (DejaVu Sans from Debian's fonts-dejavu-core,
//! licence in `assets/fonts/LICENSE`), registered with plotters (its `ab_glyph`
//! feature) for text layout and with resvg's font database for rendering, so no system
//! font or fontconfig is consulted and the PNG is the same on every machine. Browsers
//! render the SVG's `sans-serif` with their own font, which is DejaVu Sans on Debian.

use std::sync::{Arc, Once, OnceLock};

use anyhow::{Context, Result};
use resvg::{tiny_skia, usvg};

/// DejaVu Sans 2.37 (assets/fonts/LICENSE).
pub static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name inside [`FONT`].
pub const FONT_FAMILY: &str = "DejaVu Sans";

/// Register the bundled font with plotters as its `sans-serif` (once per process).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would be a broken build.
        if plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT).is_err() {
            tracing::error!("the bundled font could not be registered");
        }
    });
}

/// Rasterize an SVG document at `scale` × its size, as PNG bytes.
pub fn png_from_svg(svg: &str, scale: f32) -> Result<Vec<u8>> {
    // The font database with the bundled font, parsed once per process.
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    let fontdb = FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_font_data(FONT.to_vec());
            db.set_sans_serif_family(FONT_FAMILY);
            Arc::new(db)
        })
        .clone();
    let options = usvg::Options { font_family: FONT_FAMILY.to_string(), fontdb, ..usvg::Options::default() };
    let tree = usvg::Tree::from_str(svg, &options).context("the figure's SVG does not parse")?;
    let size = tree.size().to_int_size().scale_by(scale).context("empty figure")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).context("figure too large to rasterize")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().context("cannot encode the PNG")
}

/// Decode PNG bytes: (width, height, RGBA pixels, premultiplied alpha).
pub fn decode_png(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>)> {
    let pixmap = tiny_skia::Pixmap::decode_png(bytes).context("not a PNG")?;
    Ok((pixmap.width(), pixmap.height(), pixmap.data().to_vec()))
}
