//! Entry point shared by `crust-shim` and `containerd-shim-crust-v2`.

use crate::args::{Action, Args};

/// Runs the shim with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("crust-shim: {e}");
            return 2;
        }
    };
    match args.action {
        Action::Help => {
            print!("{}", crate::args::USAGE);
            0
        }
        Action::Version => {
            println!("crust-shim {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Action::Start => match crate::bootstrap::start(&args) {
            Ok(addr) => match crate::bootstrap::print(addr.as_bytes()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("crust-shim: {e}");
                    1
                }
            },
            Err(e) => {
                eprintln!("crust-shim start: {e}");
                1
            }
        },
        Action::Delete => {
            let out = crate::bootstrap::delete(&args);
            if crate::bootstrap::print(&out).is_err() {
                return 1;
            }
            0
        }
        Action::Serve => match crate::daemon::serve(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("crust-shim serve: {e}");
                1
            }
        },
    }
}
