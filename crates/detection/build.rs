//! Embeds the built-in Sigma rules: lists `data/sigma/rules/cloud/aws/cloudtrail/*.yml` (sorted
//! by name) and writes `$OUT_DIR/builtin_sigma_rules.rs`, a slice of `BuiltinSigmaRule`s whose
//! `yaml` is an `include_str!` of each file, so the rules ship byte for byte inside the binary
//! and a rule added to or removed from the folder is picked up by the next build.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules_directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/sigma/rules/cloud/aws/cloudtrail")
        .canonicalize()?;
    // A directory: cargo reruns when anything in it changes (a file added, removed or edited).
    println!("cargo:rerun-if-changed={}", rules_directory.display());

    let mut files = Vec::new();
    for entry in std::fs::read_dir(&rules_directory)? {
        let path = entry?.path();
        let is_rule = path.extension().is_some_and(|extension| extension == "yml");
        if let (true, Some(name)) = (is_rule, path.file_name().and_then(|name| name.to_str())) {
            files.push((name.to_owned(), path.clone()));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("no Sigma rules in {}", rules_directory.display()).into());
    }

    let mut code = String::from("&[\n");
    for (name, path) in &files {
        let path = path.to_str().ok_or("a rule's path is not UTF-8")?;
        writeln!(
            code,
            "    BuiltinSigmaRule {{ file_name: {name:?}, yaml: include_str!({path:?}) }},"
        )?;
    }
    code.push_str("]\n");
    let out_directory = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_directory.join("builtin_sigma_rules.rs"), code)?;
    Ok(())
}
