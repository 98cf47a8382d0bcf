#!/usr/bin/env python3
"""Fails when a workspace crate depends on a crate of its own or a higher layer (run by
scripts/test.sh). The layers are the README's architecture drawing; `cargo metadata` gives the
real edges (normal and build dependencies; dev-dependencies may reach anywhere below the CLI).
A crate missing from LAYERS is an error too, so a new crate gets a place in the drawing."""
import json, subprocess, sys

LAYERS = [
    ["mixed-r1-stable-hash", "mixed-r1-plot"],
    ["mixed-r1-reward"],
    ["mixed-r1-data", "mixed-r1-model", "mixed-r1-grpo", "mixed-r1-server"],
    ["mixed-r1-eval", "mixed-r1-train"],
    ["mixed-r1-recipes"],
    ["mixed-r1"],
]
layer = {name: i for i, names in enumerate(LAYERS) for name in names}

meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"]))
bad = []
for pkg in meta["packages"]:
    name = pkg["name"]
    if name not in layer:
        bad.append(f"{name}: not in scripts/crate_layers.py's LAYERS (add it to the drawing)")
        continue
    for dep in pkg["dependencies"]:
        if dep["kind"] == "dev" or dep["name"] not in layer:
            continue
        if layer[dep["name"]] >= layer[name]:
            bad.append(f"{name} (layer {layer[name]}) -> {dep['name']} (layer {layer[dep['name']]})")
for b in bad:
    print("crate graph:", b)
if bad:
    sys.exit(1)
print(f"crate graph: {len(meta['packages'])} crates, every edge points down")
