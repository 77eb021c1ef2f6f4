#!/usr/bin/env python3
"""Fails unless docs/tutorial.md's code is the project's code.

usage: check_tutorial.py SOURCE_DIR

Every ```cpp block in the tutorial follows a marker: `<!-- program: PATH -->` (the block is the
file PATH, verbatim: the build compiles it) or `<!-- excerpt: PATH -->` (the block appears in
PATH as it is). Every program in examples/tutorial/ is shown in the tutorial.
"""
import re
import sys
from pathlib import Path


def main():
    root = Path(sys.argv[1])
    text = (root / "docs" / "tutorial.md").read_text()
    problems = []
    shown = set()
    blocks = list(re.finditer(r"(?:<!-- (program|excerpt): (\S+) -->\n)?```cpp\n(.*?)```", text, re.S))
    for block in blocks:
        kind, path, code = block.groups()
        line = text.count("\n", 0, block.start()) + 1
        if kind is None:
            problems.append(f"line {line}: a cpp block without a program or excerpt marker")
            continue
        source = root / path
        if not source.exists():
            problems.append(f"line {line}: {path} does not exist")
            continue
        content = source.read_text()
        if kind == "program":
            shown.add(path)
            if code != content:
                problems.append(f"line {line}: the block is not {path} verbatim: copy the file into it")
        elif code.rstrip("\n") not in content:
            problems.append(f"line {line}: the block is not an excerpt of {path} as it is now")
    for program in sorted((root / "examples" / "tutorial").glob("*.cpp")):
        path = str(program.relative_to(root))
        if path not in shown:
            problems.append(f"{path} is not shown in docs/tutorial.md")
    if problems:
        sys.exit("docs/tutorial.md:\n" + "\n".join(problems))
    print(f"ok: {len(blocks)} code blocks, {len(shown)} programs")


if __name__ == "__main__":
    main()
