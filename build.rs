//! Links the binary with packed relative relocations (`DT_RELR`) where the
//! C library it will load with can read them.
//!
//! The binary is position-independent, so the loader patches every pointer
//! in its tables at start. Stored one `Elf64_Rela` (24 bytes) each, those
//! patches are a 1 MB table that is read once and then stays resident;
//! packed, they take 20 KB. The loader must know the format: glibc does
//! from 2.36, and a binary linked with it will not start on an older one.
//! So it is asked for only when building for the machine the build runs on
//! and its glibc is recent enough; any other build links as before.

use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target == host && target.ends_with("-linux-gnu") && glibc_at_least(2, 36) {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the build machine's glibc (`getconf GNU_LIBC_VERSION`, which
/// prints `glibc 2.36`) is at least `major.minor`.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or_default()
        .split('.')
        .map(|part| part.parse::<u32>().ok());
    match (version.next().flatten(), version.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}
