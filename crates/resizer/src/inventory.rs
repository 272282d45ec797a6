//! Every metric of every crate, in one list: described to the recorder at
//! start and listed in `docs/metrics.md` (checked by `tests/metrics_inventory.rs`).

use resizer_core::metric::MetricDef;

/// Each crate's inventory, by crate.
pub fn by_crate() -> [(&'static str, &'static [MetricDef]); 6] {
    [
        ("resizer-api", resizer_api::inventory::METRICS),
        ("resizer-identity", resizer_identity::inventory::METRICS),
        ("resizer-jobs", resizer_jobs::inventory::METRICS),
        ("resizer-queue", resizer_queue::inventory::METRICS),
        ("resizer-usage", resizer_usage::inventory::METRICS),
        ("resizer-worker", resizer_worker::inventory::METRICS),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    /// The table `docs/metrics.md` holds below its heading.
    pub fn markdown() -> String {
        let mut out =
            String::from("| metric | kind | labels | meaning | recorded in |\n|---|---|---|---|---|\n");
        for (krate, defs) in by_crate() {
            for d in defs {
                out.push_str(&format!(
                    "| `{}` | {} | {} | {} | `{krate}` |\n",
                    d.name,
                    d.kind.as_str(),
                    d.labels.join(", "),
                    d.help
                ));
            }
        }
        out
    }

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Names recorded by `counter!`/`gauge!`/`histogram!` with a literal name in `src`.
    fn recorded_in(src: &Path) -> BTreeSet<String> {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let mut names = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for macro_call in ["counter!(", "gauge!(", "histogram!("] {
                for (at, _) in text.match_indices(macro_call) {
                    let rest = text[at + macro_call.len()..].trim_start();
                    if let Some(lit) = rest.strip_prefix("\"resizer_")
                        && let Some(end) = lit.find('"')
                    {
                        names.insert(format!("resizer_{}", &lit[..end]));
                    }
                }
            }
        }
        names
    }

    #[test]
    fn test_every_recorded_metric_is_declared_by_its_crate_and_nothing_stale() {
        for (krate, defs) in by_crate() {
            let declared: BTreeSet<String> = defs.iter().map(|d| d.name.to_string()).collect();
            let recorded = recorded_in(&workspace().join("crates").join(krate).join("src"));
            assert_eq!(
                recorded, declared,
                "{krate}: metrics recorded (left) and declared in its inventory.rs (right) differ"
            );
        }
        // Crates without an inventory record nothing.
        for krate in ["resizer", "resizer-core", "resizer-imaging", "resizer-telemetry"] {
            let recorded = recorded_in(&workspace().join("crates").join(krate).join("src"));
            assert!(
                recorded.is_empty(),
                "{krate} records {recorded:?} without an inventory"
            );
        }
    }

    #[test]
    fn test_docs_list_every_metric() {
        let path = workspace().join("docs/metrics.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let table = markdown();
        if std::env::var_os("RESIZER_BLESS").is_some() {
            let head = doc.split("| metric |").next().unwrap_or_default().to_string();
            std::fs::write(&path, head + &table).unwrap();
            return;
        }
        assert!(
            doc.contains(&table),
            "docs/metrics.md is out of date; regenerate it with \
             `RESIZER_BLESS=1 cargo test -p resizer --bin resizer inventory`"
        );
    }
}
