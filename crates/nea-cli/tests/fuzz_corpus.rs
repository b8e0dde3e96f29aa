//! Replays the fuzz corpus on stable Rust: every file in
//! `fuzz/corpus/<target>/` (inputs that reach new code, kept minimised)
//! and in `fuzz/regressions/<target>/` (inputs that once failed) goes
//! through the same property the fuzz target checks. So every CI run
//! re-checks what fuzzing found, without nightly or libFuzzer. FUZZING.md
//! says how the corpus is made.

#[path = "../../../fuzz/properties.rs"]
mod properties;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target`'s property on each of its corpus and regression files,
/// and names the first file that fails it.
fn replay(target: &str) {
    let check = properties::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .expect("a target listed in properties::TARGETS");
    let corpus = files_in(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty or missing: run scripts/fuzz.sh {target}"
    );
    let regressions = files_in(&fuzz_dir().join("regressions").join(target));
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{} fails the {target} property (see the panic above)",
            path.display()
        );
    }
}

#[test]
fn line_decoder() {
    replay("line_decoder");
}

#[test]
fn reverse() {
    replay("reverse");
}

#[test]
fn frame_roundtrip() {
    replay("frame_roundtrip");
}

#[test]
fn client_frames() {
    replay("client_frames");
}

#[test]
fn flags() {
    replay("flags");
}

#[test]
fn proxy_header() {
    replay("proxy_header");
}

/// Every fuzz target has a property, and every property a target (each
/// with a test above).
#[test]
fn every_fuzz_target_is_replayed() {
    let mut targets: Vec<String> = files_in(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    targets.sort();
    let mut properties: Vec<&str> = properties::TARGETS.iter().map(|(name, _)| *name).collect();
    properties.sort_unstable();
    assert_eq!(targets, properties);
}
