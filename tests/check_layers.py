#!/usr/bin/env python3
"""Checks the include graph of include/socketserver against the floors docs/design.md draws.

usage: check_layers.py REPOSITORY_ROOT

docs/design.md holds a block between the lines `<!-- floors -->` and `<!-- /floors -->`: one
line per floor, `floor N: PATTERN...`, highest first. A pattern is a header's path under
include/socketserver (`async.hpp`), a folder's headers at any depth (`async/**`) or every
header at the top (`*.hpp`). A header belongs to the floor of its most specific pattern: a
name beats a folder, a folder beats `*.hpp`. Every header must belong to a floor, and may
include only headers on its own floor or below: an include that runs up fails the check. Every
header must also be reached from the top floor's (the umbrellas): CI's clang-tidy analyses the
headers through the umbrellas' units alone.
"""
import pathlib
import re
import sys


def read_floors(design):
    text = design.read_text()
    match = re.search(r"<!-- floors -->(.*?)<!-- /floors -->", text, re.S)
    if not match:
        sys.exit(f"{design}: no <!-- floors --> block")
    floors = []
    for line in match.group(1).splitlines():
        found = re.match(r"\s*floor (\d+):\s*(.*)", line)
        if found:
            floors.append((int(found.group(1)), found.group(2).split()))
    if not floors:
        sys.exit(f"{design}: the floors block names no floor")
    return floors


def specificity(pattern, header):
    """How specifically `pattern` names `header` (0: not at all)."""
    if pattern == header:
        return 3
    if pattern.endswith("/**") and header.startswith(pattern[:-2]):
        return 2
    if pattern == "*.hpp" and "/" not in header:
        return 1
    return 0


def floor_of(header, floors):
    best, floor = 0, None
    for number, patterns in floors:
        for pattern in patterns:
            score = specificity(pattern, header)
            if score > best:
                best, floor = score, number
    return floor


def main():
    root = pathlib.Path(sys.argv[1])
    include = root / "include" / "socketserver"
    floors = read_floors(root / "docs" / "design.md")
    headers = sorted(str(p.relative_to(include)) for p in include.rglob("*.hpp"))
    problems = []
    floor = {}
    for header in headers:
        floor[header] = floor_of(header, floors)
        if floor[header] is None:
            problems.append(f"{header}: on no floor of docs/design.md")
    edges = 0
    includes = {}
    for header in headers:
        includes[header] = re.findall(r"#include <socketserver/([^>]+)>", (include / header).read_text())
        for target in includes[header]:
            edges += 1
            if target not in floor:
                problems.append(f"{header} includes {target}, which does not exist")
            elif None not in (floor[header], floor[target]) and floor[target] > floor[header]:
                problems.append(f"{header} (floor {floor[header]}) includes {target} (floor {floor[target]}): "
                                "an include that runs up")
    top = max((f for f in floor.values() if f is not None), default=None)
    reached, todo = set(), [h for h in headers if floor[h] == top]
    while todo:
        header = todo.pop()
        if header not in reached:
            reached.add(header)
            todo += [t for t in includes.get(header, []) if t in floor]
    problems += [f"{header}: not reached from the umbrellas (floor {top})" for header in headers
                 if header not in reached]
    for problem in problems:
        print(problem)
    print(f"{len(headers)} headers on {len(floors)} floors, {edges} includes, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
