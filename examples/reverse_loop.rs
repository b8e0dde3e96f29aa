//! Calls one reversal in a loop, for counting its instructions with
//! callgrind (`scripts/bench/instructions.sh`): run it twice with
//! different loop counts and divide the difference, so that start-up cancels
//! out. Instruction counts repeat exactly, where timings on a shared machine
//! do not.
//!
//! ```text
//! reverse_loop nea|naive ascii|chat|non_ascii BYTES COUNT
//! ```

use std::hint::black_box;
use std::process::ExitCode;

use nea::reverse::{reverse, reverse_by_segmentation};

#[path = "../benches/corpus/mod.rs"]
mod corpus;

/// The texts of `benches/micro.rs`, repeated to `len` bytes.
fn text_of(kind: &str, len: usize) -> Option<String> {
    let (_, unit) = corpus::corpora()
        .into_iter()
        .find(|(name, _)| *name == kind)?;
    Some(corpus::text_of(unit, len))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [which, kind, len, count] = args.as_slice() else {
        eprintln!("usage: reverse_loop nea|naive ascii|chat|non_ascii BYTES COUNT");
        return ExitCode::from(2);
    };
    let reversal: fn(&str) -> String = match which.as_str() {
        "nea" => reverse,
        "naive" => reverse_by_segmentation,
        _ => return ExitCode::from(2),
    };
    let (Some(text), Ok(count)) = (
        len.parse().ok().and_then(|len| text_of(kind, len)),
        count.parse::<usize>(),
    ) else {
        eprintln!("reverse_loop: bad text kind, length or count");
        return ExitCode::from(2);
    };
    let mut bytes = 0;
    for _ in 0..count {
        bytes += reversal(black_box(&text)).len();
    }
    println!("{bytes}");
    ExitCode::SUCCESS
}
