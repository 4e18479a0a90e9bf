//! Which build is running, so that every signature can be traced to a build: the signers log it
//! when they start and write it into every receipt; `--version` prints it.
//!
//! - The build: the crate version and the commit it was built from, compiled in by `build.rs`
//!   from `PACKAGE_SIGNING_COMMIT` (the flake sets it to the commit, `scripts/repro` to the
//!   commit it builds); a plain `cargo build` says "commit unknown".
//! - The image: the reference the deployment started the container from, from `TUF_IMAGE` (the
//!   compose files set it to the pinned `REGISTRY/AGENT@sha256:…`). A container cannot read its
//!   own digest, so this is the deployment's word; what proves it is `scripts/release verify`,
//!   which rebuilds the commit and compares digests.

/// `0.1.0 (commit 1f2e…)`, or `0.1.0 (commit unknown)`.
pub const BUILD: &str = env!("PACKAGE_SIGNING_BUILD");

/// The variable the deployment names the running image in.
pub const IMAGE_VAR: &str = "TUF_IMAGE";

/// The image reference the deployment gave, if any.
pub fn image() -> Option<String> {
    std::env::var(IMAGE_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The build and, where the deployment named it, the image: what a receipt records.
pub fn describe() -> String {
    match image() {
        Some(image) => format!("package-signing {BUILD}, image {image}"),
        None => format!("package-signing {BUILD}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_names_the_crate_version_and_a_commit() {
        assert!(super::BUILD.starts_with(concat!(env!("CARGO_PKG_VERSION"), " (commit ")));
        assert!(super::BUILD.ends_with(')'));
    }
}
