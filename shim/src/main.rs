//! `crust-shim`: the per-pod containerd shim v2 (see the library docs).

fn main() {
    std::process::exit(crust_shim::cli::main());
}
