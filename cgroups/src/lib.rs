//! cgroup v1, v2 and hybrid hierarchies: create, limit, freeze, stats, delete.
