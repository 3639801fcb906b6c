//! A scrape's response compressed, on several threads and streamed:
//! which coding to answer with (`Accept-Encoding`: gzip, or zstd, which
//! client_golang offers and Prometheus asks for behind its `zstd-scrape`
//! flag), and the rendered chunks coded independently, one thread per
//! core, their output sent in order.
//!
//! - **gzip**: one member whose deflate stream is the chunks deflated on
//!   their own, each ended with a sync flush (so it ends on a byte
//!   boundary and is not the last block), then an empty final block and
//!   the trailer (the CRC-32 of all the chunks, combined in order, and
//!   their length). Any gzip reader takes it as one ordinary member;
//!   pigz writes the same layout.
//! - **zstd**: one frame per chunk, with its checksum; a zstd stream is
//!   any number of frames one after another.
//!
//! A chunk cannot refer back into the one before it, which costs a few
//! bytes per 256 KiB chunk, and buys compressing on as many threads as
//! the machine lends: compression is the slower half of a compressed
//! scrape (about twice the render's CPU per byte at the fastest levels).

use std::collections::VecDeque;
use std::sync::mpsc;

use bytes::Bytes;
use flate2::{Compress, CompressError, Compression, Crc, FlushCompress};
use zstd::zstd_safe::CParameter;

/// gzip's member header: magic, deflate, no flags, no time, no extra
/// flags, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final deflate block with no data (fixed Huffman codes, end of
/// block): what ends the stream after the flushed chunks.
const GZIP_LAST_BLOCK: [u8; 2] = [0x03, 0x00];
/// Most threads that compress one scrape.
const MOST_COMPRESSORS: usize = 3;
/// zstd's level: its fastest positive one (about as fast as deflate's
/// fastest here, and half its output).
const ZSTD_LEVEL: i32 = 1;

/// A content coding a scrape can be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coding {
    Gzip,
    Zstd,
}

impl Coding {
    /// The coding to answer an `Accept-Encoding` with: the one the
    /// scraper weighs highest, zstd on a tie (smaller, and cheaper to
    /// decode); `*` stands for gzip unless gzip is listed itself; none
    /// (identity) when it accepts neither.
    pub(super) fn negotiate(accept_encoding: Option<&str>) -> Option<Self> {
        let (mut gzip, mut zstd, mut any) = (None, None, None);
        for (name, weight) in super::weighted::entries(accept_encoding?) {
            let slot = if name.eq_ignore_ascii_case("gzip") {
                &mut gzip
            } else if name.eq_ignore_ascii_case("zstd") {
                &mut zstd
            } else if name == "*" {
                &mut any
            } else {
                continue;
            };
            // A weight that does not parse counts as a refusal.
            *slot = Some(weight.unwrap_or(0.0));
        }
        let gzip = gzip.or(any).unwrap_or(0.0);
        let zstd = zstd.unwrap_or(0.0);
        if zstd > 0.0 && zstd >= gzip {
            Some(Self::Zstd)
        } else if gzip > 0.0 {
            Some(Self::Gzip)
        } else {
            None
        }
    }

    /// Its `Content-Encoding` name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

/// One chunk coded: its bytes and (for gzip) its checksum.
struct Coded {
    bytes: Vec<u8>,
    crc: Crc,
}

/// Why a scrape's compression stopped early.
#[derive(Debug, thiserror::Error)]
enum CompressionError {
    #[error("deflate failed: {0}")]
    Deflate(#[from] CompressError),
    #[error("zstd failed: {0}")]
    Zstd(#[from] std::io::Error),
    #[error("the scraper is gone")]
    ClientGone,
    #[error("a compressing thread stopped")]
    CompressorGone,
}

/// Codes chunks one at a time, each on its own (no reference into the
/// chunk before), into a scratch buffer it keeps: each chunk's output is
/// then copied out at its own size (a tenth to a twentieth of the
/// chunk), rather than sent in a buffer sized for the worst case.
struct Coder {
    engine: Engine,
    scratch: Vec<u8>,
}

enum Engine {
    Gzip(Compress),
    Zstd(zstd::bulk::Compressor<'static>),
}

impl Coder {
    fn new(coding: Coding) -> Result<Self, CompressionError> {
        let engine = match coding {
            Coding::Gzip => Engine::Gzip(Compress::new(Compression::fast(), false)),
            Coding::Zstd => {
                let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
                zstd.set_parameter(CParameter::ChecksumFlag(true))?;
                Engine::Zstd(zstd)
            }
        };
        Ok(Self {
            engine,
            scratch: Vec::new(),
        })
    }

    fn code(&mut self, chunk: &[u8]) -> Result<Coded, CompressionError> {
        self.scratch.clear();
        let mut crc = Crc::new();
        match &mut self.engine {
            Engine::Gzip(deflate) => {
                crc.update(chunk);
                deflate_into(deflate, chunk, &mut self.scratch)?;
            }
            Engine::Zstd(zstd) => {
                self.scratch
                    .reserve(zstd::zstd_safe::compress_bound(chunk.len()));
                zstd.compress_to_buffer(chunk, &mut self.scratch)?;
            }
        }
        Ok(Coded {
            bytes: self.scratch.as_slice().to_vec(),
            crc,
        })
    }
}

/// `chunk` deflated by `deflate` and sync-flushed, appended to `out`.
fn deflate_into(
    deflate: &mut Compress,
    chunk: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CompressError> {
    deflate.reset();
    out.reserve(chunk.len() / 4 + 64);
    let mut consumed = 0;
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
        let before = deflate.total_in();
        deflate.compress_vec(&chunk[consumed..], out, FlushCompress::Sync)?;
        consumed += (deflate.total_in() - before) as usize;
        // The flush is complete once all the input is in and the
        // output did not fill up.
        if consumed == chunk.len() && out.len() < out.capacity() {
            return Ok(());
        }
    }
}

/// How many threads compress a scrape: one per core, at most
/// [`MOST_COMPRESSORS`] (the render runs on one more).
pub(super) fn compressors() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MOST_COMPRESSORS)
}

/// Compresses the chunks from `plain` with `coding` on `compressors`
/// threads, sending the compressed bytes to `body` in order as they
/// come; ends when the rendering does (its sender dropped), or early
/// when the client is gone (dropping `plain` then stops the rendering at
/// its next chunk). An exposition of one chunk (most scrapes) is
/// compressed here, with no thread started for it.
pub(super) fn compress_chunks(
    plain: tokio::sync::mpsc::Receiver<Bytes>,
    body: tokio::sync::mpsc::Sender<Bytes>,
    coding: Coding,
    compressors: usize,
) {
    let send = |bytes: Vec<u8>| {
        body.blocking_send(Bytes::from(bytes))
            .map_err(|_| CompressionError::ClientGone)
    };
    let mut chunks = Chunks::new(plain);
    let result = (|| {
        if coding == Coding::Gzip {
            send(GZIP_HEADER.to_vec())?;
        }
        let crc = if compressors > 1 && chunks.more_than_one() {
            code_on_threads(&mut chunks, coding, compressors, &send)?
        } else {
            code_here(&mut chunks, coding, &send)?
        };
        if coding == Coding::Zstd && chunks.taken == 0 {
            // Nothing rendered: one empty frame, not an empty body (which
            // zstd readers take for a cut-off stream).
            send(Coder::new(coding)?.code(&[])?.bytes)?;
        }
        if coding == Coding::Gzip {
            let mut tail = GZIP_LAST_BLOCK.to_vec();
            tail.extend_from_slice(&crc.sum().to_le_bytes());
            tail.extend_from_slice(&crc.amount().to_le_bytes());
            send(tail)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) | Err(CompressionError::ClientGone) => {}
        Err(e) => tracing::warn!("{} /metrics response cut short: {e}", coding.name()),
    }
}

/// The rendered chunks, with the few already taken to look ahead.
struct Chunks {
    ahead: VecDeque<Bytes>,
    plain: tokio::sync::mpsc::Receiver<Bytes>,
    /// How many chunks have been taken so far.
    taken: usize,
}

impl Chunks {
    fn new(plain: tokio::sync::mpsc::Receiver<Bytes>) -> Self {
        Self {
            ahead: VecDeque::with_capacity(2),
            plain,
            taken: 0,
        }
    }

    /// Whether the exposition has a second chunk (waiting for the render
    /// to make it, or to end).
    fn more_than_one(&mut self) -> bool {
        while self.ahead.len() < 2 {
            match self.plain.blocking_recv() {
                Some(chunk) => self.ahead.push_back(chunk),
                None => return false,
            }
        }
        true
    }

    fn next(&mut self) -> Option<Bytes> {
        let chunk = self
            .ahead
            .pop_front()
            .or_else(|| self.plain.blocking_recv())?;
        self.taken += 1;
        Some(chunk)
    }
}

/// Every chunk coded on this thread; their combined CRC (gzip).
fn code_here(
    chunks: &mut Chunks,
    coding: Coding,
    send: &impl Fn(Vec<u8>) -> Result<(), CompressionError>,
) -> Result<Crc, CompressionError> {
    let mut coder = Coder::new(coding)?;
    let mut crc = Crc::new();
    while let Some(chunk) = chunks.next() {
        let coded = coder.code(&chunk)?;
        crc.combine(&coded.crc);
        send(coded.bytes)?;
    }
    Ok(crc)
}

/// A compressing thread's two ends: chunks in, coded chunks out, one at
/// a time.
struct Lane {
    chunks: mpsc::Sender<Bytes>,
    coded: mpsc::Receiver<Result<Coded, CompressionError>>,
}

/// Every chunk coded on `lanes` threads, handed out in turn, their
/// output sent in the chunks' order; their combined CRC (gzip).
fn code_on_threads(
    chunks: &mut Chunks,
    coding: Coding,
    lanes: usize,
    send: &impl Fn(Vec<u8>) -> Result<(), CompressionError>,
) -> Result<Crc, CompressionError> {
    std::thread::scope(|scope| {
        let mut pool: Vec<Lane> = Vec::with_capacity(lanes);
        // The lanes holding a chunk, oldest first.
        let mut busy: VecDeque<usize> = VecDeque::with_capacity(lanes);
        let mut crc = Crc::new();
        let mut collect = |lane: &Lane| -> Result<(), CompressionError> {
            let coded = lane
                .coded
                .recv()
                .map_err(|_| CompressionError::CompressorGone)??;
            crc.combine(&coded.crc);
            send(coded.bytes)
        };
        let mut next = 0;
        while let Some(chunk) = chunks.next() {
            // Lanes are used in turn, so the next one is the oldest
            // busy one once all are busy: its chunk goes out first.
            if busy.len() == lanes
                && let Some(oldest) = busy.pop_front()
            {
                collect(&pool[oldest])?;
            }
            if pool.len() == next {
                pool.push(spawn_lane(scope, coding)?);
            }
            pool[next]
                .chunks
                .send(chunk)
                .map_err(|_| CompressionError::CompressorGone)?;
            busy.push_back(next);
            next = (next + 1) % lanes;
        }
        while let Some(oldest) = busy.pop_front() {
            collect(&pool[oldest])?;
        }
        // Dropping the pool ends the lanes; the scope joins them.
        Ok(crc)
    })
}

/// Starts a thread in `scope` that codes chunks with `coding`.
fn spawn_lane<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    coding: Coding,
) -> Result<Lane, CompressionError> {
    let mut coder = Coder::new(coding)?;
    let (chunk_tx, chunk_rx) = mpsc::channel::<Bytes>();
    let (coded_tx, coded_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("metrics-compress".into())
        .spawn_scoped(scope, move || {
            while let Ok(chunk) = chunk_rx.recv() {
                if coded_tx.send(coder.code(&chunk)).is_err() {
                    return;
                }
            }
        })
        .map_err(|_| CompressionError::CompressorGone)?;
    Ok(Lane {
        chunks: chunk_tx,
        coded: coded_rx,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// An exposition-like text of about `bytes` bytes.
    fn exposition(bytes: usize) -> Vec<u8> {
        let mut text = String::new();
        let mut i = 0u64;
        while text.len() < bytes {
            text.push_str(&format!(
                "http_server_duration_seconds_bucket{{job=\"svc-{}\",route=\"/r/{}\",le=\"0.{}\"}} {}\n",
                i % 17,
                i % 101,
                i % 9,
                i.wrapping_mul(2_654_435_761) % 100_000
            ));
            i += 1;
        }
        text.into_bytes()
    }

    /// What `compress_chunks` sends for `text` cut into `chunk`-byte
    /// pieces.
    fn compressed(text: &[u8], chunk: usize, coding: Coding, compressors: usize) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (plain_tx, plain_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let (body_tx, mut body_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let coder =
            std::thread::spawn(move || compress_chunks(plain_rx, body_tx, coding, compressors));
        let pieces: Vec<Bytes> = text.chunks(chunk).map(Bytes::copy_from_slice).collect();
        let feeder = std::thread::spawn(move || {
            for piece in pieces {
                if plain_tx.blocking_send(piece).is_err() {
                    return;
                }
            }
        });
        let mut out = Vec::new();
        runtime.block_on(async {
            while let Some(b) = body_rx.recv().await {
                out.extend_from_slice(&b);
            }
        });
        feeder.join().expect("feeder");
        coder.join().expect("compressing thread");
        out
    }

    /// `coded` decoded, and how many bytes were left after it: for gzip
    /// the first member only (a reader that stops after one member, as
    /// some clients do); for zstd every frame.
    fn decoded(coded: &[u8], coding: Coding) -> (Vec<u8>, usize) {
        let mut text = Vec::new();
        match coding {
            Coding::Gzip => {
                let mut decoder = flate2::bufread::GzDecoder::new(coded);
                decoder.read_to_end(&mut text).expect("a valid gzip member");
                (text, decoder.into_inner().len())
            }
            Coding::Zstd => {
                zstd::stream::read::Decoder::new(coded)
                    .expect("zstd decoder")
                    .read_to_end(&mut text)
                    .expect("valid zstd frames");
                (text, 0)
            }
        }
    }

    #[test]
    fn chunks_compressed_on_threads_decode_to_the_whole_text() {
        let text = exposition(3 << 20);
        let short = exposition(5_000);
        for coding in [Coding::Gzip, Coding::Zstd] {
            for compressors in [1, 2, 3] {
                for chunk in [256 * 1024, 100_003] {
                    let what = format!("{coding:?}, {compressors} threads, {chunk}-byte chunks");
                    let coded = compressed(&text, chunk, coding, compressors);
                    let (back, rest) = decoded(&coded, coding);
                    assert_eq!(rest, 0, "{what}");
                    assert!(back == text, "{what}");
                    assert!(coded.len() * 5 < text.len(), "{what}: {}", coded.len());
                }
                // Tiny chunks, and one chunk (coded without a thread of
                // its own).
                for chunk in [7, 1 << 20] {
                    let coded = compressed(&short, chunk, coding, compressors);
                    assert_eq!(decoded(&coded, coding), (short.clone(), 0), "{coding:?}");
                }
            }
        }
    }

    #[test]
    fn an_empty_exposition_decodes_to_nothing() {
        for coding in [Coding::Gzip, Coding::Zstd] {
            for compressors in [1, 2] {
                let coded = compressed(&[], 1024, coding, compressors);
                assert_eq!(decoded(&coded, coding), (Vec::new(), 0), "{coding:?}");
            }
        }
    }

    #[test]
    fn a_client_gone_stops_the_compression_and_the_render() {
        let (plain_tx, plain_rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        drop(body_rx);
        let coder = std::thread::spawn(move || compress_chunks(plain_rx, body_tx, Coding::Gzip, 2));
        coder.join().expect("compressing thread ends");
        // The render's next chunk finds nobody to take it.
        assert!(
            plain_tx
                .blocking_send(Bytes::from_static(b"x 1\n"))
                .is_err()
        );
    }

    #[test]
    fn the_coding_is_the_one_the_scraper_weighs_highest() {
        let cases = [
            (None, None),
            // Prometheus, and Prometheus with `zstd-scrape`.
            (Some("gzip"), Some(Coding::Gzip)),
            (Some("zstd, gzip"), Some(Coding::Zstd)),
            // curl --compressed: no weights, zstd on the tie.
            (Some("deflate, gzip, br, zstd"), Some(Coding::Zstd)),
            (Some("zstd;q=0.5, gzip"), Some(Coding::Gzip)),
            (Some("GZIP;q=0.9, ZSTD;q=0.8"), Some(Coding::Gzip)),
            (Some("zstd;q=0, gzip;q=0.1"), Some(Coding::Gzip)),
            (Some("gzip;q=0"), None),
            (Some("gzip;q=0.0, zstd;q=0"), None),
            (Some("*"), Some(Coding::Gzip)),
            (Some("gzip;q=0, *"), None),
            (Some("zstd;q=0.2, *;q=0.5"), Some(Coding::Gzip)),
            (Some("br, deflate"), None),
            (Some("identity"), None),
            (Some("gzip;q=bogus"), None),
            (Some(""), None),
        ];
        for (header, coding) in cases {
            assert_eq!(Coding::negotiate(header), coding, "{header:?}");
        }
    }
}
