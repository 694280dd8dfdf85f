//! report.html in a real browser: Debian's chromium-headless-shell (installed by
//! `.ci/browser`) takes screenshots at a fixed size, and their pixels are checked.
//!
//! * The report page is not blank, and the figures occupy it: colour from the series
//!   palette (which only the figures use) fills a tall band of the page.
//! * A figure renders in the browser as in a file viewer: the same SVG, inline in a page
//!   of its own size, matches resvg's PNG of it (the file `collapse plot` writes) pixel
//!   for pixel up to anti-aliasing and glyph rasterization.
//!
//! Without the browser the test fails in CI (`CI` set) with the reason, and elsewhere
//! says that it was skipped and why. `COLLAPSE_SCREENSHOTS=DIR` keeps the screenshots.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use collapse_cli::plot::raster::{decode_png, png_from_svg};

const BIN: &str = env!("CARGO_BIN_EXE_collapse");
const BROWSER: &str = "chromium-headless-shell";
const PAGE: (u32, u32) = (1200, 1600);

fn find_browser() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("COLLAPSE_BROWSER") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("COLLAPSE_BROWSER={} is not a file", p.display())) };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(BROWSER)).find(|p| p.is_file()).ok_or_else(|| {
        format!("`{BROWSER}` is not on PATH; `.ci/browser` installs it as root (apt-get install {BROWSER})")
    })
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The browser, or None when the test is to be skipped (outside CI).
fn browser() -> Option<PathBuf> {
    match find_browser() {
        Ok(p) => Some(p),
        Err(why) if in_ci() => panic!("browser check cannot run in CI: {why}"),
        Err(why) => {
            eprintln!("browser check skipped: {why}");
            None
        }
    }
}

/// Screenshot `page` at `size` into `png`; flags as the project's machines need them (no
/// sandbox as root, no network: every background connection off, a fresh profile).
fn screenshot(browser: &Path, page: &Path, size: (u32, u32), png: &Path, profile: &Path) {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let mut child = Command::new(browser)
        .args([
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot start the browser");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read as _;
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            assert!(status.success() && png.is_file(), "the browser failed ({status}): {err}");
            return;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the browser took more than 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn keep(file: &Path) {
    if let Some(dir) = std::env::var_os("COLLAPSE_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(file, Path::new(&dir).join(file.file_name().unwrap())).unwrap();
    }
}

/// Whether a pixel has a series colour (which only figures use: text, links and table
/// marks are other colours), up to anti-aliasing.
fn chromatic(p: &[u8]) -> bool {
    // The palette's grey is left out: anti-aliased text has every grey.
    let (hi, lo) = (p[0].max(p[1]).max(p[2]), p[0].min(p[1]).min(p[2]));
    hi - lo > 40
        && collapse_cli::plot::draw::palette().iter().any(|&(r, g, b)| {
            (p[0] as i32 - r as i32).abs() + (p[1] as i32 - g as i32).abs() + (p[2] as i32 - b as i32).abs() < 40
        })
}

#[test]
fn report_renders_in_a_real_browser_with_its_figures() {
    let Some(browser) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("golden-ratio");
    let o = Command::new(BIN)
        .args(["run", "golden-ratio", "--set", "replicates=8", "--quiet", "--report", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // 1. The report page.
    let shot = dir.path().join("report.png");
    screenshot(&browser, &out.join("report.html"), PAGE, &shot, &dir.path().join("profile-1"));
    keep(&shot);
    let (w, h, px) = decode_png(&std::fs::read(&shot).unwrap()).unwrap();
    assert_eq!((w, h), PAGE, "screenshot size");
    let rows: Vec<&[u8]> = px.chunks((w * 4) as usize).collect();
    let non_white = px.chunks(4).filter(|p| p[0] < 235 || p[1] < 235 || p[2] < 235).count();
    let share = non_white as f64 / (w * h) as f64;
    assert!(share > 0.03, "the page is nearly blank: {:.2}% non-white pixels", 100.0 * share);
    // Text at the top (title, claims), dark pixels.
    let dark_top = rows[..200].iter().flat_map(|r| r.chunks(4)).filter(|p| p[0] < 90 && p[1] < 90 && p[2] < 90).count();
    assert!(dark_top > 1000, "no text at the top of the page ({dark_top} dark pixels)");
    // The figures: rows holding series colour span most of a figure's height, and the
    // colour is spread across the page's width (points along the x axis).
    let coloured_rows: Vec<usize> =
        (0..h as usize).filter(|&y| rows[y].chunks(4).filter(|p| chromatic(p)).count() >= 3).collect();
    let (first, last) = (*coloured_rows.first().expect("no series colour on the page"), *coloured_rows.last().unwrap());
    assert!(last - first > 600, "series colour spans only rows {first}–{last}");
    assert!(coloured_rows.len() > 200, "only {} rows hold series colour", coloured_rows.len());
    let columns_with_colour =
        (0..w as usize).filter(|&x| coloured_rows.iter().any(|&y| chromatic(&rows[y][4 * x..4 * x + 4]))).count();
    assert!(columns_with_colour > (w as usize) / 2, "series colour in only {columns_with_colour} columns");

    // 2. The first figure alone, in the browser and in resvg.
    let svg = std::fs::read_to_string(out.join("figures/risk-vs-w.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let size: (u32, u32) = (
        doc.root_element().attribute("width").unwrap().parse().unwrap(),
        doc.root_element().attribute("height").unwrap().parse().unwrap(),
    );
    let page = dir.path().join("figure.html");
    std::fs::write(
        &page,
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>html,body{{margin:0;background:#fff}} svg{{display:block}}</style></head><body>{}</body></html>",
            collapse_cli::html::inline_svg(&svg)
        ),
    )
    .unwrap();
    let shot = dir.path().join("figure.png");
    screenshot(&browser, &page, size, &shot, &dir.path().join("profile-2"));
    keep(&shot);
    let (bw, bh, browser_px) = decode_png(&std::fs::read(&shot).unwrap()).unwrap();
    let (rw, rh, resvg_px) = decode_png(&png_from_svg(&svg, 1.0).unwrap()).unwrap();
    assert_eq!((bw, bh), (rw, rh));
    // Compare on a coarse grid of 10×10-pixel blocks: mean intensity per block.
    let block = |px: &[u8], bx: usize, by: usize| -> f64 {
        let mut sum = 0.0;
        for y in by * 10..(by * 10 + 10).min(bh as usize) {
            for x in bx * 10..(bx * 10 + 10).min(bw as usize) {
                let i = 4 * (y * bw as usize + x);
                sum += (px[i] as f64 + px[i + 1] as f64 + px[i + 2] as f64) / 3.0;
            }
        }
        sum / 100.0
    };
    let (nx, ny) = (bw as usize / 10, bh as usize / 10);
    let mut worst: f64 = 0.0;
    let mut total = 0.0;
    for by in 0..ny {
        for bx in 0..nx {
            let d = (block(&browser_px, bx, by) - block(&resvg_px, bx, by)).abs();
            worst = worst.max(d);
            total += d;
        }
    }
    let mean = total / (nx * ny) as f64;
    eprintln!(
        "page: {:.1}% non-white, series colour in rows {first}–{last} ({} rows, {columns_with_colour} columns); figure: browser vs file {mean:.2} grey levels per block on average, {worst:.0} at most",
        100.0 * share,
        coloured_rows.len()
    );
    assert!(mean < 3.0, "browser and file differ by {mean:.2} grey levels per block on average");
    assert!(worst < 60.0, "a block differs by {worst:.0} grey levels between browser and file");
}
