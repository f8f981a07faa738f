//! The version and release DISCOVER and DIAGNOSTICS report: `version` is "major.minor" of the
//! crate, `release` what `git describe` said at build time (the crate version outside git).

/// The full release string, from the build.
pub const RELEASE: &str = match option_env!("KEEPSERVER_RELEASE") {
    Some(r) => r,
    None => env!("CARGO_PKG_VERSION"),
};

/// "major.minor" of this build.
pub fn version() -> String {
    format!(
        "{}.{}",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    )
}
