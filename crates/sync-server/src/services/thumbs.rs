//! Thumbnails: a 320 px (longest side) JPEG made once when a photo's bytes are stored, with
//! the EXIF orientation applied. HEIC is not decoded (no pure-Rust decoder): no thumbnail.

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use std::path::Path;

/// Longest side of a thumbnail, in pixels.
pub const THUMB_PX: u32 = 320;

/// Decoding a photo takes tens of MB (a 12 MP JPEG is 36 MB of pixels): at most this many
/// at once, whatever the number of uploads finishing together.
pub fn permits() -> &'static tokio::sync::Semaphore {
    static SEM: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SEM.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(n.clamp(1, 4))
    })
}

/// The blob key of a photo's thumbnail.
pub fn thumb_key(sha256: &str) -> String {
    format!("{sha256}.thumb")
}

/// Makes the thumbnail of the image file `src` into `dest` (JPEG). Blocking: call it from
/// `spawn_blocking`. Decoding is bounded (40,000 px a side, 512 MiB) against image bombs.
pub fn make_thumbnail(src: &Path, dest: &Path, mime: &str) -> anyhow::Result<()> {
    anyhow::ensure!(mime != "image/heic", "HEIC thumbnails are not generated");
    let mut reader = ImageReader::open(src)?.with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(40_000);
    limits.max_image_height = Some(40_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut img = DynamicImage::from_decoder(decoder)?;
    img.apply_orientation(orientation);
    let thumb = img.thumbnail(THUMB_PX, THUMB_PX).to_rgb8();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dest)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&thumb)?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_png_becomes_a_320_px_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("p.png");
        image::RgbImage::from_fn(1000, 500, |x, _| image::Rgb([(x % 256) as u8, 0, 0]))
            .save(&src)
            .unwrap();
        let dest = dir.path().join("t.jpg");
        make_thumbnail(&src, &dest, "image/png").unwrap();
        let t = image::open(&dest).unwrap();
        assert_eq!((t.width(), t.height()), (320, 160));
        assert!(std::fs::read(&dest)
            .unwrap()
            .starts_with(&[0xFF, 0xD8, 0xFF]));
    }

    #[test]
    fn heic_and_garbage_have_no_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("x");
        std::fs::write(&src, [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).unwrap();
        let dest = dir.path().join("t.jpg");
        assert!(make_thumbnail(&src, &dest, "image/jpeg").is_err());
        assert!(make_thumbnail(&src, &dest, "image/heic").is_err());
    }
}
