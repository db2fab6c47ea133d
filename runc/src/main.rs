//! `crust-runc` command line.

fn main() {
    eprintln!("crust-runc: not implemented yet");
    std::process::exit(1);
}
