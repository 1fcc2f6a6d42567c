#!/usr/bin/env python3
"""Checks the minimum supported Rust version (MSRV) of the published crates
against their dependencies.

    scripts/msrv.py

For each published crate (wsproto-core, wsproto-std, wsproto-tokio) it lists
the normal and build dependencies on x86_64 Linux, with every feature on, as
Cargo.lock resolves them (`cargo tree`), and fails if one of them declares a `rust-version` newer
than the workspace's. This machine has one toolchain, so the MSRV cannot be
compiled here; clippy's `incompatible_msrv` lint (on in CI through
`cargo clippy -D warnings`) checks our own use of the standard library
against the same `rust-version`.
"""
import json
import subprocess
import sys

PUBLISHED = ["wsproto-core", "wsproto-std", "wsproto-tokio"]


def version(v):
    return tuple(int(x) for x in v.split(".")) + (0,) * (3 - len(v.split(".")))


meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
by_name = {(p["name"], p["version"]): p for p in meta["packages"]}
TARGET = "x86_64-unknown-linux-gnu"
failed = False
for name in PUBLISHED:
    root = next(p for p in meta["packages"] if p["name"] == name and p["id"] in meta["workspace_members"])
    msrv = root.get("rust_version")
    if not msrv:
        print(f"{name}: no rust-version in Cargo.toml")
        failed = True
        continue
    # cargo tree evaluates the cfg(target) conditions that cargo metadata
    # leaves unevaluated (wasm-only and macOS-only crates drop out).
    tree = subprocess.run(
        ["cargo", "tree", "-p", name, "--all-features", "-e", "normal,build",
         "--target", TARGET, "--prefix", "none", "--format", "{p}", "--locked"],
        check=True, capture_output=True, text=True,
    ).stdout
    deps = set()
    for line in tree.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("v"):
            deps.add((parts[0], parts[1][1:]))
    deps.discard((name, root["version"]))
    newest = ("0", None)
    for dep in sorted(deps):
        p = by_name.get(dep)
        rv = p.get("rust_version") if p else None
        if rv and version(rv) > version(newest[0]):
            newest = (rv, f"{dep[0]} {dep[1]}")
        if rv and version(rv) > version(msrv):
            print(f"{name}: {dep[0]} {dep[1]} needs Rust {rv}, above our {msrv}")
            failed = True
    print(f"{name}: rust-version {msrv}; {len(deps)} dependencies on {TARGET} (all features), newest requirement {newest[0]} ({newest[1]})")
sys.exit(1 if failed else 0)
