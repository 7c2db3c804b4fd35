#!/usr/bin/env python3
"""Run one example binary and compare its output with an expected-output file.

Usage: python3 check_output.py <binary> <expected-file>

The binary runs with a 30 s timeout in its own process group. The check fails (exit 1, with a
diff) when stdout does not match the expected file, when the program exits with a non-zero status,
writes anything to stderr, times out, or leaves processes of its group running after it exits
(a daemonic child that was not terminated, a child that was not joined).

Expected-file syntax, line by line (a trailing newline in the file is ignored):

  text             an output line, compared exactly, except for these placeholders:
                     {pid}   a positive integer (a process id)
                     {num}   a number (integer or decimal, optionally negative)
                     {any}   any text, possibly empty
                   A placeholder may be named, e.g. {pid:parent}: every occurrence of the same
                   name, in any line, must then match the same text, so a file can say "the
                   child's parent is the process that printed `I am {pid:parent}`".
  # unordered      (header, first line) compare the whole output as a multiset of lines.
  # begin unordered / # end unordered
                   the lines between them may appear in any order, in place of the group
                   (for the lines of concurrent processes between fixed lines).
  # allow-orphans  (header) the program may leave processes running after it exits (they
                   are waited for through stdout, and killed at the timeout).

Stdlib only.
"""

import difflib
import os
import re
import signal
import subprocess
import sys
import threading
import time

TIMEOUT = 30.0

PLACEHOLDER = re.compile(r"\{(pid|num|any)(?::([A-Za-z_][A-Za-z0-9_]*))?\}")
KIND_REGEX = {
    "pid": r"[1-9]\d*",
    "num": r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?",
    "any": r".*",
}


class Pattern:
    """One expected line: literal text with placeholders."""

    def __init__(self, text, lineno):
        self.text = text
        self.lineno = lineno
        self.parts = []  # literal strings and (kind, name) tuples
        pos = 0
        for m in PLACEHOLDER.finditer(text):
            self.parts.append(text[pos:m.start()])
            self.parts.append((m.group(1), m.group(2)))
            pos = m.end()
        self.parts.append(text[pos:])

    def match(self, line, bindings):
        """Returns the bindings extended by this line, or None when it does not match."""
        regex = []
        seen = set()
        for part in self.parts:
            if isinstance(part, str):
                regex.append(re.escape(part))
                continue
            kind, name = part
            if name is None:
                regex.append("(?:%s)" % KIND_REGEX[kind])
            elif name in bindings:
                regex.append(re.escape(bindings[name]))
            elif name in seen:
                regex.append("(?P=%s)" % name)
            else:
                seen.add(name)
                regex.append("(?P<%s>%s)" % (name, KIND_REGEX[kind]))
        m = re.fullmatch("".join(regex), line)
        if m is None:
            return None
        if not seen:
            return bindings
        extended = dict(bindings)
        extended.update({name: m.group(name) for name in seen})
        return extended


def parse_expected(path):
    """Returns (segments, flags); a segment is ("ordered" | "unordered", [Pattern, ...])."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    flags = set()
    while lines and lines[0] in ("# unordered", "# allow-orphans"):
        flags.add(lines.pop(0)[2:])
    offset = len(flags)  # keeps the line numbers in messages right
    segments = []
    current = ("ordered", [])
    for i, text in enumerate(lines, start=1 + offset):
        if text == "# begin unordered":
            if current[0] == "unordered":
                sys.exit("%s:%d: nested '# begin unordered'" % (path, i))
            if current[1]:
                segments.append(current)
            current = ("unordered", [])
        elif text == "# end unordered":
            if current[0] != "unordered":
                sys.exit("%s:%d: '# end unordered' without '# begin unordered'" % (path, i))
            segments.append(current)
            current = ("ordered", [])
        else:
            current[1].append(Pattern(text, i))
    if current[0] == "unordered":
        sys.exit("%s: '# begin unordered' is never ended" % path)
    if current[1]:
        segments.append(current)
    if "unordered" in flags:
        segments = [("unordered", [p for _, group in segments for p in group])]
    return segments, flags


def match_unordered(patterns, lines, bindings):
    """Backtracking assignment of patterns to lines (a permutation) that agrees on bindings."""
    # Identical patterns are interchangeable: try them against lines in increasing order only.
    patterns = sorted(patterns, key=lambda p: p.text)
    used = [False] * len(lines)

    def assign(k, prev_index, bindings):
        if k == len(patterns):
            return bindings
        same_as_prev = k > 0 and patterns[k].text == patterns[k - 1].text
        tried = set()
        for j, line in enumerate(lines):
            if used[j] or (same_as_prev and j < prev_index) or line in tried:
                continue
            tried.add(line)  # an identical line would give the same result
            extended = patterns[k].match(line, bindings)
            if extended is None:
                continue
            used[j] = True
            result = assign(k + 1, j, extended)
            used[j] = False
            if result is not None:
                return result
        return None

    return assign(0, 0, bindings)


def explain_unordered(patterns, lines):
    """A short reason why a group cannot match, ignoring bindings where that finds one."""
    remaining = list(lines)
    missing = []
    for p in patterns:
        for j, line in enumerate(remaining):
            if p.match(line, {}) is not None:
                del remaining[j]
                break
        else:
            missing.append(p)
    out = []
    for p in missing:
        out.append("  expected (line %d) but not found: %r" % (p.lineno, p.text))
    for line in remaining:
        out.append("  unexpected output line: %r" % line)
    if not out:
        out.append("  every line has a match, but the named placeholders ({pid:NAME}...) disagree")
    return "\n".join(out)


def compare(segments, lines):
    """Returns None on success, else a message."""
    expected_count = sum(len(group) for _, group in segments)
    if expected_count != len(lines):
        return "expected %d lines, got %d" % (expected_count, len(lines))

    def walk(s, pos, bindings):
        # returns (bindings, None) on success or (None, message) on failure
        if s == len(segments):
            return bindings, None
        kind, group = segments[s]
        chunk = lines[pos:pos + len(group)]
        if kind == "ordered":
            for p, line in zip(group, chunk):
                extended = p.match(line, bindings)
                if extended is None:
                    if p.match(line, {}) is not None:
                        return None, ("output line %d %r matches expected line %d %r, but a named "
                                      "placeholder differs from an earlier line (%s)"
                                      % (pos + 1, line, p.lineno, p.text, bindings))
                    return None, ("output line %d %r does not match expected line %d %r"
                                  % (pos + 1, line, p.lineno, p.text))
                bindings = extended
                pos += 1
            return walk(s + 1, pos, bindings)
        extended = match_unordered(group, chunk, bindings)
        if extended is None:
            first, last = group[0].lineno, group[-1].lineno
            return None, ("output lines %d-%d do not match the unordered group (expected lines "
                          "%d-%d):\n%s" % (pos + 1, pos + len(group), first, last,
                                           explain_unordered(group, chunk)))
        return walk(s + 1, pos + len(group), extended)

    _, message = walk(0, 0, {})
    return message


def run(binary, allow_orphans):
    # POLYPROC_EXAMPLE_LAUNCHER: what runs the binary (mpiexec -n 3 for the MPI examples).
    launcher = os.environ.get("POLYPROC_EXAMPLE_LAUNCHER", "").split()
    proc = subprocess.Popen([*launcher, binary], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    out, err = [], []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for t in readers:
        t.start()
    problems = []
    deadline = time.monotonic() + TIMEOUT
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        problems.append("timed out after %.0f s" % TIMEOUT)
    if proc.returncode is not None and proc.returncode != 0:
        problems.append("exit status %d" % proc.returncode)
    elif proc.returncode == 0:
        # The program has exited: its group must be empty unless orphans are part of the demo.
        try:
            os.killpg(proc.pid, 0)
            leftover = True
        except ProcessLookupError:
            leftover = False
        if leftover and not allow_orphans:
            problems.append("processes of the example were still running after it exited")
    for t in readers:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in readers) and not problems:
        problems.append("timed out after %.0f s waiting for the example's children to finish"
                        % TIMEOUT)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.returncode is None:
        proc.wait()
    for t in readers:
        t.join(5)
    stdout = out[0] if out else b""
    stderr = err[0] if err else b""
    if stderr:
        problems.append("wrote to stderr")
    return (stdout.decode("utf-8", errors="replace"), stderr.decode("utf-8", errors="replace"),
            problems)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_output.py <binary> <expected-file>")
    binary, expected_path = sys.argv[1], sys.argv[2]
    segments, flags = parse_expected(expected_path)
    stdout, stderr, problems = run(binary, "allow-orphans" in flags)
    lines = stdout.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    else:
        problems.append("output does not end with a newline")
    message = compare(segments, lines)
    if message:
        problems.insert(0, message)
    if not problems:
        print("OK: %s matches %s (%d lines)" % (os.path.basename(binary),
                                               os.path.basename(expected_path), len(lines)))
        return 0
    print("FAIL: %s" % binary)
    for p in problems:
        print("- " + p)
    if message:
        # A plain diff of the expected lines (directives left out) against the output; the
        # placeholders and unordered groups make some differing lines acceptable.
        expected_lines = [p.text for _, group in segments for p in group]
        if "unordered" in flags:
            expected_lines, lines = sorted(expected_lines), sorted(lines)
            print("--- diff (sorted expected lines vs sorted output; placeholders apply) ---")
        else:
            print("--- diff (expected lines vs output; placeholders and unordered groups apply) ---")
        sys.stdout.writelines(difflib.unified_diff([l + "\n" for l in expected_lines],
                                                   [l + "\n" for l in lines],
                                                   fromfile=expected_path, tofile="output"))
    else:
        print("--- output ---")
        print(stdout, end="")
    if stderr:
        print("--- stderr ---")
        print(stderr, end="" if stderr.endswith("\n") else "\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
