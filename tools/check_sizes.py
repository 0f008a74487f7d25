#!/usr/bin/env python3
"""Size limits of the sources: no file in Sources over 400 lines, no function over 60 lines.

A function may be longer only when the line before it (or its doc comment) says
`// size: field list` or `// size: derivative switch`: a codec's one case per field, or the one
switch that holds every derivative. Generated files (first line `// DO NOT EDIT.`) are skipped.
  python3 tools/check_sizes.py [ROOT]
"""
import pathlib
import re
import sys

MAX_FILE, MAX_FUNCTION = 400, 60
DECLARATION = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|private|fileprivate|internal|package|static|class|"
                         r"mutating|nonmutating|nonisolated|override|final|convenience|required)(?:\([^)]*\))?\s+)*"
                         r"(?:func\s+\S|init[?!]?\s*[(<]|deinit\b|(?:var|subscript)\b.*\{\s*$)")
EXEMPT = re.compile(r"//\s*size:\s*(field list|derivative switch)")


def code(line):
    """The line without string literals and // comments (enough to count braces)."""
    line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
    return line.split("//", 1)[0]


def functions(lines):
    """(first line, length, name) of every function-like body."""
    for i, line in enumerate(lines):
        if not DECLARATION.match(line):
            continue
        depth, opened = 0, False
        for j in range(i, len(lines)):
            text = code(lines[j])
            depth += text.count("{") - text.count("}")
            opened = opened or "{" in text
            if opened and depth <= 0:
                yield i, j - i + 1, line.strip()
                break
            if not opened and j > i + 12:  # a requirement or a declaration without a body
                break


def exempt(lines, i):
    for k in range(i - 1, max(-1, i - 12), -1):
        text = lines[k].strip()
        if EXEMPT.search(text):
            return True
        if not (text.startswith("//") or text.startswith("@")):
            return False
    return False


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    problems = []
    for path in sorted((root / "Sources").rglob("*.swift")):
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines[0].startswith("// DO NOT EDIT."):  # generated (protoc-gen-swift): its source is the .proto
            continue
        if len(lines) > MAX_FILE:
            problems.append(f"{path}: {len(lines)} lines (at most {MAX_FILE}): split it by what its parts do")
        for i, length, name in functions(lines):
            if length > MAX_FUNCTION and not exempt(lines, i):
                problems.append(f"{path}:{i + 1}: {length} lines (at most {MAX_FUNCTION}): {name[:70]}")
    for p in problems:
        print(p)
    if problems:
        print(f"check_sizes: {len(problems)} over the limits")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
