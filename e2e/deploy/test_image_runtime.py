"""deploy/Dockerfile's runtime stage installs every shared library the attache
binary needs (directly or through the packages' own dependencies), so the
image starts. Checked against this machine's Debian 12 packages, which are
the ones the image uses; no container runtime is needed."""
import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
ATTACHE_BIN = os.environ.get("ATTACHE_BIN", str(ROOT / "build" / "attache"))


def runtime_packages():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    block = text.split("# RUNTIME-PACKAGES-BEGIN")[1].split("# RUNTIME-PACKAGES-END")[0]
    words = block.split("--no-install-recommends", 1)[1].split("&&")[0]
    return {w for w in words.replace("\\", " ").split() if w}


def package_of(library):
    for path in (library, "/usr" + library):
        out = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":", 1)[0]
    raise AssertionError(f"no Debian package ships {library}")


def closure(packages):
    """The packages and everything they depend on, as installed here."""
    seen, todo = set(), list(packages)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        out = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", name],
                             capture_output=True, text=True)
        assert out.returncode == 0, f"{name} is not a package installed here"
        for alternative in re.split(r"[,|]", out.stdout):
            dep = alternative.strip().split(" ")[0].split(":")[0]
            if dep:
                todo.append(dep)
    return seen


def test_runtime_stage_provides_every_shared_library():
    listed = runtime_packages()
    assert "libgrpc++1.51" in listed and "ca-certificates" in listed, listed
    ldd = subprocess.run(["ldd", ATTACHE_BIN], capture_output=True, text=True, check=True)
    libraries = [line.split("=>")[1].split("(")[0].strip()
                 for line in ldd.stdout.splitlines() if "=>" in line]
    assert libraries, ldd.stdout
    needed = {package_of(library) for library in libraries}
    missing = needed - closure(listed)
    assert not missing, f"add to the runtime stage of deploy/Dockerfile: {sorted(missing)}"
