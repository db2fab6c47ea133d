#!/usr/bin/env python3
"""Builds stand-ins for the images critest v1.26 pulls and pushes them to a loopback
registry (no internet here). Usage: images.py HOST:PORT (see README.md here)

Contents come from this machine: Debian's busybox (base of every image), nginx and
apache2-bin from Debian packages (apt-get download + dpkg -x, libraries found with ldd), a
small setuid C program for nonewprivs. Names keep their upstream repository paths, so a
runtime maps `registry.k8s.io` and `gcr.io` to this registry with its mirror config.
"""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile, tempfile, urllib.request

HOST = sys.argv[1]
WORK = os.environ.get("CRITEST_IMAGES_WORK", "/var/tmp/crust-critest-images")
DEBS = os.path.join(WORK, "debs")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
www-data:x:33:
users:x:100:
nogroup:x:65534:
"""


class Layer:
    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.seen = set()

    def _info(self, path, kind, mode):
        ti = tarfile.TarInfo(path)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, 0, 0, 1500000000
        return ti

    def dirs(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.seen:
                self.seen.add(d)
                self.tar.addfile(self._info(d, tarfile.DIRTYPE, 0o755))

    def dir(self, path, mode=0o755):
        path = path.strip("/")
        self.dirs(path)
        if path not in self.seen:
            self.seen.add(path)
            self.tar.addfile(self._info(path, tarfile.DIRTYPE, mode))

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.dirs(path)
        if isinstance(data, str):
            data = data.encode()
        ti = self._info(path, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, path, target):
        path = path.strip("/")
        self.dirs(path)
        ti = self._info(path, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, path, target):
        ti = self._info(path, tarfile.LNKTYPE, 0o755)
        ti.linkname = target
        self.tar.addfile(ti)

    def host_file(self, src, dst=None, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        self.file(dst or src, data, mode if mode is not None else os.stat(src).st_mode & 0o7777)

    def binary_with_libs(self, src, dst=None):
        """A dynamically linked binary and every library ldd finds for it."""
        self.host_file(src, dst)
        out = subprocess.run(["ldd", src], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if lib.startswith("/") and lib not in self.seen:
                self.seen.add(lib)
                self.host_file(os.path.realpath(lib), lib, 0o755)

    def finish(self):
        self.tar.close()
        return self.buf.getvalue()


def base_layer(passwd=PASSWD, group=GROUP):
    l = Layer()
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "var/run", "var/www", "home"]:
        l.dir(d, 0o700 if d == "root" else 0o755)
    l.dir("tmp", 0o1777)
    # Debian's dynamically linked busybox: busybox-static prefers its applets to PATH (sh
    # runs `ls` in-process), which the busybox image critest uses does not.
    bb = os.path.join(deb_root("busybox"), "bin/busybox")
    l.binary_with_libs(bb, "bin/busybox")
    # Every applet a hard link in /bin, as in the busybox image critest uses (a masked
    # path then masks that one name, not busybox itself).
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True)
    for a in applets.stdout.split():
        if a != "busybox":
            l.hardlink("bin/" + a, "bin/busybox")
    # Debian's busybox-static has no ipcs applet (upstream busybox, critest's image, has):
    # util-linux's, which needs only libc.
    l.binary_with_libs("/usr/bin/ipcs", "usr/bin/ipcs")
    # Nor pgrep: procps'.
    l.binary_with_libs("/usr/bin/pgrep", "usr/bin/pgrep")
    l.file("etc/passwd", passwd)
    l.file("etc/group", group)
    return l.finish()


def deb_root(pkg):
    root = os.path.join(WORK, "root-" + pkg)
    if not os.path.isdir(root):
        os.makedirs(DEBS, exist_ok=True)
        subprocess.run(["apt-get", "download", pkg], cwd=DEBS, check=True)
        deb = [f for f in os.listdir(DEBS) if f.startswith(pkg + "_")][0]
        subprocess.run(["dpkg", "-x", os.path.join(DEBS, deb), root], check=True)
    return root


NGINX_CONF = """user www-data;
worker_processes 1;
pid /var/run/nginx.pid;
error_log /dev/stderr notice;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log /dev/stdout;
    server {
        listen PORT;
        location / { root /usr/share/nginx/html; index index.html; }
    }
}
"""


def nginx_layer(port):
    l = Layer()
    l.binary_with_libs(os.path.join(deb_root("nginx"), "usr/sbin/nginx"), "usr/sbin/nginx")
    common = deb_root("nginx-common")
    l.host_file(os.path.join(common, "etc/nginx/mime.types"), "etc/nginx/mime.types")
    l.host_file(os.path.join(common, "usr/share/nginx/html/index.html"), "usr/share/nginx/html/index.html")
    l.file("etc/nginx/nginx.conf", NGINX_CONF.replace("PORT", str(port)))
    for d in ["var/log/nginx", "var/lib/nginx", "usr/lib/nginx/modules"]:
        l.dir(d)
    return l.finish()


HTTPD_CONF = """ServerRoot /usr/local/apache2
Listen 80
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule dir_module modules/mod_dir.so
User www-data
Group www-data
ServerName localhost
DocumentRoot /usr/local/apache2/htdocs
DirectoryIndex index.html
ErrorLog /proc/self/fd/2
LogLevel notice
PidFile logs/httpd.pid
<Directory />
    Require all granted
</Directory>
"""


def httpd_layer():
    l = Layer()
    root = deb_root("apache2-bin")
    l.binary_with_libs(os.path.join(root, "usr/sbin/apache2"), "usr/local/apache2/bin/httpd")
    for m in ["mpm_event", "authz_core", "dir"]:
        src = os.path.join(root, "usr/lib/apache2/modules/mod_%s.so" % m)
        l.binary_with_libs(src, "usr/local/apache2/modules/mod_%s.so" % m)
    # Debian builds apache2 with /etc/apache2/apache2.conf as its default config file.
    l.file("etc/apache2/apache2.conf", HTTPD_CONF)
    # glibc dlopens it for pthread_exit (not in ldd's list).
    l.host_file("/lib/x86_64-linux-gnu/libgcc_s.so.1", "lib/x86_64-linux-gnu/libgcc_s.so.1")
    l.file("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n")
    l.dir("usr/local/apache2/logs")
    return l.finish()


NNP_C = r"""#include <stdio.h>
#include <unistd.h>
int main(void) { printf("Effective uid: %d\n", (int)geteuid()); return 0; }
"""


def nnp_layer():
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "nnp.c"), "w") as f:
            f.write(NNP_C)
        subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(d, "nnp"), os.path.join(d, "nnp.c")], check=True)
        l = Layer()
        l.host_file(os.path.join(d, "nnp"), "usr/local/bin/nnp", 0o4755)
        return l.finish()


PAUSE_C = r"""#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void done(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, done); signal(SIGTERM, done); signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


def pause_layer():
    """A sandbox image for containerd's comparison run (crust has none)."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "pause.c"), "w") as f:
            f.write(PAUSE_C)
        subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(d, "pause"), os.path.join(d, "pause.c")], check=True)
        l = Layer()
        l.host_file(os.path.join(d, "pause"), "pause", 0o755)
        return l.finish()


def marker_layer(name):
    l = Layer()
    l.file(name, "")
    return l.finish()


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    return urllib.request.urlopen(r)


def push_blob(repo, blob):
    d = sha(blob)
    try:
        req("HEAD", "http://%s/v2/%s/blobs/%s" % (HOST, repo, d))
        return d
    except urllib.error.HTTPError:
        pass
    loc = req("POST", "http://%s/v2/%s/blobs/uploads/" % (HOST, repo)).headers["Location"]
    if loc.startswith("/"):
        loc = "http://" + HOST + loc
    sep = "&" if "?" in loc else "?"
    req("PUT", loc + sep + "digest=" + d, blob, {"Content-Type": "application/octet-stream"})
    return d


_gz = {}


def gz(layer):
    k = hashlib.sha256(layer).digest()
    if k not in _gz:
        _gz[k] = gzip.compress(layer, mtime=0)
    return _gz[k]


def push(name, layers, cmd, user="", ports=(), env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)):
    repo, tag = name.rsplit(":", 1)
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": list(env), "Cmd": cmd, "User": user, "WorkingDir": "/",
                   "ExposedPorts": {"%d/tcp" % p: {} for p in ports}},
        "rootfs": {"type": "layers", "diff_ids": [sha(l) for l in layers]},
        "history": [{"created_by": "crust critest stand-in (e2e/critest/images.py)"}],
    }
    cb = json.dumps(config).encode()
    descs = []
    for l in layers:
        g = gz(l)
        descs.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                      "digest": push_blob(repo, g), "size": len(g)})
    mt = "application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": push_blob(repo, cb), "size": len(cb)},
        "layers": descs,
    }).encode()
    req("PUT", "http://%s/v2/%s/manifests/%s" % (HOST, repo, tag), manifest, {"Content-Type": mt})
    print("pushed", name, sha(manifest))


def main():
    base = base_layer()
    e2e = "e2e-test-images/"
    cri = "k8s-staging-cri-tools/"
    push(e2e + "busybox:1.29-2", [base], ["sh"])
    push("pause:3.6", [pause_layer()], ["/pause"])
    push(e2e + "nginx:1.14-2", [base, nginx_layer(80)], ["nginx", "-g", "daemon off;"], ports=[80])
    push(cri + "hostnet-nginx-amd64:latest", [base, nginx_layer(12003)], ["nginx", "-g", "daemon off;"], ports=[12003])
    push(e2e + "httpd:2.4.39-4", [base, httpd_layer()], ["httpd", "-D", "FOREGROUND"], ports=[80],
         env=("PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",))
    push(e2e + "nonewprivs:1.3", [base, nnp_layer()], ["/usr/local/bin/nnp"])
    for name, user in [("test-image-user-uid", "1002"), ("test-image-user-username", "www-data"),
                       ("test-image-user-uid-group", "1003:1004"), ("test-image-user-username-group", "www-data:1004")]:
        push(cri + name + ":latest", [base], ["sh"], user=user)
    pg = base_layer(PASSWD + "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n",
                    GROUP + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")
    push(cri + "test-image-predefined-group:latest", [pg], ["sh"], user="1000")
    for name in ["test-image-1", "test-image-2", "test-image-3", "test-image-latest", "test-image-digest"]:
        push(cri + name + ":latest", [base, marker_layer(name)], ["sh"])
    for t in ["1", "2", "3"]:
        push(cri + "test-image-tags:" + t, [base, marker_layer("same-image")], ["sh"])
    for t in ["test", "all"]:
        push(cri + "test-image-tag:" + t, [base, marker_layer(t)], ["sh"])


main()
