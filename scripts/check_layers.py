#!/usr/bin/python3
"""The layer rule, checked: every `#include "layer/..."` under src/<layer>/ names that layer itself
or a layer it may use, as cmake/layers.cmake declares it (dsinfer_layer(NAME DEPS dsinfer_x ...),
transitively; base sits under everything). A new include that reaches up or sideways fails here
instead of linking by luck through a library that happens to come along.

  scripts/check_layers.py [REPO_ROOT]      exit 0 when every include is declared
"""
import os
import re
import sys


def declared_layers(root):
    text = open(os.path.join(root, "CMakeLists.txt")).read() + open(os.path.join(root, "cmake", "layers.cmake")).read()
    deps = {}
    for name, args in re.findall(r"^\s*dsinfer_layer\((\w+)\s+DEPS([^)]*)\)", text, re.M):
        deps[name] = set(re.findall(r"dsinfer_(\w+)", args))
    return deps


def closure(deps, layer, seen=None):
    seen = set() if seen is None else seen
    for d in deps.get(layer, ()):
        if d not in seen:
            seen.add(d)
            closure(deps, d, seen)
    return seen


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    deps = declared_layers(root)
    if "base" not in deps or "engine" not in deps:
        sys.exit("could not read the layers from cmake/layers.cmake")
    problems = []
    src = os.path.join(root, "src")
    for layer in sorted(os.listdir(src)):
        if not os.path.isdir(os.path.join(src, layer)):
            continue
        if layer not in deps:
            problems.append(f"src/{layer}/ is not declared in cmake/layers.cmake")
            continue
        allowed = closure(deps, layer) | {layer, "base"}
        for name in sorted(os.listdir(os.path.join(src, layer))):
            path = os.path.join(src, layer, name)
            for n, line in enumerate(open(path, errors="replace"), 1):
                m = re.match(r'\s*#\s*include\s+"(\w+)/', line)
                if m and m.group(1) in deps and m.group(1) not in allowed:
                    problems.append(f"src/{layer}/{name}:{n} includes {m.group(1)}/, which {layer} does not "
                                    f"declare (it may use: {', '.join(sorted(allowed))})")
    for p in problems:
        print(p)
    print(f"{len(deps)} layers, {'no' if not problems else len(problems)} undeclared includes")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
