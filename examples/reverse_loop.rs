//! Calls one reversal in a loop, for counting its instructions with
//! callgrind (`scripts/bench.sh`, part `instructions`): run it twice with
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

/// The texts of `benches/micro.rs`, repeated to `len` bytes.
fn text_of(kind: &str, len: usize) -> Option<String> {
    let unit = match kind {
        "ascii" => "The quick brown fox jumps over the lazy dog. ",
        "chat" => "ok see you at 8 at the café 👍🏽 then we go to Zürich 🇨🇭 haha, lol. ",
        "non_ascii" => "日本語のテキスト한국어Кириллицаe\u{301}́👨\u{200d}👩\u{200d}👧",
        _ => return None,
    };
    let mut text = String::with_capacity(len + unit.len());
    while text.len() + unit.len() <= len {
        text.push_str(unit);
    }
    for c in unit.chars() {
        if text.len() + c.len_utf8() > len {
            break;
        }
        text.push(c);
    }
    Some(text)
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
