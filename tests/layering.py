#!/usr/bin/env python3
"""
The layering of the source tree, checked from the include lines: each part includes only itself
and the parts below it, and no module (a .c file with its .h) reaches another that reaches back
(a circle of modules calling each other: module A calls B when A.c includes B.h and names a
function B.c defines).

    lib/            building blocks, nothing of Sluice's own above them
    spool/ policy/  the durable queue; accept/reject decisions (neither includes the other)
    mta/dkim/       signing and verification
    mta/delivery/   scheduler, destinations, the SMTP client, bounces
    mta/feedback/   the trace on relayed mail, and the reading of complaint reports and bounces
    mta/server/     the inbound SMTP session, which hands messages to delivery
    mta/webhooks/   log events POSTed to HTTP endpoints
    mta/http/       the HTTP server of the operations interface: metrics, the status API
    mta/            the daemon, control socket and configuration gates that tie them together
    mta/cli/        the commands and main()

Usage: tests/layering.py [SOURCE_DIR]   (exit 1 naming each include that points up, and each circle)
"""
import os
import re
import sys

# part -> the parts it may include besides itself
ALLOWED = {
    "lib": set(),
    "spool": {"lib"},
    "policy": {"lib"},
    "mta/dkim": {"lib", "policy"},
    "mta/delivery": {"lib", "spool", "policy", "mta/dkim"},
    "mta/feedback": {"lib", "spool", "policy", "mta/dkim", "mta/delivery"},
    "mta/server": {"lib", "spool", "policy", "mta/dkim", "mta/delivery", "mta/feedback"},
    "mta/webhooks": {"lib"},
    "mta/http": {"lib", "spool", "policy", "mta/dkim", "mta/delivery", "mta/server"},
    "mta": {"lib", "spool", "policy", "mta/dkim", "mta/delivery", "mta/feedback", "mta/server",
            "mta/webhooks", "mta/http"},
    "mta/cli": {"lib", "spool", "policy", "mta/dkim", "mta/delivery", "mta/feedback", "mta/server",
                "mta/webhooks", "mta/http",
                "mta"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"((?:lib|spool|policy|mta)/[^"]+)"', re.M)


def part(path):
    return os.path.dirname(path)


def sources(root):
    for top in ("lib", "spool", "policy", "mta"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if name.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, name), root)


DEFINITION = re.compile(r"^(?!static\b)[a-z][^;(]*?\b([a-z_][a-z0-9_]*)\(", re.M)
_defined = {}


def defined(root, module):
    """The functions module.c defines for others (not static)."""
    if module not in _defined:
        path = os.path.join(root, module + ".c")
        names = set()
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                names = set(DEFINITION.findall(f.read()))
        _defined[module] = names
    return _defined[module]


def calls(text, names):
    """Whether text calls (or takes the address of) one of names."""
    return any(re.search(r"\b%s\b" % re.escape(name), text) for name in names)


def circles(edges):
    """Each circle of modules, as a list of module names, found by depth-first search."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    problems = []
    edges = {}  # module (path without extension) -> modules its files include
    for path in sources(root):
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
        src = part(path)
        if src not in ALLOWED:
            problems.append("%s: in no known part (add it to tests/layering.py)" % path)
            continue
        module = os.path.splitext(path)[0]
        for inc in INCLUDE.findall(text):
            dst = part(inc)
            if dst != src and dst not in ALLOWED[src]:
                problems.append("%s includes %s: %s may not reach %s" % (path, inc, src, dst))
            target = os.path.splitext(inc)[0]
            if path.endswith(".c") and target != module and calls(text, defined(root, target)):
                edges.setdefault(module, set()).add(target)
    for circle in circles(edges):
        problems.append("circle: " + " -> ".join(circle))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
