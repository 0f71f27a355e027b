//! Compiles ../proto (the repository's wire contract) into the API crate: prost messages, tonic client and server, proto3-JSON serde
//! impls (pbjson, honouring `json_name`) and the encoded descriptor set that reflection and the
//! route/annotation test read. protoc comes from `protoc-bin-vendored`: no system protoc needed.

use std::{env, error::Error, path::PathBuf};

/// The contract, relative to this crate: it lives at the repository's top, next to the crates that
/// use it and the clients in other languages that read it.
const PROTO_ROOT: &str = "../proto";
const PROTOS: &[&str] = &["../proto/candidates/v1/candidates.proto"];
const DESCRIPTOR: &str = "candidates_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join(DESCRIPTOR);
    let well_known = protoc_bin_vendored::include_path()?;
    let protos: Vec<PathBuf> = PROTOS.iter().map(PathBuf::from).collect();
    let includes = [PathBuf::from(PROTO_ROOT), well_known];

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_with_config(config, &protos, &includes)?;

    // Serialize/Deserialize following the proto3 JSON mapping; emit default values like
    // grpc-gateway's `EmitUnpopulated: true` so clients always see every field.
    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new().register_descriptors(&descriptors)?.emit_fields().build(&[".candidates.v1"])?;

    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    Ok(())
}
