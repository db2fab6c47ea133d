//! Whole-crate tests against fake cgroupfs trees in a temp dir: the v1 (hybrid) and v2 code
//! paths, checking exactly which values are written to which files, in which order.
//! Interface files are pre-created as the kernel would have them; the write log
//! (`cgroupfs::write_log`) records what would have reached the kernel.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::cgroupfs::write_log;
use crate::{Cgroup, CgroupError, HierarchyDir};

pub(crate) const HYBRID_MOUNTINFO: &str = "\
25 1 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw
26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
27 25 0:24 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
28 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices
30 25 0:27 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
31 25 0:28 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio
32 25 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
33 25 0:30 / /sys/fs/cgroup/hugetlb rw - cgroup cgroup rw,hugetlb
34 25 0:31 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
35 25 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
36 25 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
";

pub(crate) const HYBRID_OWN: &str = "\
10:name=systemd:/user.slice
9:net_cls,net_prio:/
8:hugetlb:/
7:pids:/user.slice
6:blkio:/
5:freezer:/
4:memory:/user.slice/session-1.scope
3:devices:/
2:cpuset:/
1:cpu,cpuacct:/user.slice
0::/user.slice/session-1.scope
";

pub(crate) const V2_MOUNTINFO: &str = "\
24 1 0:21 / /proc rw - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

pub(crate) const V2_OWN: &str = "0::/user.slice/user-0.slice/session-1.scope\n";

pub(crate) struct Fake {
    tmp: tempfile::TempDir,
}

impl Fake {
    pub(crate) fn new(mountinfo: &str, own: &str) -> Fake {
        let f = Fake {
            tmp: tempfile::tempdir().unwrap(),
        };
        f.file("proc/self/mountinfo", mountinfo);
        f.file("proc/self/cgroup", own);
        write_log::take(Path::new("/"));
        f
    }
    pub(crate) fn root(&self) -> &Path {
        self.tmp.path()
    }
    pub(crate) fn cg(&self) -> PathBuf {
        self.root().join("sys/fs/cgroup")
    }
    pub(crate) fn file(&self, rel: &str, content: &str) {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.cg().join(rel)).unwrap()
    }
    /// Interface files of a fresh cgroup directory `dir` (relative to sys/fs/cgroup).
    pub(crate) fn populate(&self, dir: &str, files: &[(&str, &str)]) {
        for (f, v) in files {
            self.file(&format!("sys/fs/cgroup/{dir}/{f}"), v);
        }
    }
    /// The writes since the last call, paths relative to sys/fs/cgroup.
    fn writes(&self) -> Vec<(String, String)> {
        write_log::take(&self.cg())
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn w(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const HUGE: &str = "9223372036854771712\n";

pub(crate) fn hybrid_leaf(f: &Fake, path: &str) {
    let ctrl_files: &[(&str, &[(&str, &str)])] = &[
        (
            "cpu,cpuacct",
            &[
                ("cpu.shares", "1024\n"),
                ("cpu.cfs_period_us", "100000\n"),
                ("cpu.cfs_quota_us", "-1\n"),
            ],
        ),
        ("cpuset", &[("cpuset.cpus", ""), ("cpuset.mems", "")]),
        (
            "memory",
            &[
                ("memory.limit_in_bytes", HUGE),
                ("memory.memsw.limit_in_bytes", HUGE),
                ("memory.soft_limit_in_bytes", HUGE),
                ("memory.swappiness", "60\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
                ),
            ],
        ),
        (
            "devices",
            &[
                ("devices.allow", ""),
                ("devices.deny", ""),
                ("devices.list", "a *:* rwm\n"),
            ],
        ),
        ("freezer", &[("freezer.state", "THAWED\n")]),
        (
            "blkio",
            &[
                ("blkio.weight", "100\n"),
                ("blkio.weight_device", ""),
                ("blkio.throttle.read_bps_device", ""),
            ],
        ),
        ("pids", &[("pids.max", "max\n")]),
        ("hugetlb", &[("hugetlb.2MB.limit_in_bytes", HUGE)]),
        (
            "net_cls,net_prio",
            &[("net_cls.classid", "0\n"), ("net_prio.ifpriomap", "")],
        ),
        ("systemd", &[]),
        (
            "unified",
            &[
                ("cgroup.freeze", "0\n"),
                ("cgroup.events", "populated 0\nfrozen 0\n"),
            ],
        ),
    ];
    for (ctrl, files) in ctrl_files {
        let dir = format!("{ctrl}{path}");
        f.populate(&dir, &[("cgroup.procs", "")]);
        f.populate(&dir, files);
    }
}

#[test]
fn v1_relative_paths_follow_own_cgroup_per_controller() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    let cg = Cgroup::with_root(f.root(), Some("kube/ctr"), "id").unwrap();
    assert!(!cg.is_v2());
    assert_eq!(cg.path(), "/user.slice/session-1.scope/kube/ctr");
    let h = cg.hierarchies();
    let find = |c: &str| -> HierarchyDir { h.iter().find(|d| d.controllers == c).unwrap().clone() };
    assert_eq!(
        find("cpu,cpuacct").dir,
        f.cg().join("cpu,cpuacct/user.slice/kube/ctr")
    );
    assert_eq!(
        find("memory").dir,
        f.cg().join("memory/user.slice/session-1.scope/kube/ctr")
    );
    assert_eq!(find("cpuset").dir, f.cg().join("cpuset/kube/ctr"));
    assert_eq!(
        find("net_cls,net_prio").dir,
        f.cg().join("net_cls,net_prio/kube/ctr")
    );
    assert_eq!(
        find("name=systemd").dir,
        f.cg().join("systemd/user.slice/kube/ctr")
    );
    assert_eq!(
        find("").dir,
        f.cg().join("unified/user.slice/session-1.scope/kube/ctr")
    );
    assert_eq!(h.len(), 11);
    // Default path: the container id, relative.
    let cg = Cgroup::with_root(f.root(), None, "abc").unwrap();
    assert_eq!(cg.path(), "/user.slice/session-1.scope/abc");
}

#[test]
fn v1_create_apply_writes_exactly() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    f.populate(
        "cpuset",
        &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")],
    );
    // The kernel gives new cpuset directories empty cpus/mems.
    f.populate(
        "cpuset/crust",
        &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")],
    );
    hybrid_leaf(&f, "/crust/c1");
    let cg = Cgroup::with_root(f.root(), Some("/crust/c1"), "c1").unwrap();
    cg.create().unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("cpuset/crust/cpuset.cpus", "0-3"),
            ("cpuset/crust/cpuset.mems", "0"),
            ("cpuset/crust/c1/cpuset.cpus", "0-3"),
            ("cpuset/crust/c1/cpuset.mems", "0"),
        ])
    );
    let r = res(r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728,
                   "kernel": 1000000, "kernelTCP": 2000000, "swappiness": 10,
                   "disableOOMKiller": true},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0",
                "realtimeRuntime": 950, "realtimePeriod": 1000},
        "pids": {"limit": 32},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}
    }"#);
    f.populate(
        "cpu,cpuacct/crust/c1",
        &[
            ("cpu.rt_period_us", "1000000\n"),
            ("cpu.rt_runtime_us", "0\n"),
        ],
    );
    // Not in every leaf: the stats tests read it as absent.
    f.populate(
        "memory/crust/c1",
        &[("memory.kmem.tcp.limit_in_bytes", HUGE)],
    );
    cg.apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("cpu,cpuacct/crust/c1/cpu.shares", "512"),
            ("cpu,cpuacct/crust/c1/cpu.cfs_period_us", "100000"),
            ("cpu,cpuacct/crust/c1/cpu.cfs_quota_us", "50000"),
            ("cpu,cpuacct/crust/c1/cpu.rt_period_us", "1000"),
            ("cpu,cpuacct/crust/c1/cpu.rt_runtime_us", "950"),
            ("cpuset/crust/c1/cpuset.cpus", "0-1"),
            ("cpuset/crust/c1/cpuset.mems", "0"),
            ("memory/crust/c1/memory.limit_in_bytes", "67108864"),
            ("memory/crust/c1/memory.memsw.limit_in_bytes", "134217728"),
            ("memory/crust/c1/memory.soft_limit_in_bytes", "33554432"),
            ("memory/crust/c1/memory.swappiness", "10"),
            ("memory/crust/c1/memory.oom_control", "1"),
            ("memory/crust/c1/memory.kmem.tcp.limit_in_bytes", "2000000"),
            ("pids/crust/c1/pids.max", "32"),
            ("blkio/crust/c1/blkio.weight", "500"),
            ("blkio/crust/c1/blkio.weight_device", "8:0 300"),
            (
                "blkio/crust/c1/blkio.throttle.read_bps_device",
                "8:0 1048576"
            ),
            ("hugetlb/crust/c1/hugetlb.2MB.limit_in_bytes", "4194304"),
            ("net_cls,net_prio/crust/c1/net_cls.classid", "1048577"),
            ("net_cls,net_prio/crust/c1/net_prio.ifpriomap", "eth0 5"),
        ])
    );
    assert_eq!(f.read("memory/crust/c1/memory.limit_in_bytes"), "67108864");

    // Devices: this fake kernel does not update devices.list, so the read-back check fails
    // after exactly the transition writes ...
    let devs = res(r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rw"}]}"#);
    let e = cg.apply(&devs).unwrap_err();
    assert!(e.to_string().contains("device list differs"), "{e}");
    assert_eq!(
        f.writes(),
        w(&[
            ("devices/crust/c1/devices.deny", "a *:* rwm"),
            ("devices/crust/c1/devices.allow", "c 1:3 rwm"),
            ("devices/crust/c1/devices.allow", "c 136:* rw"),
        ])
    );
    // ... and once the list shows the requested state, re-applying writes nothing.
    f.populate(
        "devices/crust/c1",
        &[("devices.list", "c 1:3 rwm\nc 136:* rw\n")],
    );
    cg.apply(&devs).unwrap();
    assert_eq!(f.writes(), vec![]);

    cg.add_process(4242).unwrap();
    let procs = f.writes();
    assert_eq!(procs.len(), 11, "{procs:?}");
    assert!(procs
        .iter()
        .all(|(p, v)| p.ends_with("/crust/c1/cgroup.procs") && v == "4242"));
    assert!(procs
        .iter()
        .any(|(p, _)| p == "unified/crust/c1/cgroup.procs"));
    assert!(procs
        .iter()
        .any(|(p, _)| p == "systemd/crust/c1/cgroup.procs"));
}

#[test]
fn v1_memory_growth_writes_memsw_first_and_unlimited_sets_both() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    hybrid_leaf(&f, "/m");
    f.populate(
        "memory/m",
        &[
            ("memory.limit_in_bytes", "1048576\n"),
            ("memory.memsw.limit_in_bytes", "1048576\n"),
        ],
    );
    let cg = Cgroup::with_root(f.root(), Some("/m"), "m").unwrap();
    cg.apply(&res(
        r#"{"memory": {"limit": 209715200, "swap": 419430400}}"#,
    ))
    .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("memory/m/memory.memsw.limit_in_bytes", "419430400"),
            ("memory/m/memory.limit_in_bytes", "209715200"),
        ])
    );
    cg.apply(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("memory/m/memory.memsw.limit_in_bytes", "-1"),
            ("memory/m/memory.limit_in_bytes", "-1"),
        ])
    );
}

#[test]
fn invalid_input_writes_nothing() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    hybrid_leaf(&f, "/bad");
    let cg = Cgroup::with_root(f.root(), Some("/bad"), "bad").unwrap();
    for (json, field) in [
        (
            r#"{"cpu": {"shares": 512}, "memory": {"swappiness": 200}}"#,
            "memory.swappiness",
        ),
        (
            r#"{"pids": {"limit": 5}, "devices": [{"allow": true, "access": "rwx"}]}"#,
            "devices[0].access",
        ),
        (
            r#"{"pids": {"limit": 5}, "unified": {"memory.high": "1"}}"#,
            "unified",
        ),
        (r#"{"blockIO": {"weight": 5}}"#, "blockIO.weight"),
        (r#"{"memory": {"limit": 100, "swap": 50}}"#, "memory.swap"),
        (
            r#"{"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}"#,
            "hugepageLimits[0].pageSize",
        ),
    ] {
        let e = cg.apply(&res(json)).unwrap_err().to_string();
        assert!(e.contains(field), "{json}: {e}");
        assert_eq!(f.writes(), vec![], "{json}");
    }
}

#[test]
fn v1_stats_freeze_pids_oom() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    hybrid_leaf(&f, "/s");
    f.populate(
        "cpu,cpuacct/s",
        &[
            ("cpuacct.usage", "1000\n"),
            ("cpuacct.usage_percpu", "600 400 \n"),
            ("cpuacct.usage_percpu_sys", "100 50 \n"),
            ("cpuacct.usage_percpu_user", "500 350 \n"),
            ("cpuacct.stat", "user 5\nsystem 3\n"),
            (
                "cpu.stat",
                "nr_periods 10\nnr_throttled 2\nthrottled_time 300\n",
            ),
        ],
    );
    f.populate(
        "memory/s",
        &[
            ("memory.usage_in_bytes", "4096\n"),
            ("memory.max_usage_in_bytes", "8192\n"),
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.failcnt", "7\n"),
            ("memory.memsw.usage_in_bytes", "4096\n"),
            ("memory.memsw.limit_in_bytes", "134217728\n"),
            ("memory.stat", "cache 1024\nrss 2048\ntotal_cache 1024\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
        ],
    );
    f.populate(
        "pids/s",
        &[
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            ("cgroup.procs", "10\n11\n"),
        ],
    );
    f.populate("pids/s/sub", &[("cgroup.procs", "12\n")]);
    f.populate(
        "blkio/s",
        &[(
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 100\n8:0 Write 200\nTotal 300\n",
        )],
    );
    let cg = Cgroup::with_root(f.root(), Some("/s"), "s").unwrap();
    let s = serde_json::to_value(cg.stats().unwrap()).unwrap();
    let expect = serde_json::json!({
        "cpu": {
            "usage": {"total": 1000, "percpu": [600, 400], "percpu_kernel": [100, 50],
                      "percpu_user": [500, 350], "kernel": 30_000_000u64, "user": 50_000_000u64},
            "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 300}
        },
        "memory": {
            "cache": 1024,
            "usage": {"limit": 67108864, "usage": 4096, "max": 8192, "failcnt": 7},
            "swap": {"limit": 134217728, "usage": 4096, "failcnt": 0},
            "kernel": {"limit": 0, "failcnt": 0},
            "kernelTCP": {"limit": 0, "failcnt": 0},
            "raw": {"cache": 1024, "rss": 2048, "total_cache": 1024}
        },
        "pids": {"current": 3},
        "blkio": {"ioServiceBytesRecursive": [
            {"major": 8, "minor": 0, "op": "Read", "value": 100},
            {"major": 8, "minor": 0, "op": "Write", "value": 200}]},
        "hugetlb": s["hugetlb"].clone(),
    });
    assert_eq!(s, expect);
    assert_eq!(cg.oom_kill_count().unwrap(), 3);
    let mut pids = cg.pids().unwrap();
    pids.sort();
    assert_eq!(pids, [10, 11, 12]);

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    assert_eq!(
        f.writes(),
        w(&[
            ("freezer/s/freezer.state", "FROZEN"),
            ("freezer/s/freezer.state", "THAWED")
        ])
    );
}

#[test]
fn cgroup_round_trips_through_json() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    let cg = Cgroup::with_root(f.root(), Some("/x/y"), "y").unwrap();
    let j = serde_json::to_string(&cg).unwrap();
    assert!(j.contains(r#""version":"v1""#), "{j}");
    let back: Cgroup = serde_json::from_str(&j).unwrap();
    assert_eq!(back, cg);
    let f2 = Fake::new(V2_MOUNTINFO, V2_OWN);
    let cg = Cgroup::with_root(f2.root(), Some("/x/y"), "y").unwrap();
    let back: Cgroup = serde_json::from_str(&serde_json::to_string(&cg).unwrap()).unwrap();
    assert_eq!(back, cg);
}

pub(crate) fn v2_leaf(f: &Fake, dir: &str) {
    f.populate(
        dir,
        &[
            ("cgroup.procs", ""),
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 1\nfrozen 1\n"),
            ("cpu.weight", "100\n"),
            ("cpu.max", "max 100000\n"),
            ("cpu.idle", "0\n"),
            ("cpuset.cpus", ""),
            ("cpuset.mems", ""),
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.low", "0\n"),
            ("memory.high", "max\n"),
            ("pids.max", "max\n"),
            ("io.weight", "default 100\n"),
            ("io.max", ""),
            ("hugetlb.2MB.max", "max\n"),
        ],
    );
}

#[test]
fn v2_paths_create_enables_controllers() {
    let f = Fake::new(V2_MOUNTINFO, V2_OWN);
    // Relative paths go under the parent of the caller's cgroup (runc's fs2 driver).
    let cg = Cgroup::with_root(f.root(), Some("ctr"), "id").unwrap();
    assert!(cg.is_v2());
    assert_eq!(cg.path(), "/user.slice/user-0.slice/ctr");
    assert_eq!(
        cg.hierarchies()[0].dir,
        f.cg().join("user.slice/user-0.slice/ctr")
    );

    f.populate(
        "",
        &[
            ("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n"),
            ("cgroup.subtree_control", ""),
        ],
    );
    f.populate(
        "kubepods",
        &[
            ("cgroup.controllers", "cpu memory\n"),
            ("cgroup.subtree_control", "cpu\n"),
        ],
    );
    let cg = Cgroup::with_root(f.root(), Some("kubepods-pod1.slice:cri:c1"), "c1").unwrap();
    assert_eq!(
        cg.path(),
        "/kubepods.slice/kubepods-pod1.slice/cri-c1.scope"
    );
    let cg = Cgroup::with_root(f.root(), Some("/kubepods/pod1/c1"), "c1").unwrap();
    cg.create().unwrap();
    assert!(f.cg().join("kubepods/pod1/c1").is_dir());
    assert_eq!(
        f.writes(),
        w(&[
            (
                "cgroup.subtree_control",
                "+cpuset +cpu +io +memory +hugetlb +pids"
            ),
            ("kubepods/cgroup.subtree_control", "+memory"),
        ])
    );
    // delete: leaf first, below-leaf cgroups too; missing is fine; parents stay.
    fs::create_dir_all(f.cg().join("kubepods/pod1/c1/nested/deeper")).unwrap();
    cg.delete().unwrap();
    assert!(!f.cg().join("kubepods/pod1/c1").exists());
    assert!(f.cg().join("kubepods/pod1").is_dir());
    cg.delete().unwrap();
    assert!(matches!(cg.pids(), Err(CgroupError::NotFound { .. })));
    assert!(matches!(cg.stats(), Err(CgroupError::NotFound { .. })));
    assert!(matches!(
        cg.oom_kill_count(),
        Err(CgroupError::NotFound { .. })
    ));
}

#[test]
fn v2_apply_writes_exactly() {
    let f = Fake::new(V2_MOUNTINFO, V2_OWN);
    v2_leaf(&f, "c");
    let cg = Cgroup::with_root(f.root(), Some("/c"), "c").unwrap();
    let r = res(r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728,
                   "swappiness": 10, "disableOOMKiller": true},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0",
                "idle": 0},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "network": {"classID": 1048577},
        "unified": {"memory.high": "50000000"}
    }"#);
    cg.apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("c/cpu.weight", "39"),
            ("c/cpu.max", "50000 100000"),
            ("c/cpu.idle", "0"),
            ("c/cpuset.cpus", "0-1"),
            ("c/cpuset.mems", "0"),
            ("c/memory.swap.max", "67108864"),
            ("c/memory.max", "67108864"),
            ("c/memory.low", "33554432"),
            ("c/pids.max", "max"),
            ("c/io.weight", "4950"),
            ("c/io.weight", "8:0 2930"),
            ("c/io.max", "8:0 rbps=1048576"),
            ("c/io.max", "8:16 wiops=100"),
            ("c/hugetlb.2MB.max", "4194304"),
            ("c/memory.high", "50000000"),
        ])
    );
    // quota -1 → "max"; swap == limit → no swap; bfq weights when io.bfq.weight exists.
    f.populate("c", &[("io.bfq.weight", "default 100\n")]);
    cg.apply(&res(r#"{"cpu": {"quota": -1, "period": 50000}, "memory": {"limit": 1048576, "swap": 1048576},
                     "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}]}}"#))
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("c/cpu.max", "max 50000"),
            ("c/memory.swap.max", "0"),
            ("c/memory.max", "1048576"),
            ("c/io.bfq.weight", "500"),
            ("c/io.bfq.weight", "8:0 300"),
        ])
    );
    // v2-only rules.
    let e = cg
        .apply(&res(r#"{"cpu": {"realtimeRuntime": 100}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::Unsupported { .. }), "{e}");
    let e = cg
        .apply(&res(
            r#"{"pids": {"limit": 3}, "unified": {"nope.max": "1"}}"#,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("nope.max"), "{e}");
    assert_eq!(f.writes(), vec![]);
}

#[test]
fn v2_stats_freeze_oom() {
    let f = Fake::new(V2_MOUNTINFO, V2_OWN);
    v2_leaf(&f, "s");
    f.populate(
        "s",
        &[
            ("cpu.stat", "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 1\nthrottled_usec 7\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "67108864\n"),
            ("memory.peak", "8192\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            ("memory.stat", "anon 100\nfile 200\n"),
            ("memory.swap.current", "10\n"),
            ("memory.swap.max", "1000\n"),
            ("pids.current", "2\n"),
            ("pids.max", "10\n"),
            ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
            ("cgroup.procs", "5\n"),
        ],
    );
    let cg = Cgroup::with_root(f.root(), Some("/s"), "s").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 100_000);
    assert_eq!((s.cpu.usage.user, s.cpu.usage.kernel), (60_000, 40_000));
    assert_eq!(s.cpu.throttling.throttled_time, 7000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, 67108864);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.failcnt, 2);
    assert_eq!(s.memory.cache, 200);
    assert_eq!(s.memory.swap.usage, 4106);
    assert_eq!(s.memory.swap.limit, 67109864);
    assert_eq!((s.pids.current, s.pids.limit), (2, 10));
    let io = &s.blkio.io_service_bytes_recursive;
    assert_eq!(io.len(), 3);
    assert_eq!((io[1].op.as_str(), io[1].value), ("Write", 20));
    assert_eq!(s.blkio.io_serviced_recursive.len(), 3);
    assert_eq!(cg.oom_kill_count().unwrap(), 1);
    assert_eq!(cg.pids().unwrap(), [5]);

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert_eq!(
        f.writes(),
        w(&[("s/cgroup.freeze", "1"), ("s/cgroup.freeze", "0")])
    );
}

#[test]
fn v2_oom_event_fd_fires_on_memory_events_change() {
    let f = Fake::new(V2_MOUNTINFO, V2_OWN);
    v2_leaf(&f, "o");
    f.populate("o", &[("memory.events", "oom 0\noom_kill 0\n")]);
    let cg = Cgroup::with_root(f.root(), Some("/o"), "o").unwrap();
    let fd = cg.oom_event_fd().unwrap();
    let poll = |ms: u16| {
        let mut p = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut p, nix::poll::PollTimeout::from(ms)).unwrap()
    };
    assert_eq!(poll(0), 0);
    f.populate("o", &[("memory.events", "oom 1\noom_kill 1\n")]);
    assert_eq!(poll(1000), 1);
    assert_eq!(cg.oom_kill_count().unwrap(), 1);
    // No memory controller at all on v1 → a clear error.
    let f1 = Fake::new(
        "35 25 0:32 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
        "",
    );
    let cg = Cgroup::with_root(f1.root(), Some("/o"), "o").unwrap();
    assert!(matches!(
        cg.oom_event_fd(),
        Err(CgroupError::OomEvent { .. })
    ));
    assert_eq!(cg.oom_kill_count().unwrap(), 0);
}

/// `of_pid`'s resolution (here from the fake `proc/self/cgroup`): each hierarchy's directory
/// is where the process sits in it, v1 controllers may differ, the unified one joins; the
/// memory dir and its OOM counters come from the same place (what the shim reads by pid).
#[test]
fn a_process_cgroup_is_found_per_hierarchy() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    f.populate(
        "memory/user.slice/session-1.scope",
        &[(
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )],
    );
    let cg = Cgroup::of_process_with_root(f.root()).unwrap();
    assert_eq!(cg.path(), "/user.slice/session-1.scope");
    assert!(!cg.is_v2());
    let dir = |c: &str| -> PathBuf {
        let hs = cg.hierarchies();
        let h = hs.iter().find(|h| h.controllers.split(',').any(|x| x == c));
        h.unwrap_or_else(|| panic!("{c} in {hs:?}")).dir.clone()
    };
    assert_eq!(
        dir("memory"),
        f.cg().join("memory/user.slice/session-1.scope")
    );
    assert_eq!(dir("pids"), f.cg().join("pids/user.slice"));
    assert_eq!(dir("cpuset"), f.cg().join("cpuset"));
    let unified = cg
        .hierarchies()
        .into_iter()
        .find(|h| h.controllers.is_empty());
    assert_eq!(
        unified.unwrap().dir,
        f.cg().join("unified/user.slice/session-1.scope")
    );
    assert_eq!(cg.memory_dir(), Some(dir("memory").as_path()));
    assert_eq!(cg.oom_kill_count().unwrap(), 2);
    let ev = cg.memory_events().unwrap();
    assert_eq!((ev["oom_kill"], ev["under_oom"]), (2, 0));

    let f = Fake::new(V2_MOUNTINFO, V2_OWN);
    f.populate(
        "user.slice/user-0.slice/session-1.scope",
        &[("memory.events", "low 0\nhigh 1\nmax 3\noom 1\noom_kill 1\n")],
    );
    let cg = Cgroup::of_process_with_root(f.root()).unwrap();
    assert!(cg.is_v2());
    let d = f.cg().join("user.slice/user-0.slice/session-1.scope");
    assert_eq!(cg.memory_dir(), Some(d.as_path()));
    let ev = cg.memory_events().unwrap();
    assert_eq!((ev["max"], ev["oom_kill"]), (3, 1));
    std::fs::remove_dir_all(&d).unwrap();
    assert!(matches!(
        cg.memory_events(),
        Err(CgroupError::NotFound { .. })
    ));
}
