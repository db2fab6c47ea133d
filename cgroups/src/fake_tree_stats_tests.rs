//! The stats readers on fake cgroupfs trees (v1 hybrid, v1 without cpuacct, v2): the cheap
//! [`Cgroup::cpu_usage`] and the derived [`Memory`](crate::Memory) values callers report
//! (working set, RSS, cache, swap, limit), checked against the files' contents.

use crate::fake_tree_tests::{
    hybrid_leaf, v2_leaf, Fake, HYBRID_MOUNTINFO, HYBRID_OWN, V2_MOUNTINFO, V2_OWN,
};
use crate::{Cgroup, CgroupError};

/// v1 memory.stat of a pod-level cgroup: the `total_*` keys include its children, the plain
/// ones only its own pages (none here), so the derived values must use `total_*`.
const V1_POD_MEMORY_STAT: &str = "\
cache 0\nrss 0\nmapped_file 0\ninactive_file 0\nactive_file 0\npgfault 0\npgmajfault 0\n\
hierarchical_memory_limit 67108864\n\
total_cache 3000\ntotal_rss 5000\ntotal_mapped_file 700\ntotal_inactive_file 1000\n\
total_active_file 2000\ntotal_pgfault 40\ntotal_pgmajfault 4\n";

#[test]
fn v1_cpu_usage_and_hierarchical_memory() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    hybrid_leaf(&f, "/pod");
    f.populate(
        "cpu,cpuacct/pod",
        &[
            ("cpuacct.usage", "123456789\n"),
            ("cpuacct.stat", "user 1\nsystem 2\n"),
        ],
    );
    f.populate(
        "memory/pod",
        &[
            ("memory.usage_in_bytes", "9000\n"),
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.memsw.usage_in_bytes", "9500\n"),
            ("memory.memsw.limit_in_bytes", "134217728\n"),
            ("memory.stat", V1_POD_MEMORY_STAT),
        ],
    );
    let cg = Cgroup::with_root(f.root(), Some("/pod"), "pod").unwrap();
    assert_eq!(cg.cpu_usage().unwrap(), 123_456_789);
    let m = cg.stats().unwrap().memory;
    assert_eq!(
        m.working_set(),
        8000,
        "usage 9000 - total_inactive_file 1000"
    );
    assert_eq!(m.rss(), 5000);
    assert_eq!(m.page_cache(), 3000);
    assert_eq!(m.mapped_file(), 700);
    assert_eq!((m.stat("pgfault"), m.stat("pgmajfault")), (40, 4));
    assert_eq!(m.limit(), Some(67_108_864));
    assert_eq!(m.swap_usage(), Some(500), "memsw 9500 - usage 9000");
}

#[test]
fn v1_unlimited_memory_and_no_swap_accounting() {
    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    hybrid_leaf(&f, "/c");
    // hybrid_leaf's limits are the kernel's "unlimited"; a kernel without swap accounting
    // has no memsw files.
    std::fs::remove_file(f.cg().join("memory/c/memory.memsw.limit_in_bytes")).unwrap();
    f.populate(
        "memory/c",
        &[
            ("memory.usage_in_bytes", "100\n"),
            ("memory.stat", "rss 60\ncache 40\ninactive_file 30\n"),
        ],
    );
    let m = Cgroup::with_root(f.root(), Some("/c"), "c")
        .unwrap()
        .stats()
        .unwrap()
        .memory;
    assert_eq!(m.limit(), None);
    assert_eq!(m.swap_usage(), None);
    assert_eq!((m.working_set(), m.rss(), m.page_cache()), (70, 60, 40));
}

#[test]
fn v1_without_cpuacct_reads_zero_and_missing_cgroup_is_not_found() {
    let mountinfo = "\
25 1 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw
28 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
    let f = Fake::new(mountinfo, "4:memory:/\n");
    f.populate("memory/c", &[("cgroup.procs", "")]);
    let cg = Cgroup::with_root(f.root(), Some("/c"), "c").unwrap();
    assert_eq!(cg.cpu_usage().unwrap(), 0);

    let f = Fake::new(HYBRID_MOUNTINFO, HYBRID_OWN);
    let gone = Cgroup::with_root(f.root(), Some("/gone"), "gone").unwrap();
    assert!(matches!(
        gone.cpu_usage(),
        Err(CgroupError::NotFound { .. })
    ));
}

#[test]
fn v2_cpu_usage_and_memory() {
    let f = Fake::new(V2_MOUNTINFO, V2_OWN);
    v2_leaf(&f, "pod");
    f.populate(
        "pod",
        &[
            ("cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"),
            ("memory.current", "10000\n"),
            ("memory.max", "max\n"),
            (
                "memory.stat",
                "anon 6000\nfile 3000\nfile_mapped 800\ninactive_file 2500\nactive_file 500\npgfault 9\npgmajfault 1\n",
            ),
            ("memory.swap.current", "300\n"),
            ("memory.swap.max", "max\n"),
        ],
    );
    let cg = Cgroup::with_root(f.root(), Some("/pod"), "pod").unwrap();
    assert_eq!(cg.cpu_usage().unwrap(), 2_500_000);
    let m = cg.stats().unwrap().memory;
    assert_eq!(m.working_set(), 7500, "current 10000 - inactive_file 2500");
    assert_eq!(
        (m.rss(), m.page_cache(), m.mapped_file()),
        (6000, 3000, 800)
    );
    assert_eq!((m.stat("pgfault"), m.stat("pgmajfault")), (9, 1));
    assert_eq!(m.limit(), None, "memory.max is max");
    assert_eq!(m.swap_usage(), Some(300));

    std::fs::remove_file(f.cg().join("pod/cpu.stat")).unwrap();
    assert_eq!(cg.cpu_usage().unwrap(), 0, "no cpu.stat: nothing accounted");
    let gone = Cgroup::with_root(f.root(), Some("/gone"), "gone").unwrap();
    assert!(matches!(
        gone.cpu_usage(),
        Err(CgroupError::NotFound { .. })
    ));
}
