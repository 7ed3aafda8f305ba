//! Small real JPEGs for hazard photos: one 16×16 image encoded once, made unique per photo
//! by a comment segment (`FF FE`) naming the photo, so every photo has its own SHA-256 and
//! still sniffs and decodes as a JPEG.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use uuid::Uuid;

/// Width and height of every photo, pixels.
pub const SIDE: u32 = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Photo {
    /// The photo fact's id.
    pub id: Uuid,
    /// Lower-case hex SHA-256 of `bytes`.
    pub sha256: String,
    pub bytes: Vec<u8>,
}

fn base_jpeg() -> &'static [u8] {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    JPEG.get_or_init(|| {
        let img = image::RgbImage::from_fn(SIDE, SIDE, |x, y| {
            image::Rgb([(x * 16) as u8, (y * 16) as u8, 128])
        });
        let mut out = Vec::new();
        // Encoding a 16×16 RGB image into memory does not fail; if it ever did, the bytes
        // would still start like a JPEG below and the server would say what is wrong.
        let _ = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&img);
        if out.len() < 4 {
            out = vec![0xFF, 0xD8, 0xFF, 0xD9];
        }
        out
    })
}

impl Photo {
    /// The photo of fact `id`; `salt` varies the comment (deterministic for a seed).
    pub fn new(id: Uuid, salt: u64) -> Photo {
        let base = base_jpeg();
        let comment = format!("fleet-sim photo {id} {salt:016x}");
        let len = (comment.len() + 2) as u16;
        let mut bytes = Vec::with_capacity(base.len() + comment.len() + 4);
        bytes.extend_from_slice(&base[..2]); // SOI
        bytes.extend_from_slice(&[0xFF, 0xFE]);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(comment.as_bytes());
        bytes.extend_from_slice(&base[2..]);
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Photo { id, sha256, bytes }
    }
}
