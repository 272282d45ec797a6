//! Replays every kept input through its target, without a fuzzer: the
//! minimized corpora (`fuzz/corpus/<target>/`) and every input that ever
//! broke a property (`fuzz/regressions/<target>/`). A fixed bug stays fixed.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn test_every_kept_input_holds_its_targets_properties() {
    let mut replayed = 0;
    for (name, target) in resizer_fuzz::TARGETS {
        for kind in ["corpus", "regressions"] {
            for path in inputs(&fuzz_dir().join(kind).join(name)) {
                // A fuzzer running in this tree replaces inputs as it shrinks them.
                let data = match std::fs::read(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    read => read.expect("a readable input"),
                };
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} breaks a property", path.display());
                replayed += 1;
            }
        }
    }
    eprintln!("replayed {replayed} inputs");
}

#[test]
fn test_every_target_has_a_fuzzer_binary_and_a_corpus() {
    for (name, _) in resizer_fuzz::TARGETS {
        let binary = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(binary.is_file(), "{} is missing", binary.display());
        assert!(
            !inputs(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "{name} has no corpus"
        );
    }
    let binaries = std::fs::read_dir(fuzz_dir().join("fuzz_targets")).expect("fuzz/fuzz_targets");
    for entry in binaries {
        let file = entry.expect("entry").file_name();
        let name = file.to_string_lossy();
        let name = name.trim_end_matches(".rs");
        assert!(
            resizer_fuzz::target(name).is_some(),
            "fuzz_targets/{name}.rs is not in TARGETS"
        );
    }
}
