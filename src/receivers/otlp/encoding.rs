//! Request bodies on OTLP/HTTP: content type (protobuf or JSON), content
//! encoding (gzip, deflate, zstd) and decompression bounded by the size
//! limit, so a compression bomb is cut off as soon as it exceeds it.

use std::io::Read;

use super::status::Failure;

/// How the payload is serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Protobuf,
    Json,
}

impl Payload {
    /// From a `Content-Type` header; `None` for anything else.
    pub fn from_content_type(value: &str) -> Option<Payload> {
        let media = value.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/x-protobuf")
            || media.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Payload::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Payload::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Payload::Protobuf => "application/x-protobuf",
            Payload::Json => "application/json",
        }
    }
}

/// A `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    Deflate,
    Zstd,
}

impl Compression {
    pub fn from_header(value: Option<&str>) -> Result<Compression, Failure> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Compression::Identity);
        };
        match value.to_ascii_lowercase().as_str() {
            "identity" => Ok(Compression::Identity),
            "gzip" | "x-gzip" => Ok(Compression::Gzip),
            "deflate" => Ok(Compression::Deflate),
            "zstd" => Ok(Compression::Zstd),
            other => Err(Failure::UnsupportedMediaType(format!(
                "unsupported Content-Encoding `{other}`; use gzip, deflate or zstd, or send it uncompressed (identity or no Content-Encoding)"
            ))),
        }
    }
}

/// Decompresses `body`, refusing to produce more than `limit` bytes.
pub fn decompress(
    body: bytes::Bytes,
    compression: Compression,
    limit: usize,
) -> Result<bytes::Bytes, Failure> {
    match compression {
        Compression::Identity => Ok(body),
        Compression::Gzip => {
            read_bounded(flate2::read::MultiGzDecoder::new(&body[..]), limit, "gzip")
        }
        Compression::Deflate => {
            // HTTP "deflate" is zlib-wrapped; some senders send raw deflate.
            match read_bounded(flate2::read::ZlibDecoder::new(&body[..]), limit, "deflate") {
                Err(Failure::Malformed(_)) => read_bounded(
                    flate2::read::DeflateDecoder::new(&body[..]),
                    limit,
                    "deflate",
                ),
                other => other,
            }
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| Failure::Malformed(format!("invalid zstd body: {e}")))?;
            read_bounded(decoder, limit, "zstd")
        }
    }
}

fn read_bounded(reader: impl Read, limit: usize, what: &str) -> Result<bytes::Bytes, Failure> {
    let mut out = Vec::new();
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Failure::Malformed(format!("invalid {what} body: {e}")))?;
    if read > limit {
        return Err(Failure::TooLarge(format!(
            "request body exceeds {limit} bytes after {what} decompression"
        )));
    }
    Ok(out.into())
}
