//! Intentionally empty: the build-dependencies in Cargo.toml only pin features (see there).

fn main() {}
