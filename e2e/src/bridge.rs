//! A test's own bridge, and a crustd serving pods on it through the built-in bridge
//! network (the set-up runtime_network and runtime_stats share).

use crate::daemon::Crustd;
use crate::pods::Leftovers;

/// A bridge a test names (unique per test process); removed on drop, with the nft table
/// crust's built-in network makes for it (`inet crust-<name>`) if there is one.
pub struct Bridge(pub String);

impl Bridge {
    /// Host-side links enslaved to this bridge, one `ip -o link` line each.
    pub fn ports(&self) -> Vec<String> {
        let out = std::process::Command::new("ip")
            .args(["-o", "link", "show", "master", &self.0])
            .output()
            .expect("ip link");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Addresses the host-local IPAM plugin holds in `dir` (it also keeps `lock` and
/// `last_reserved_ip.*` there).
pub fn host_local_allocations(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
        .collect()
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", &format!("crust-{}", self.0)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A crustd on a [`Bridge`]; fields drop in order: leftovers, crustd, the empty CNI dir.
pub struct OnBridge {
    /// Removes what a failed test left (declared first: dropped before the crustd).
    pub leftovers: Leftovers,
    /// The crustd.
    pub crustd: Crustd,
    /// The empty CNI config dir that makes crustd use its built-in bridge.
    pub cni: tempfile::TempDir,
}

/// Starts a crustd whose built-in network uses `bridge` and `subnet` (no CNI config), its
/// config being `config` applied to that `[network]` section, and pulls `image` into it.
pub async fn crustd_on(
    bridge: &Bridge,
    subnet: &str,
    config: impl FnOnce(&str) -> String,
    image: &str,
) -> OnBridge {
    let cni = tempfile::tempdir().expect("cni dir");
    let network = format!(
        "[network]\nbridge = \"{}\"\nsubnet = \"{subnet}\"\ncni_conf_dir = \"{}\"\n",
        bridge.0,
        cni.path().display()
    );
    let crustd = Crustd::start(&config(&network));
    let leftovers = Leftovers(crustd.dir.path().to_path_buf());
    crate::cri::Images::new(crustd.channel().await)
        .pull(image, None)
        .await
        .expect("pull");
    OnBridge {
        leftovers,
        crustd,
        cni,
    }
}
