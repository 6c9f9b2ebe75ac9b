//! Compiles `proto/orgtrail/v1/*.proto` with protox (no protoc needed) into tonic bindings,
//! and writes the descriptor set that the aggregator serves through gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "orgtrail/v1/ingest.proto",
        "orgtrail/v1/events.proto",
        "orgtrail/v1/sources.proto",
        "orgtrail/v1/retention.proto",
        "orgtrail/v1/tokens.proto",
        "orgtrail/v1/keys.proto",
        "orgtrail/v1/quarantine.proto",
        "orgtrail/v1/alarms.proto",
        "orgtrail/v1/detections.proto",
        "orgtrail/v1/insights.proto",
        "orgtrail/v1/query.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }
    let descriptors = protox::compile(files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("orgtrail_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
