//! The generated gRPC bindings of `orgtrail.v1` (the schema lives in `proto/`). Wire types
//! stay at the edges: the services convert them to domain types in their `convert.rs`.

/// `orgtrail.v1`: ingest, event lookup.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("orgtrail.v1");
}

/// The encoded `FileDescriptorSet` of `orgtrail.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orgtrail_v1_descriptor.bin"));
