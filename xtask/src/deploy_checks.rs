//! `cargo xtask check-deploy` (also the first step of `cargo xtask test`): the deployment's
//! files checked offline, one line per check.
//!
//! - The Helm chart `helm/orgtrail` and the `Dockerfile`, by `xtask/deploy/deploy_checks.py`
//!   (helm-python-sdk, kubernetes-validate, dockerfile): strict lint, rendering with the default
//!   values and each values case, every object validated against Kubernetes 1.30's schemas, the
//!   configuration files the pods get through the real binaries' `check-config`, security
//!   invariants, the values the schema must refuse, and the Dockerfile against the workspace's
//!   binaries and the chart's commands.
//! - The CloudFormation templates `deploy/aws/*.yaml`, by cfn-lint.
//!
//! The tools are pinned in `xtask/deploy/requirements.txt` and installed into the venv
//! `target/xtask/deploy-tools`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::python_venv::{ensure_venv, Requirements};
use crate::workspace_root;

const REQUIREMENTS: &str = "xtask/deploy/requirements.txt";
const CHART: &str = "helm/orgtrail";
/// Values cases rendered besides the chart's defaults: name and file.
const VALUES_CASES: [(&str, &str); 3] = [
    (
        "production",
        "helm/orgtrail/examples/production-values.yaml",
    ),
    ("alternatives", "xtask/deploy/values/alternatives.yaml"),
    ("moving-to-kms", "xtask/deploy/values/moving-to-kms.yaml"),
];
const BAD_VALUES: &str = "xtask/deploy/bad-values";
const CLOUDFORMATION: &str = "deploy/aws";

/// Runs every check against the binaries in `bin_dir`; an error names the checks that failed
/// (each has printed its line).
pub fn check_deploy(bin_dir: &Path) -> anyhow::Result<()> {
    let venv = ensure_venv(
        "deploy-tools",
        Requirements::File(REQUIREMENTS),
        "bin/cfn-lint",
    )
    .context("cannot install the deploy checks' tools")?;
    let root = workspace_root();
    let mut failed = Vec::new();

    let mut chart = Command::new(venv.join("bin/python"));
    chart
        .current_dir(&root)
        .arg(root.join("xtask/deploy/deploy_checks.py"))
        .arg("--workspace")
        .arg(&root)
        .arg("--chart")
        .arg(root.join(CHART))
        .arg("--bad-values")
        .arg(root.join(BAD_VALUES))
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--out")
        .arg(root.join("target/xtask/deploy-checks"));
    for (name, file) in VALUES_CASES {
        chart
            .arg("--values")
            .arg(format!("{name}={}", root.join(file).display()));
    }
    // The script prints one line per check itself.
    let status = chart.status().context("cannot run deploy_checks.py")?;
    if !status.success() {
        failed.push("the Helm chart or the Dockerfile");
    }

    match cfn_lint(&venv, &root.join(CLOUDFORMATION)) {
        Ok(summary) => println!("deploy check cfn-lint: ok ({summary})"),
        Err(error) => {
            println!("deploy check cfn-lint: FAILED: {error:#}");
            failed.push("the CloudFormation templates");
        }
    }

    if !failed.is_empty() {
        bail!(
            "deploy checks failed for {} (see the FAILED lines above)",
            failed.join(" and ")
        );
    }
    Ok(())
}

/// cfn-lint over every template in `dir`; there must be at least one.
fn cfn_lint(venv: &Path, dir: &Path) -> anyhow::Result<String> {
    let mut templates: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    templates.sort();
    if templates.is_empty() {
        bail!("no CloudFormation templates ({}/*.yaml)", dir.display());
    }
    let output = Command::new(venv.join("bin/cfn-lint"))
        .args(["--format", "parseable", "--"])
        .args(&templates)
        .output()
        .context("cannot run cfn-lint")?;
    // Exit status: a bit mask of 2 errors, 4 warnings, 8 informational (1: cfn-lint failed).
    // Errors and warnings fail the check; informational findings are shown.
    let code = output.status.code().unwrap_or(1);
    let findings = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let names: Vec<String> = templates
        .iter()
        .filter_map(|path| path.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    if code & 0b0111 != 0 {
        bail!(
            "exit status {code}:\n{findings}{}{stderr}",
            if stderr.is_empty() { "" } else { "\n" }
        );
    }
    let mut summary = format!("{} templates: {}", names.len(), names.join(", "));
    if !findings.is_empty() {
        summary.push_str(&format!("; informational:\n{findings}"));
    }
    Ok(summary)
}
