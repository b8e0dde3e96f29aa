//! Micro-benchmarks: reversal (with the naive segmentation as a comparison
//! row), the line decoder, and frame encoding. `scripts/bench/micro.sh` runs them
//! with the load tests; BENCHMARKS.md has the figures.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nea::codec::{Inbound, LineDecoder};
use nea::protocol::Frame;
use nea::reverse::{reverse, reverse_by_segmentation};

mod corpus;
use corpus::{corpora, text_of};

fn reversal(c: &mut Criterion) {
    let mut group = c.benchmark_group("reverse");
    for (kind, unit) in corpora() {
        for len in [32, 1024, 64 * 1024] {
            let text = text_of(unit, len);
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("nea/{kind}"), len),
                &text,
                |b, t| b.iter(|| reverse(black_box(t))),
            );
            group.bench_with_input(
                BenchmarkId::new(format!("naive/{kind}"), len),
                &text,
                |b, t| b.iter(|| reverse_by_segmentation(black_box(t))),
            );
        }
    }
    group.finish();
}

fn decoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for line_len in [32, 1000] {
        let line = text_of("abcdefghij", line_len);
        let mut input = Vec::new();
        for _ in 0..(64 * 1024 / (line_len + 1)) {
            input.extend_from_slice(line.as_bytes());
            input.push(b'\n');
        }
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(BenchmarkId::new("lines", line_len), |b| {
            b.iter(|| {
                let mut decoder = LineDecoder::new(65_536);
                let mut count = 0;
                // Feed in 4 KiB chunks, as the server reads.
                for chunk in input.chunks(4096) {
                    let mut bytes = chunk;
                    while let Some(item) = decoder.decode(&mut bytes) {
                        if let Inbound::Line(text) = item {
                            count += text.len();
                        }
                    }
                }
                black_box(count)
            })
        });
    }
    group.finish();
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, payload) in [
        ("reply_32", text_of("abcdefghij", 32)),
        ("reply_1000", text_of("abcdefghij", 1000)),
        ("reply_chat_1000", text_of(corpora()[1].1, 1000)),
    ] {
        let frame = Frame::String { payload };
        group.bench_function(name, |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                black_box(&frame).encode(&mut out);
                black_box(out.len())
            })
        });
    }
    // What the server does per line: reverse and encode in one step.
    for (name, line) in [
        ("line_to_reply_32", text_of("abcdefghij", 32)),
        ("line_to_reply_1000", text_of("abcdefghij", 1000)),
        ("line_to_reply_chat_1000", text_of(corpora()[1].1, 1000)),
    ] {
        group.bench_function(name, |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                Frame::encode_reply(black_box(&line), &mut out);
                black_box(out.len())
            })
        });
    }
    group.bench_function("date", |b| b.iter(Frame::date_now));
    group.finish();
}

criterion_group!(benches, reversal, decoder, frames);
criterion_main!(benches);
