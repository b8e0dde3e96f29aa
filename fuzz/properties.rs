//! The properties the fuzz targets check, one function per target.
//!
//! Each function takes the raw fuzz input and panics if a property fails.
//! They depend on `nea`, `nea-cli` and std only, so the same code runs in two places:
//! the libFuzzer targets in `fuzz/fuzz_targets/` (nightly, `cargo fuzz`)
//! and the corpus replay in `crates/nea-cli/tests/fuzz_corpus.rs` (stable, every CI run).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use nea::codec::{Inbound, LineDecoder};
use nea::duration::parse as parse_duration;
use nea::protocol::{ErrorCode, Frame};
use nea_cli::{DurationArg, count_within, duration_within, listen_address, number_within};

/// A target's check: panics if `data` breaks the property.
pub(crate) type Property = fn(data: &[u8]);

/// Every target: its name (the file in `fuzz/fuzz_targets/` and the
/// folders in `fuzz/corpus/` and `fuzz/regressions/`) and its property.
pub(crate) const TARGETS: &[(&str, Property)] = &[
    ("line_decoder", line_decoder),
    ("reverse", reverse),
    ("frame_roundtrip", frame_roundtrip),
    ("client_frames", client_frames),
    ("flags", flags),
    ("proxy_header", proxy_header),
];

/// The client's limit on one frame from the server. A copy of the private
/// `MAX_FRAME_BYTES` in `src/client/session.rs`; only lines longer than
/// this are affected, and fuzz inputs are far shorter.
const CLIENT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------
// line_decoder

/// `LineDecoder` fed the stream in arbitrary chunks:
///
/// - after every call, it holds exactly the unfinished line when that line
///   can still be accepted, and nothing otherwise (so never more than the
///   limit, plus one `\r` that may start a `\r\n`), and
///   `has_partial_line()` says whether a line is unfinished;
/// - `decode` returns `None` only with its input used up;
/// - the items, and what `finish()` returns, are those of decoding the
///   whole stream in one call, and those SPEC §2 defines.
///
/// Input: one byte for the limit (1..=64, or the default), one byte for
/// how many chunk sizes follow (0..=7; none: one chunk), the sizes, then
/// the stream.
pub(crate) fn line_decoder(data: &[u8]) {
    let mut input = Bytes(data);
    let max = match input.byte() {
        seed @ 0..=191 => usize::from(seed % 64) + 1,
        _ => nea::DEFAULT_MAX_LINE_BYTES,
    };
    let (sizes, stream) = chunk_sizes(input.rest());
    let chunked = decode_chunked(&mut LineDecoder::new(max), stream, &split(stream, sizes));
    let whole = decode_chunked(&mut LineDecoder::new(max), stream, &[stream]);
    assert_eq!(
        chunked, whole,
        "chunks {sizes:?} decode differently from one chunk (limit {max})"
    );
    assert_eq!(
        whole,
        spec_items(stream, max),
        "one chunk decodes differently from SPEC §2 (limit {max})"
    );
}

/// One decoded item, owned, so that whole transcripts can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Line(String),
    TooLong,
    InvalidUtf8,
}

impl Item {
    /// Exhaustive on purpose: a new kind of `Inbound` stops this file from
    /// compiling until the properties say what it means.
    fn of(item: Inbound<'_>) -> Self {
        match item {
            Inbound::Line(text) => Self::Line(text.to_owned()),
            Inbound::TooLong => Self::TooLong,
            Inbound::InvalidUtf8 => Self::InvalidUtf8,
        }
    }
}

/// Reads a chunking header from `data`: a count (0..=7) and that many
/// sizes. Returns the sizes and the rest.
fn chunk_sizes(data: &[u8]) -> (&[u8], &[u8]) {
    let mut input = Bytes(data);
    let count = usize::from(input.byte() % 8);
    let sizes = input.take(count);
    (sizes, input.rest())
}

/// Cuts `stream` into consecutive chunks whose sizes cycle through `sizes`
/// (a size of 0 is an empty chunk). No sizes: one chunk. Only zeros: one
/// byte at a time.
fn split<'a>(stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![stream];
    }
    let sizes = if sizes.iter().all(|&size| size == 0) {
        &[1]
    } else {
        sizes
    };
    let mut chunks = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, after) = rest.split_at(usize::from(size).min(rest.len()));
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

/// Feeds `chunks` (consecutive pieces of `stream`) to `decoder`, checking
/// its state after every call; returns the items and what `finish()` gave.
fn decode_chunked(
    decoder: &mut LineDecoder,
    stream: &[u8],
    chunks: &[&[u8]],
) -> (Vec<Item>, Option<Item>) {
    let max = decoder.max_line_bytes();
    let mut items = Vec::new();
    let mut consumed = 0;
    for chunk in chunks {
        let mut input = *chunk;
        loop {
            let before = input.len();
            let item = decoder.decode(&mut input).map(Item::of);
            consumed += before - input.len();
            let seen = &stream[..consumed];
            let held = decoder.buffered();
            assert_eq!(
                held,
                expected_held(seen, max),
                "bytes held after {consumed} bytes (limit {max})"
            );
            assert!(held <= max + 1, "held {held} bytes, limit {max}");
            assert_eq!(
                decoder.has_partial_line(),
                seen.last().is_some_and(|&byte| byte != b'\n'),
                "has_partial_line after {consumed} bytes"
            );
            match item {
                Some(item) => items.push(item),
                None => {
                    assert!(input.is_empty(), "decode gave None with input left");
                    break;
                }
            }
        }
    }
    let last = decoder.finish().map(Item::of);
    assert_eq!(decoder.buffered(), 0, "finish left bytes held");
    assert!(!decoder.has_partial_line(), "finish left a partial line");
    assert_eq!(
        decoder.finish().map(Item::of),
        None,
        "finish gave a line twice"
    );
    (items, last)
}

/// What the decoder must hold after `seen`: the unfinished line (the bytes
/// after the last `\n`) while it can still become an acceptable line (at
/// most the limit, or one more if that is a `\r`), and nothing once it is
/// too long (its bytes are counted, not stored).
fn expected_held(seen: &[u8], max: usize) -> usize {
    let start = seen
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    let tail = &seen[start..];
    if without_cr(tail).len() <= max {
        tail.len()
    } else {
        0
    }
}

/// SPEC §2 on a whole stream: every `\n` ends a line, one `\r` before it is
/// dropped, a line longer than the limit is `TooLong`, one that is not
/// UTF-8 is `InvalidUtf8`. An unterminated last line is reported by
/// `decode` if too long, else by `finish()`.
fn spec_items(stream: &[u8], max: usize) -> (Vec<Item>, Option<Item>) {
    let mut lines: Vec<&[u8]> = stream.split(|&byte| byte == b'\n').collect();
    let tail = lines.pop().unwrap_or_default();
    let mut items: Vec<Item> = lines.into_iter().map(|line| classify(line, max)).collect();
    let last = match classify(tail, max) {
        _ if tail.is_empty() => None,
        Item::TooLong => {
            items.push(Item::TooLong);
            None
        }
        item => Some(item),
    };
    (items, last)
}

fn classify(line: &[u8], max: usize) -> Item {
    let line = without_cr(line);
    if line.len() > max {
        return Item::TooLong;
    }
    match std::str::from_utf8(line) {
        Ok(text) => Item::Line(text.to_owned()),
        Err(_) => Item::InvalidUtf8,
    }
}

fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

// ---------------------------------------------------------------------------
// reverse

/// `reverse` and `reverse_into` (into an empty buffer and after other
/// bytes) give what segmenting the whole text gives, for any text (the
/// input as UTF-8, invalid sequences replaced).
pub(crate) fn reverse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let expected = nea::reverse::reverse_by_segmentation(&text);
    assert_eq!(nea::reverse::reverse(&text), expected, "reverse({text:?})");
    for prefix in ["", "\u{e9}\r"] {
        let mut out = prefix.as_bytes().to_vec();
        nea::reverse::reverse_into(&text, &mut out);
        assert_eq!(
            out,
            format!("{prefix}{expected}").into_bytes(),
            "reverse_into({text:?}) after {prefix:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// frame_roundtrip

const CODES: [ErrorCode; 5] = [
    ErrorCode::ServerFull,
    ErrorCode::LineTooLong,
    ErrorCode::InvalidUtf8,
    ErrorCode::ShuttingDown,
    ErrorCode::Unknown,
];

/// Frames survive encoding:
///
/// - `Frame::parse` of any text does not panic, and a frame it returns
///   encodes to one line that parses back to it;
/// - a frame of each kind, with any payload and code, encodes to one line
///   with no control character and parses back to itself, and so do
///   `Frame::error` of each code and `Frame::line_too_long` with any limit;
/// - `encode_reply(line)` writes what encoding the `string` frame of the
///   reversed line writes.
///
/// Input: the whole input is also parsed as text. As a frame: one byte
/// for the kind and code, eight for the limit of `Frame::line_too_long`,
/// then the payload.
pub(crate) fn frame_roundtrip(data: &[u8]) {
    if let Ok(frame) = Frame::parse(&String::from_utf8_lossy(data)) {
        assert_round_trip(&frame);
    }
    let mut input = Bytes(data);
    let kind = input.byte();
    let limit = u64::from_le_bytes(input.array());
    let payload = String::from_utf8_lossy(input.rest()).into_owned();
    let code = CODES[usize::from(kind / 4) % CODES.len()];
    let frame = match kind % 4 {
        0 => Frame::Date {
            payload: payload.clone(),
        },
        1 => Frame::String {
            payload: payload.clone(),
        },
        2 => Frame::Error {
            code,
            payload: payload.clone(),
        },
        _ => Frame::Unknown,
    };
    assert_round_trip(&frame);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    assert_round_trip(&Frame::error(code));
    assert_round_trip(&Frame::line_too_long(limit));

    let mut direct = b"before".to_vec();
    Frame::encode_reply(&payload, &mut direct);
    let mut framed = b"before".to_vec();
    Frame::String {
        payload: nea::reverse::reverse(&payload),
    }
    .encode(&mut framed);
    assert_eq!(direct, framed, "encode_reply({payload:?})");
}

/// `frame` encodes to one JSON line (no control character before its
/// `\n`) that parses back to `frame`.
fn assert_round_trip(frame: &Frame) {
    let mut out = b"x".to_vec();
    frame.encode(&mut out);
    let line = String::from_utf8(out.split_off(1)).expect("an encoded frame is UTF-8");
    let body = line
        .strip_suffix('\n')
        .expect("an encoded frame ends with its newline");
    assert!(
        !body.bytes().any(|byte| byte < 0x20),
        "{frame:?} encodes with a control character: {body:?}"
    );
    let parsed = Frame::parse(body).expect("an encoded frame parses");
    assert_eq!(&parsed, frame, "{body}");
}

// ---------------------------------------------------------------------------
// client_frames

/// What the client does with the server's bytes, as far as public items
/// reach: the session's `FrameReader` (a `LineDecoder` with the client's
/// frame limit; over-long and non-UTF-8 lines skipped; an unterminated
/// last line never shown) and `Frame::parse` of each line. The mapping of
/// frames to events (`Link::show`) and their display (`display::render`)
/// are private and not reached.
///
/// - `Frame::parse` of any line does not panic, and a frame it returns
///   encodes to one line that parses back to it;
/// - with `--json`, each frame is shown as received on one line: the
///   output is exactly the stream's complete UTF-8 lines (without their
///   `\r\n` or `\n`), one per line.
///
/// Input: a chunking header as for `line_decoder`, then the server's
/// bytes.
pub(crate) fn client_frames(data: &[u8]) {
    let (sizes, stream) = chunk_sizes(data);
    let mut decoder = LineDecoder::new(CLIENT_MAX_FRAME_BYTES);
    let (items, _) = decode_chunked(&mut decoder, stream, &split(stream, sizes));
    let mut shown = String::new();
    for item in items {
        let Item::Line(line) = item else { continue };
        if let Ok(frame) = Frame::parse(&line) {
            assert_round_trip(&frame);
        }
        // `--json`: `Event::Frame(line)`, printed with one newline.
        let printed = format!("{line}\n");
        assert_eq!(
            printed.matches('\n').count(),
            1,
            "frame shown on more than one line: {printed:?}"
        );
        shown.push_str(&printed);
    }
    let mut expected = String::new();
    let mut lines: Vec<&[u8]> = stream.split(|&byte| byte == b'\n').collect();
    lines.pop();
    for line in lines {
        if let Ok(text) = std::str::from_utf8(without_cr(line)) {
            expected.push_str(text);
            expected.push('\n');
        }
    }
    assert_eq!(shown, expected, "--json output");
}

// ---------------------------------------------------------------------------
// flags

/// The flag validators of `nea_cli` and the duration parser of
/// `nea::duration`, on any text:
///
/// - none panics; every refusal is a sentence;
/// - `parse_duration` accepts only durations from 1 ns to 10^9 s, and what
///   it accepts, shown by `DurationArg`, parses back to exactly the same
///   duration;
/// - `duration_within(range)` accepts exactly what `parse_duration`
///   accepts inside `range`; `count_within` and `number_within` exactly
///   the numbers `str::parse` reads inside their range;
/// - `listen_address` accepts exactly the IP addresses `str::parse` reads.
pub(crate) fn flags(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    durations(&text);
    counts(&text);
    numbers(&text);
    let address = listen_address(&text);
    assert_eq!(address.as_ref().ok(), text.parse::<IpAddr>().ok().as_ref());
    match address {
        Ok(ip) => assert_eq!(ip.to_string().parse::<IpAddr>(), Ok(ip)),
        Err(sentence) => assert!(!sentence.is_empty()),
    }
}

fn durations(text: &str) {
    let parsed = parse_duration(text);
    match &parsed {
        Ok(duration) => {
            assert!(
                !duration.is_zero() && *duration <= Duration::from_secs(1_000_000_000),
                "{text:?} gave {duration:?}"
            );
            let shown = DurationArg(*duration).to_string();
            let back = parse_duration(&shown).expect("a shown duration parses");
            assert_eq!(shown.parse::<DurationArg>(), Ok(DurationArg(back)));
            assert_eq!(
                back, *duration,
                "{text:?} gave {duration:?}, shown as {shown:?}"
            );
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
    for range in [
        nea::CONNECT_TIMEOUT_RANGE,
        nea::DATE_PERIOD_RANGE,
        nea::HANDSHAKE_TIMEOUT_RANGE,
        nea::WRITE_TIMEOUT_RANGE,
        nea::SHUTDOWN_GRACE_RANGE,
        Duration::from_nanos(1)..=Duration::MAX,
    ] {
        let expected = parsed
            .as_ref()
            .ok()
            .filter(|&&duration| range.contains(&duration))
            .map(|duration| DurationArg(*duration));
        let within = duration_within(range.clone())(text);
        assert_eq!(
            within.as_ref().ok(),
            expected.as_ref(),
            "{text:?} in {range:?}"
        );
        if let Err(sentence) = within {
            assert!(!sentence.is_empty());
        }
    }
}

fn counts(text: &str) {
    let ranges: [RangeInclusive<usize>; 5] = [
        nea::MAX_CLIENTS_RANGE,
        nea::MAX_HANDSHAKES_RANGE,
        nea::MAX_LINE_BYTES_RANGE,
        nea::QUEUE_BYTES_RANGE,
        0..=usize::MAX,
    ];
    let parsed = text.parse::<usize>().ok();
    for range in ranges {
        let expected = parsed.filter(|n| range.contains(n));
        let within = count_within(range.clone())(text);
        assert_eq!(
            within.as_ref().ok(),
            expected.as_ref(),
            "{text:?} in {range:?}"
        );
        if let Err(sentence) = within {
            assert!(!sentence.is_empty());
        }
    }
}

fn numbers(text: &str) {
    // The ranges loadcli gives its rate and memory-growth flags, and the
    // widest finite one.
    let ranges: [RangeInclusive<f64>; 3] = [0.001..=100_000.0, 0.0..=10_000.0, f64::MIN..=f64::MAX];
    let parsed = text.parse::<f64>().ok();
    for range in ranges {
        let expected = parsed.filter(|x| range.contains(x));
        let within = number_within(range.clone())(text);
        // Compared as bits: -0.0 and 0.0 are both in range and distinct.
        assert_eq!(
            within.as_ref().ok().map(|x| x.to_bits()),
            expected.map(f64::to_bits),
            "{text:?} in {range:?}"
        );
        match within {
            Ok(x) => assert!(x.is_finite(), "{text:?} gave {x}"),
            Err(sentence) => assert!(!sentence.is_empty()),
        }
    }
}

// ---------------------------------------------------------------------------
// proxy_header

/// The server's PROXY protocol reader (SPEC §12), on the bytes a trusted
/// balancer's connection starts with:
///
/// - on any bytes it returns a result, never takes more than it was given
///   nor more than 4096 bytes (the header bound), and refuses bytes that
///   begin with neither signature having taken at most 15;
/// - it never takes a byte after the header: the header it accepted,
///   followed by the start of a TLS handshake, gives the same result and
///   the same length;
/// - a header written here from the input (v1 or v2, IPv4 or IPv6, PROXY
///   or LOCAL, with TLVs), independently of the parser, is read back as the
///   address it names, taking exactly its bytes.
///
/// Input: one byte of options, 16 of address, 2 of port, one of TLV
/// length, then the bytes the reader is fed as they are.
pub(crate) fn proxy_header(data: &[u8]) {
    let mut input = Bytes(data);
    let options = input.byte();
    let address: [u8; 16] = input.array();
    let port = u16::from_be_bytes(input.array());
    let tlv_len = usize::from(input.byte());
    let raw = input.rest();
    check_any_proxy_bytes(raw);
    check_proxy_round_trip(options, address, port, &raw[..tlv_len.min(raw.len())]);
}

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fn check_any_proxy_bytes(bytes: &[u8]) {
    let (result, taken) = nea::server::read_proxy_header(bytes);
    assert!(
        taken <= bytes.len() && taken <= 4096,
        "took {taken} of {}",
        bytes.len()
    );
    let signed = bytes.starts_with(b"PROXY ") || bytes.starts_with(V2_SIGNATURE);
    if !signed {
        assert!(result.is_err(), "accepted {bytes:?}");
        assert!(taken <= 15, "took {taken} bytes of no header");
    }
    if result.is_ok() {
        let mut followed = bytes[..taken].to_vec();
        followed.extend_from_slice(&[0x16, 0x03, 0x01, 0x02, 0x00]);
        assert_eq!(
            nea::server::read_proxy_header(&followed),
            (result, taken),
            "the bytes after the header changed what was read"
        );
    }
}

fn check_proxy_round_trip(options: u8, address: [u8; 16], port: u16, tlv_value: &[u8]) {
    let v6 = options & 1 != 0;
    let local = options & 2 != 0;
    let text = options & 4 != 0;
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::from(address))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            address[0], address[1], address[2], address[3],
        ))
    };
    let client = SocketAddr::new(ip, port);
    let (header, named) = if text {
        let family = if v6 { "TCP6" } else { "TCP4" };
        let server = if v6 { "::1" } else { "127.0.0.1" };
        let line = if local {
            "PROXY UNKNOWN\r\n".to_owned()
        } else {
            format!("PROXY {family} {ip} {server} {port} 3443\r\n")
        };
        (line.into_bytes(), (!local).then_some(client))
    } else {
        let mut body = Vec::new();
        match ip {
            IpAddr::V4(v4) => {
                body.extend_from_slice(&v4.octets());
                body.extend_from_slice(&[127, 0, 0, 1]);
            }
            IpAddr::V6(v6) => {
                body.extend_from_slice(&v6.octets());
                body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
            }
        }
        body.extend_from_slice(&port.to_be_bytes());
        body.extend_from_slice(&3443u16.to_be_bytes());
        // A NOOP TLV carrying the input's bytes.
        body.push(0x04);
        body.extend_from_slice(&u16::try_from(tlv_value.len()).unwrap_or(0).to_be_bytes());
        body.extend_from_slice(tlv_value);
        let mut header = V2_SIGNATURE.to_vec();
        header.push(if local { 0x20 } else { 0x21 });
        header.push(if v6 { 0x21 } else { 0x11 });
        header.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
        header.extend_from_slice(&body);
        (header, (!local).then_some(client))
    };
    let mut stream = header.clone();
    stream.extend_from_slice(&[0x16, 0x03, 0x01]);
    let (result, taken) = nea::server::read_proxy_header(&stream);
    assert_eq!(result, Ok(named), "{header:?}");
    assert_eq!(taken, header.len());
}

// ---------------------------------------------------------------------------

/// Reads fuzz input from the front; past its end every byte is 0.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let bytes = self.take(N);
        out[..bytes.len()].copy_from_slice(bytes);
        out
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}
