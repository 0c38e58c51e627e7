//! Gives libomni.so its SONAME (`libomni.so.0`, the ABI's major version): apps
//! link against the versioned name, and an ABI break bumps it.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libomni.so.0");
    }
}
