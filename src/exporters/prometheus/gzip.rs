//! gzip for a scrape, compressed on several threads and streamed: one
//! gzip member whose deflate stream is the rendered chunks deflated
//! independently, each ended with a sync flush (so it ends on a byte
//! boundary and is not the last block), then an empty final block and
//! the trailer (the CRC-32 of all the chunks, combined in order, and
//! their length). Any gzip reader takes it as one ordinary member; pigz
//! writes the same layout.
//!
//! A chunk cannot refer back into the one before it, which costs a few
//! bytes per 256 KiB chunk, and buys compressing on as many threads as
//! the machine lends: compression is the slower half of a gzipped scrape
//! (about twice the render's CPU per byte at the fastest level).

use std::collections::VecDeque;
use std::sync::mpsc;

use bytes::Bytes;
use flate2::{Compress, CompressError, Compression, Crc, FlushCompress};

/// gzip's member header: magic, deflate, no flags, no time, no extra
/// flags, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final deflate block with no data (fixed Huffman codes, end of
/// block): what ends the stream after the flushed chunks.
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];
/// Most threads that compress one scrape.
const MOST_COMPRESSORS: usize = 3;

/// One chunk deflated: its bytes and its checksum.
struct Deflated {
    bytes: Vec<u8>,
    crc: Crc,
}

/// Why a scrape's compression stopped early.
#[derive(Debug, thiserror::Error)]
enum GzipError {
    #[error("deflate failed: {0}")]
    Deflate(#[from] CompressError),
    #[error("the scraper is gone")]
    ClientGone,
    #[error("a compressing thread stopped")]
    CompressorGone,
}

/// Deflates chunks one at a time, each on its own (no reference into
/// the chunk before).
struct Deflater(Compress);

impl Deflater {
    fn new() -> Self {
        Self(Compress::new(Compression::fast(), false))
    }

    /// `chunk` deflated and sync-flushed, with its CRC-32.
    fn deflate(&mut self, chunk: &[u8]) -> Result<Deflated, CompressError> {
        let mut crc = Crc::new();
        crc.update(chunk);
        self.0.reset();
        let mut bytes = Vec::with_capacity(chunk.len() / 4 + 64);
        let mut consumed = 0;
        loop {
            if bytes.len() == bytes.capacity() {
                bytes.reserve(bytes.capacity().max(4096));
            }
            let before = self.0.total_in();
            self.0
                .compress_vec(&chunk[consumed..], &mut bytes, FlushCompress::Sync)?;
            consumed += (self.0.total_in() - before) as usize;
            // The flush is complete once all the input is in and the
            // output did not fill up.
            if consumed == chunk.len() && bytes.len() < bytes.capacity() {
                return Ok(Deflated { bytes, crc });
            }
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

/// Compresses the chunks from `plain` into one gzip member on
/// `compressors` threads, sending the compressed bytes to `body` in
/// order as they come; ends when the rendering does (its sender
/// dropped), or early when the client is gone (dropping `plain` then
/// stops the rendering at its next chunk). An exposition of one chunk
/// (most scrapes) is compressed here, with no thread started for it.
pub(super) fn gzip_chunks(
    plain: tokio::sync::mpsc::Receiver<Bytes>,
    body: tokio::sync::mpsc::Sender<Bytes>,
    compressors: usize,
) {
    let send = |bytes: Vec<u8>| {
        body.blocking_send(Bytes::from(bytes))
            .map_err(|_| GzipError::ClientGone)
    };
    let mut chunks = Chunks::new(plain);
    let result = send(HEADER.to_vec()).and_then(|()| {
        let crc = if compressors > 1 && chunks.more_than_one() {
            deflate_on_threads(&mut chunks, compressors, &send)?
        } else {
            deflate_here(&mut chunks, &send)?
        };
        let mut tail = LAST_BLOCK.to_vec();
        tail.extend_from_slice(&crc.sum().to_le_bytes());
        tail.extend_from_slice(&crc.amount().to_le_bytes());
        send(tail)
    });
    if let Err(e @ (GzipError::Deflate(_) | GzipError::CompressorGone)) = result {
        tracing::warn!("gzipped /metrics response cut short: {e}");
    }
}

/// The rendered chunks, with the few already taken to look ahead.
struct Chunks {
    ahead: VecDeque<Bytes>,
    plain: tokio::sync::mpsc::Receiver<Bytes>,
}

impl Chunks {
    fn new(plain: tokio::sync::mpsc::Receiver<Bytes>) -> Self {
        Self {
            ahead: VecDeque::with_capacity(2),
            plain,
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
        self.ahead
            .pop_front()
            .or_else(|| self.plain.blocking_recv())
    }
}

/// Every chunk deflated on this thread; their combined CRC.
fn deflate_here(
    chunks: &mut Chunks,
    send: &impl Fn(Vec<u8>) -> Result<(), GzipError>,
) -> Result<Crc, GzipError> {
    let mut deflater = Deflater::new();
    let mut crc = Crc::new();
    while let Some(chunk) = chunks.next() {
        let d = deflater.deflate(&chunk)?;
        crc.combine(&d.crc);
        send(d.bytes)?;
    }
    Ok(crc)
}

/// A compressing thread's two ends: chunks in, deflated chunks out, one
/// at a time.
struct Lane {
    chunks: mpsc::Sender<Bytes>,
    deflated: mpsc::Receiver<Result<Deflated, CompressError>>,
}

/// Every chunk deflated on `lanes` threads, handed out in turn, their
/// output sent in the chunks' order; their combined CRC.
fn deflate_on_threads(
    chunks: &mut Chunks,
    lanes: usize,
    send: &impl Fn(Vec<u8>) -> Result<(), GzipError>,
) -> Result<Crc, GzipError> {
    std::thread::scope(|scope| {
        let mut pool: Vec<Lane> = Vec::with_capacity(lanes);
        // The lanes holding a chunk, oldest first.
        let mut busy: VecDeque<usize> = VecDeque::with_capacity(lanes);
        let mut crc = Crc::new();
        let mut collect = |lane: &Lane| -> Result<(), GzipError> {
            let d = lane
                .deflated
                .recv()
                .map_err(|_| GzipError::CompressorGone)??;
            crc.combine(&d.crc);
            send(d.bytes)
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
                pool.push(spawn_lane(scope)?);
            }
            pool[next]
                .chunks
                .send(chunk)
                .map_err(|_| GzipError::CompressorGone)?;
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

/// Starts a compressing thread in `scope`.
fn spawn_lane<'scope>(scope: &'scope std::thread::Scope<'scope, '_>) -> Result<Lane, GzipError> {
    let (chunk_tx, chunk_rx) = mpsc::channel::<Bytes>();
    let (deflated_tx, deflated_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("metrics-gzip".into())
        .spawn_scoped(scope, move || {
            let mut deflater = Deflater::new();
            while let Ok(chunk) = chunk_rx.recv() {
                if deflated_tx.send(deflater.deflate(&chunk)).is_err() {
                    return;
                }
            }
        })
        .map_err(|_| GzipError::CompressorGone)?;
    Ok(Lane {
        chunks: chunk_tx,
        deflated: deflated_rx,
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

    /// What `gzip_chunks` sends for `text` cut into `chunk`-byte pieces.
    fn gzipped(text: &[u8], chunk: usize, compressors: usize) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (plain_tx, plain_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let (body_tx, mut body_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let gz = std::thread::spawn(move || gzip_chunks(plain_rx, body_tx, compressors));
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
        gz.join().expect("gzip thread");
        out
    }

    /// The first gzip member of `gz`, decoded (a reader that stops after
    /// one member, as some clients do), and what follows it.
    fn first_member(gz: &[u8]) -> (Vec<u8>, usize) {
        let mut decoder = flate2::bufread::GzDecoder::new(gz);
        let mut text = Vec::new();
        decoder.read_to_end(&mut text).expect("a valid gzip member");
        let rest = decoder.into_inner().len();
        (text, rest)
    }

    #[test]
    fn chunks_compressed_on_threads_are_one_gzip_member_of_the_whole_text() {
        let text = exposition(3 << 20);
        for compressors in [1, 2, 3] {
            for chunk in [256 * 1024, 100_003, 7] {
                if chunk == 7 && compressors > 1 {
                    // Tiny chunks: checked once, on the simplest path
                    // and below on two lanes with a short text.
                    continue;
                }
                let gz = gzipped(&text, chunk, compressors);
                let (decoded, rest) = first_member(&gz);
                assert_eq!(rest, 0, "{compressors} threads, {chunk}-byte chunks");
                assert!(
                    decoded == text,
                    "{compressors} threads, {chunk}-byte chunks"
                );
                if chunk > 1024 {
                    assert!(gz.len() * 5 < text.len(), "compressed to {}", gz.len());
                }
            }
        }
        let short = exposition(5_000);
        let (decoded, rest) = first_member(&gzipped(&short, 7, 2));
        assert_eq!((decoded, rest), (short.clone(), 0));
        // One chunk: compressed without a thread of its own.
        let (decoded, rest) = first_member(&gzipped(&short, 1 << 20, 2));
        assert_eq!((decoded, rest), (short, 0));
    }

    #[test]
    fn an_empty_exposition_is_an_empty_gzip_member() {
        for compressors in [1, 2] {
            let gz = gzipped(&[], 1024, compressors);
            assert_eq!(first_member(&gz), (Vec::new(), 0));
        }
    }

    #[test]
    fn a_client_gone_stops_the_compression_and_the_render() {
        let (plain_tx, plain_rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        drop(body_rx);
        let gz = std::thread::spawn(move || gzip_chunks(plain_rx, body_tx, 2));
        gz.join().expect("gzip thread ends");
        // The render's next chunk finds nobody to take it.
        assert!(
            plain_tx
                .blocking_send(Bytes::from_static(b"x 1\n"))
                .is_err()
        );
    }
}
