//! `containerd-shim-crust-v2`: crust-shim under the name containerd looks for
//! (runtime type `io.containerd.crust.v2`).

fn main() {
    std::process::exit(crust_shim::cli::main());
}
