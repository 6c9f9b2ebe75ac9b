//! The structure ARCHITECTURE.md promises, checked on the source text: in the aggregator the
//! modules depend one way (the table below, lowest first), only `store` knows SQL, only
//! `grpc/` knows tonic and the generated types, only `kms`, SNS delivery and the archive's
//! bucket (`archive/s3.rs`) know the AWS SDK, only webhook delivery and the CloudTrail-compatible
//! endpoint (`cloudtrail_api/`) know hyper; the
//! collector's modules form no cycle; the pure crates (domain, detection, integrity, archive,
//! cloudtrail-api) do no I/O and know no outside technology. A module added without a place in
//! the table fails here until it gets one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The aggregator's top-level modules by layer: a module may use only modules of a lower
/// layer (its own submodules are its own business).
const AGGREGATOR_LAYERS: &[(&str, u32)] = &[
    // Leaves: no module of the crate.
    ("role", 0),
    ("drain", 0),
    ("metrics", 0),
    ("rate_limits", 0),
    // What the program runs on.
    ("config", 1),
    // Master keys, then record encryption.
    ("kms", 2),
    ("crypto", 3),
    // The only SQL.
    ("store", 4),
    // The detectors every newly stored event passes (compiled from the store's definitions).
    ("detection", 5),
    // Domain services (notify: destinations, delivery and the outbox's dispatcher).
    ("auth", 6),
    ("ingest", 6),
    ("lookup", 6),
    ("sources", 6),
    ("retention", 6),
    ("alarms", 6),
    ("alarm_evaluation", 6),
    ("notify", 6),
    ("sigma_rules", 6),
    ("findings", 6),
    ("archive", 6),
    // Insights: found over the rollups, written as events through ingest; SQL: over the
    // archive's objects and the store.
    ("insights", 7),
    ("query", 7),
    // Adapters: the gRPC API, and CloudTrail's own wire protocol.
    ("grpc", 8),
    ("cloudtrail_api", 8),
    // The composition root.
    ("server", 9),
];

/// A source file: its path below `src/`, and its text without comment lines.
struct SourceFile {
    relative: String,
    code: String,
}

fn crate_sources(crate_dir: &str) -> Vec<SourceFile> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let mut paths = Vec::new();
    collect_rust_files(&src, &mut paths);
    assert!(!paths.is_empty(), "no sources under {}", src.display());
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            SourceFile {
                relative: path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                code,
            }
        })
        .collect()
}

fn collect_rust_files(directory: &Path, paths: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust_files(&path, paths);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            paths.push(path);
        }
    }
}

/// The top-level module a file belongs to (`store/events.rs` → `store`); `None` for the crate
/// roots.
fn module_of(relative: &str) -> Option<String> {
    let first = relative.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Every `crate::name` the code refers to (in `use` lines and in paths), grouped imports
/// (`crate::{a, b::c}`) included.
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(position) = rest.find("crate::") {
        let preceded_by_identifier = position > 0
            && rest[..position]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        rest = &rest[position + "crate::".len()..];
        if preceded_by_identifier {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// Whether `code` names the crate `name` as a path root (`name::…` not preceded by another
/// path segment or an identifier character).
fn names_crate(code: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    code.match_indices(&needle).any(|(position, _)| {
        position == 0
            || code[..position]
                .chars()
                .next_back()
                .is_some_and(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
    })
}

#[test]
fn the_aggregator_modules_depend_one_way_down_the_layers() {
    let layers: BTreeMap<&str, u32> = AGGREGATOR_LAYERS.iter().copied().collect();
    let mut violations = Vec::new();
    for file in crate_sources("services/aggregator") {
        let Some(module) = module_of(&file.relative) else {
            continue;
        };
        let Some(&rank) = layers.get(module.as_str()) else {
            violations.push(format!(
                "{}: module `{module}` has no layer: add it to AGGREGATOR_LAYERS (tests/tests/layering.rs) and to ARCHITECTURE.md",
                file.relative
            ));
            continue;
        };
        for used in crate_references(&file.code) {
            if used == module {
                continue;
            }
            match layers.get(used.as_str()) {
                Some(&used_rank) if used_rank < rank => {}
                Some(&used_rank) => violations.push(format!(
                    "{}: `{module}` (layer {rank}) uses `crate::{used}` (layer {used_rank}): dependencies point down",
                    file.relative
                )),
                None => violations.push(format!(
                    "{}: uses `crate::{used}`, which has no layer",
                    file.relative
                )),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn each_outside_technology_has_one_home_in_the_aggregator() {
    // (crate name in paths, the places it may appear, what it is)
    const DELIVERY: &str = "notify/delivery.rs";
    const SNS: &str = "notify/delivery/sns.rs";
    const ARCHIVE_BUCKET: &str = "archive/s3.rs";
    const CLOUDTRAIL_API: &str = "cloudtrail_api/";
    let homes: &[(&str, &[&str], &str)] = &[
        ("sqlx", &["store/"], "SQL"),
        ("tonic", &["grpc/"], "gRPC"),
        ("tonic_health", &["grpc/"], "gRPC"),
        ("tonic_reflection", &["grpc/"], "gRPC"),
        ("orgtrail_api", &["grpc/"], "generated gRPC types"),
        ("prost_types", &["grpc/"], "generated gRPC types"),
        (
            "http",
            &["grpc/", DELIVERY, CLOUDTRAIL_API],
            "HTTP (gRPC calls, webhook deliveries, the CloudTrail-compatible endpoint)",
        ),
        (
            "hyper",
            &[DELIVERY, CLOUDTRAIL_API],
            "the webhook client and the CloudTrail-compatible endpoint's server",
        ),
        (
            "hyper_util",
            &[DELIVERY, CLOUDTRAIL_API],
            "the webhook client and the CloudTrail-compatible endpoint's server",
        ),
        (
            "tokio_rustls",
            &[CLOUDTRAIL_API],
            "the CloudTrail-compatible endpoint's TLS",
        ),
        (
            "orgtrail_cloudtrail_api",
            &[CLOUDTRAIL_API],
            "CloudTrail's wire protocol",
        ),
        ("hyper_rustls", &[DELIVERY], "the webhook client"),
        ("aws_sdk_kms", &["kms.rs"], "the AWS SDK"),
        ("aws_sdk_sns", &[SNS], "the AWS SDK"),
        ("aws_sdk_s3", &[ARCHIVE_BUCKET], "the AWS SDK"),
        (
            "aws_config",
            &["kms.rs", SNS, ARCHIVE_BUCKET],
            "the AWS SDK",
        ),
        (
            "aws_smithy_http_client",
            &["kms.rs", SNS, ARCHIVE_BUCKET],
            "the AWS SDK",
        ),
    ];
    let mut violations = Vec::new();
    for file in crate_sources("services/aggregator") {
        for (name, places, what) in homes {
            let at_home = places.iter().any(|place| file.relative.starts_with(place));
            if !at_home && names_crate(&file.code, name) {
                violations.push(format!(
                    "{}: names `{name}::`, but only {} may know {what}",
                    file.relative,
                    places.join(" and ")
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_adapters_build_no_wire_type_but_their_answers() {
    // A handler wraps its answer in its response message; every other wire type is made or
    // read in grpc/convert/.
    let mut violations = Vec::new();
    for file in crate_sources("services/aggregator") {
        if !(file.relative.starts_with("grpc/") && file.relative.ends_with("_adapter.rs")) {
            continue;
        }
        for (position, _) in file.code.match_indices("pb::") {
            let name: String = file.code[position + 4..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let literal = file.code[position + 4 + name.len()..]
                .trim_start()
                .starts_with('{');
            if literal
                && name.starts_with(char::is_uppercase)
                && !(name.ends_with("Response") || name.ends_with("Request"))
            {
                violations.push(format!(
                    "grpc/{}: builds pb::{name}: convert it in grpc/convert/",
                    file.relative.trim_start_matches("grpc/")
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_pure_crates_do_no_io_and_know_no_outside_technology() {
    let forbidden = [
        "tonic",
        "prost",
        "sqlx",
        "tokio",
        "aws_config",
        "aws_sdk_s3",
        "aws_sdk_cloudtrail",
        "reqwest",
        "hyper",
    ];
    let mut violations = Vec::new();
    for krate in [
        "crates/domain",
        "crates/detection",
        "crates/integrity",
        "crates/archive",
        "crates/cloudtrail-api",
    ] {
        for file in crate_sources(krate) {
            for name in forbidden {
                if names_crate(&file.code, name) {
                    violations.push(format!("{krate}/src/{}: names `{name}::`", file.relative));
                }
            }
            // The clock is an input: pure crates are handed the time.
            for io in [
                "std::fs",
                "std::process",
                "File::open",
                "TcpStream",
                "TcpListener",
                "UdpSocket",
                "Utc::now",
            ] {
                if file.code.contains(io) {
                    violations.push(format!("{krate}/src/{}: does I/O ({io})", file.relative));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_collector_modules_form_no_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in crate_sources("services/collector") {
        let Some(module) = module_of(&file.relative) else {
            continue;
        };
        let uses = crate_references(&file.code)
            .into_iter()
            .filter(|used| *used != module)
            .collect::<BTreeSet<_>>();
        graph.entry(module).or_default().extend(uses);
    }
    assert_eq!(find_cycle(&graph), None);
}

/// A cycle of `graph` as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|visited| visited == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_checks_see_what_they_look_for() {
    // The scanners themselves, on text whose answer is known: a check that cannot fail
    // proves nothing.
    let code = "use crate::store::{PgStore};\nuse crate::{auth, grpc::status};\nlet x = crate::metrics::count();\nuse orgtrail_crate::x;";
    assert_eq!(
        crate_references(code),
        ["auth", "grpc", "metrics", "store"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert!(names_crate("use sqlx::Row;", "sqlx"));
    assert!(names_crate("x.map_err(sqlx::Error::from)", "sqlx"));
    assert!(!names_crate("use orgtrail_sqlx::Row;", "sqlx"));
    assert!(!names_crate("use tonic_health::x;", "tonic"));
    let cyclic: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(node, edges)| {
        (
            node.to_string(),
            edges.into_iter().map(String::from).collect(),
        )
    })
    .collect();
    assert_eq!(
        find_cycle(&cyclic),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
