//! Image pull benchmark: pulls and unpacks the same ~200 MB image (several layers, many
//! small files) from a loopback docker-registry through crustd and through a private
//! containerd (its CRI plugin, overlayfs snapshotter), with the same Rust CRI client, and
//! prints the times and the ratio. Run via `bench/images.sh`.
//!
//! Fairness: every pull (either runtime) gets its root on a fresh, empty ext4 filesystem
//! (mkfs defaults, so journaled as on a node) on a loop device over a sparse file in
//! `/var/tmp`, and the page cache is dropped right before the timed pull, so both start
//! cold and neither inherits the other's (or an earlier run's) deletions. The last point
//! matters on a journal-less ext4 (this VM's root): there ext4 refuses to reuse an inode
//! freed less than 60 s ago (`recently_deleted()` in `find_inode_bit()`), and scanning past
//! the ~21000 inodes the previous pull's cleanup freed made the next pull's file creation
//! cost 15+ s of kernel CPU, for whichever runtime ran next.
//!
//! Usage: `bench_images [RUNS]` (default 3). Needs root, docker-registry and containerd.
//! Environment: `BENCH_FS=host` puts the roots in the temp dir on the host filesystem
//! instead (then `BENCH_SETTLE_SECS`, default 65, separates the runs);
//! `BENCH_CRUST_ONLY=1` skips containerd; `BENCH_VERBOSE=1` prints crustd's per-layer log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crust_e2e::containerd::Containerd;
use crust_e2e::daemon::Crustd;
use crust_e2e::image::{self, busybox_layer, Compression, Flavour, Layer};
use crust_e2e::registry::Registry;
use crust_e2e::scratch::Scratch;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Text-like bytes (compress about 2:1, like source trees and binaries do).
    fn text(&mut self, n: usize) -> Vec<u8> {
        const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 _\n{}();=";
        (0..n)
            .map(|_| ALPHA[(self.next() % ALPHA.len() as u64) as usize])
            .collect()
    }
}

fn build_image() -> image::Image {
    let mut rng = Rng(0x2545f4914f6cdd1d);
    let mut layers = vec![busybox_layer()];
    for l in 0..3 {
        let mut layer = Layer::new().dir(&format!("usr{l}"), 0o755);
        for d in 0..70 {
            layer = layer.dir(&format!("usr{l}/d{d}"), 0o755);
            for f in 0..100 {
                let size = 1024 + (rng.next() % 11_000) as usize;
                layer = layer.file(&format!("usr{l}/d{d}/f{f}.txt"), &rng.text(size), 0o644);
            }
        }
        layers.push(layer.finish());
    }
    let mut big = Layer::new().dir("big", 0o755);
    for f in 0..4 {
        big = big.file(&format!("big/blob{f}"), &rng.text(15 << 20), 0o644);
    }
    layers.push(big.finish());
    image::build(
        &layers,
        Compression::Gzip,
        Flavour::Oci,
        image::host_arch(),
        &[],
    )
}

async fn timed_pull(socket: &Path, image: &str) -> anyhow::Result<(Duration, String)> {
    let mut c = crust_e2e::cri::Images::new(crust_e2e::cri::connect(socket).await);
    let t = Instant::now();
    let id = c
        .pull(image, None)
        .await
        .map_err(|e| anyhow::anyhow!("pull via {}: {e:?}", socket.display()))?;
    Ok((t.elapsed(), id))
}

/// Runs a command, failing with its stderr.
/// Where a run's daemon root goes: a fresh filesystem (default) or the host temp dir.
fn scratch() -> anyhow::Result<Option<Scratch>> {
    if std::env::var("BENCH_FS").is_ok_and(|v| v == "host") {
        return Ok(None);
    }
    Scratch::new().map(Some)
}

fn parent_dir(s: &Option<Scratch>) -> PathBuf {
    s.as_ref()
        .map_or_else(std::env::temp_dir, |s| s.path().to_path_buf())
}

/// Starts both cold: dirty data written back, page cache (registry blobs, binaries)
/// dropped.
fn drop_caches() -> anyhow::Result<()> {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3").context("drop caches")
}

/// Between runs on the host filesystem: flush and wait out ext4's recently-deleted window.
fn settle() {
    nix::unistd::sync();
    if std::env::var("BENCH_FS").is_ok_and(|v| v == "host") {
        let secs = std::env::var("BENCH_SETTLE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(65);
        std::thread::sleep(Duration::from_secs(secs));
    }
}

/// One pull through a fresh crustd: (wall, cpu).
async fn crust_run(crustd: &Path, name: &str, want: &str) -> anyhow::Result<(Duration, Duration)> {
    let fs = scratch()?;
    let d = Crustd::start_bin_in(crustd, "", &parent_dir(&fs));
    let pid = d.pid().context("crustd pid")?;
    drop_caches()?;
    let cpu0 = cpu_time(pid)?;
    let (t, id) = timed_pull(&d.socket(), name).await?;
    let cpu = cpu_time(pid)? - cpu0;
    anyhow::ensure!(id == want, "crustd answered {id}, want {want}");
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        for l in d
            .log()
            .lines()
            .filter(|l| l.contains("layer ") || l.contains("pulled"))
        {
            eprintln!("  {l}");
        }
    }
    drop(d);
    drop(fs);
    settle();
    Ok((t, cpu))
}

/// One pull through a fresh containerd: (wall, cpu).
async fn containerd_run(
    registry: &str,
    name: &str,
    want: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let fs = scratch()?;
    let c = Containerd::start_in(&parent_dir(&fs), registry, None, None)?;
    drop_caches()?;
    let cpu0 = cpu_time(c.pid())?;
    let (t, id) = timed_pull(&c.socket(), name).await?;
    let cpu = cpu_time(c.pid())? - cpu0;
    anyhow::ensure!(id == want, "containerd answered {id}, want {want}");
    drop(c);
    drop(fs);
    settle();
    Ok((t, cpu))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// User + system CPU time of a process (all its threads) from /proc.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("parse /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is [0], utime [11], stime [12] (man 5 proc: 14, 15).
    let ticks: u64 =
        f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_millis(ticks * 1000 / hz))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !crust_e2e::is_root() {
        bail!("run as root");
    }
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let crustd = std::env::var_os("CRUSTD")
        .map(PathBuf::from)
        .unwrap_or_else(|| crust_e2e::workspace_bin("crust-cri", "crustd"));
    let reg = Registry::start();
    let t = Instant::now();
    let img = tokio::task::spawn_blocking(build_image).await?;
    let raw: usize = img.layers.iter().map(Vec::len).sum();
    let packed: usize = img.blobs.iter().map(|b| b.1.len()).sum();
    image::push(&reg.host(), "bench/big", "1", &img, None).await;
    let name = format!("{}/bench/big:1", reg.host());
    println!(
        "image {name}: {} layers, {:.0} MB uncompressed, {:.0} MB compressed, ~21000 files (built+pushed in {:.1}s)",
        img.layers.len(),
        raw as f64 / 1e6,
        packed as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let (mut crust, mut ctrd, mut crust_cpu, mut ctrd_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let crust_only = std::env::var_os("BENCH_CRUST_ONLY").is_some();
    for run in 1..=runs {
        // Alternate who goes first: each run follows the previous run's deletions.
        let containerd_first = run % 2 == 0 && !crust_only;
        let mut k = None;
        if containerd_first {
            k = Some(containerd_run(&reg.host(), &name, &img.id).await?);
        }
        let (tc, cc) = crust_run(&crustd, &name, &img.id).await?;
        if !containerd_first && !crust_only {
            k = Some(containerd_run(&reg.host(), &name, &img.id).await?);
        }
        crust.push(tc);
        crust_cpu.push(cc);
        match k {
            None => println!(
                "run {run}: crustd {:>7.0} ms (cpu {:>6.0} ms)",
                ms(tc),
                ms(cc)
            ),
            Some((tk, ck)) => {
                println!(
                    "run {run}: crustd {:>7.0} ms (cpu {:>6.0} ms)   containerd {:>7.0} ms (cpu {:>6.0} ms){}",
                    ms(tc),
                    ms(cc),
                    ms(tk),
                    ms(ck),
                    if containerd_first { "   [containerd ran first]" } else { "" }
                );
                ctrd.push(tk);
                ctrd_cpu.push(ck);
            }
        }
    }
    let (mc, mcc) = (median(&mut crust), median(&mut crust_cpu));
    if crust_only {
        println!(
            "median: crustd {:.0} ms wall, {:.0} ms cpu",
            ms(mc),
            ms(mcc)
        );
        return Ok(());
    }
    let (mk, mkc) = (median(&mut ctrd), median(&mut ctrd_cpu));
    println!(
        "median wall: crustd {:.0} ms, containerd {:.0} ms, ratio crust/containerd = {:.2} (target <= 0.50)",
        ms(mc),
        ms(mk),
        mc.as_secs_f64() / mk.as_secs_f64()
    );
    println!(
        "median cpu:  crustd {:.0} ms, containerd {:.0} ms, ratio crust/containerd = {:.2}",
        ms(mcc),
        ms(mkc),
        mcc.as_secs_f64() / mkc.as_secs_f64()
    );
    Ok(())
}
