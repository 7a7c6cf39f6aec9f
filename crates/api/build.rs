//! Compiles proto/ with protox (pure Rust), so no system `protoc` is needed, and keeps the
//! descriptor set (with the proto comments) for the REST gateway and its OpenAPI document.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(
        [
            "gmchain/v1/chain.proto",
            "gmchain/v1/exchange.proto",
            "gmchain/v1/supervision.proto",
        ],
        ["proto"],
    )?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("gmchain_v1.fds"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
