//! Static libraries for the ported-app tests and benchmark (C programs
//! only; nothing in this crate's Rust code links them): Lua 5.4 from the
//! `lua-src` crate's C sources, and SQLite, whose `sqlite3.c` the
//! `libsqlite3-sys` build script (feature `bundled`) compiles. Their paths
//! reach the tests as compile-time environment variables. Only with the
//! feature `ported-apps`, which the tests turn on: a build of the tools
//! alone compiles neither.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "ported-apps")]
    ported_apps::build();
}

#[cfg(feature = "ported-apps")]
mod ported_apps {
    use std::path::{Path, PathBuf};

    /// Lua's headers: `lua-src` keeps them beside its C sources, in its own
    /// package directory, which sits beside `libsqlite3-sys`'s (both come from
    /// the same registry, or the same vendor directory).
    fn lua_include(sqlite_include: &Path) -> PathBuf {
        let packages = sqlite_include
            .parent()
            .and_then(Path::parent)
            .expect("libsqlite3-sys's include directory sits in its package");
        let mut found: Vec<PathBuf> = std::fs::read_dir(packages)
            .expect("read the package directory")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("lua-src"))
            .map(|e| e.path().join("lua-5.4.7"))
            .filter(|dir| dir.join("lua.h").exists())
            .collect();
        found.sort();
        found.pop().unwrap_or_else(|| {
            panic!(
                "no lua-src package with lua-5.4.7 in {}",
                packages.display()
            )
        })
    }

    pub fn build() {
        let lua = lua_src::Build::new().build(lua_src::Lua54);
        let sqlite_include = PathBuf::from(
            std::env::var("DEP_SQLITE3_INCLUDE")
                .expect("libsqlite3-sys (bundled) gives its include"),
        );
        let sqlite_lib = std::env::var("DEP_SQLITE3_LIB_DIR")
            .expect("libsqlite3-sys (bundled) gives its library directory");
        println!(
            "cargo:rustc-env=NOMMU_LUA_LIB={}",
            lua.lib_dir().join("liblua5.4.a").display()
        );
        println!(
            "cargo:rustc-env=NOMMU_LUA_INCLUDE={}",
            lua_include(&sqlite_include).display()
        );
        println!(
            "cargo:rustc-env=NOMMU_SQLITE_LIB={}",
            Path::new(&sqlite_lib).join("libsqlite3.a").display()
        );
        println!(
            "cargo:rustc-env=NOMMU_SQLITE_INCLUDE={}",
            sqlite_include.display()
        );
    }
}
