//! Scanned consent forms (paper, in person): what a file is, told from its first bytes (never from
//! its name), and the limit on its size. Files are kept by the SHA-256 of their content, which the
//! opt-in's evidence (`document_sha256`) names.

use sha2::{Digest, Sha256};

/// The largest file accepted.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;

/// The kinds of file a scan may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Pdf,
    Png,
    Jpeg,
    Tiff,
    Webp,
}

impl MediaType {
    pub const ALL: [MediaType; 5] = [MediaType::Pdf, MediaType::Png, MediaType::Jpeg, MediaType::Tiff, MediaType::Webp];

    pub fn as_str(&self) -> &'static str {
        match self {
            MediaType::Pdf => "application/pdf",
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Tiff => "image/tiff",
            MediaType::Webp => "image/webp",
        }
    }

    pub fn parse(text: &str) -> Option<MediaType> {
        MediaType::ALL.into_iter().find(|media| media.as_str() == text)
    }

    /// The type the content's signature shows, if it is one of the accepted kinds.
    pub fn sniff(content: &[u8]) -> Option<MediaType> {
        let starts = |magic: &[u8]| content.starts_with(magic);
        if starts(b"%PDF-") {
            Some(MediaType::Pdf)
        } else if starts(b"\x89PNG\r\n\x1a\n") {
            Some(MediaType::Png)
        } else if starts(b"\xff\xd8\xff") {
            Some(MediaType::Jpeg)
        } else if starts(b"II*\0") || starts(b"MM\0*") {
            Some(MediaType::Tiff)
        } else if starts(b"RIFF") && content.get(8..12) == Some(b"WEBP") {
            Some(MediaType::Webp)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than 10 MiB")]
    TooLarge,
    #[error("the file is not a PDF, PNG, JPEG, TIFF or WebP (told by its content)")]
    UnsupportedType,
}

impl DocumentError {
    pub fn code(&self) -> &'static str {
        match self {
            DocumentError::Empty => "document_empty",
            DocumentError::TooLarge => "document_too_large",
            DocumentError::UnsupportedType => "document_type_unsupported",
        }
    }
}

/// A checked file: its type and the hex SHA-256 it is kept under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDocument {
    pub media_type: MediaType,
    pub sha256: String,
}

pub fn check(content: &[u8]) -> Result<CheckedDocument, DocumentError> {
    if content.is_empty() {
        return Err(DocumentError::Empty);
    }
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge);
    }
    let media_type = MediaType::sniff(content).ok_or(DocumentError::UnsupportedType)?;
    Ok(CheckedDocument { media_type, sha256: hex::encode(Sha256::digest(content)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_content_and_the_name_is_the_hash() {
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
        let checked = check(pdf).unwrap();
        assert_eq!(checked.media_type, MediaType::Pdf);
        assert_eq!(checked.sha256, hex::encode(Sha256::digest(pdf)));
        assert_eq!(check(b"\x89PNG\r\n\x1a\n....").unwrap().media_type, MediaType::Png);
        assert_eq!(check(b"\xff\xd8\xff\xe0..JFIF").unwrap().media_type, MediaType::Jpeg);
        assert_eq!(check(b"RIFF\x10\0\0\0WEBPVP8 ").unwrap().media_type, MediaType::Webp);
        // A script or a page named scan.pdf is still not a scan.
        assert_eq!(check(b"<html><script>alert(1)</script>"), Err(DocumentError::UnsupportedType));
        assert_eq!(check(b"MZ\x90\0"), Err(DocumentError::UnsupportedType));
        assert_eq!(check(b"RIFF\x10\0\0\0WAVEfmt "), Err(DocumentError::UnsupportedType));
        assert_eq!(check(b""), Err(DocumentError::Empty));
        let big = [b"%PDF-".as_slice(), &vec![0u8; MAX_DOCUMENT_BYTES]].concat();
        assert_eq!(check(&big), Err(DocumentError::TooLarge));
    }
}
