#!/usr/bin/env python3
"""
The log events in the sources against the event table (lib/log_event_table.h): every event name the
C sources log must be a row of the table, and every row must be logged somewhere.

An event name is the event argument of log_begin, log_msg, log_fatal or of a wrapper: any function
with a parameter `const char *event` (the argument at that position), or a string assigned to a
variable called `event`. An event argument that is neither a string literal (or a choice of
literals) nor a wrapper passing its `event` on is an error, as its name cannot be checked.

Usage: tests/log_events.py [SOURCE_DIR]   (exit 1 naming each event missing from the table, each
row never logged, and each call whose event cannot be told)
"""
import os
import re
import sys

PARTS = ("lib", "spool", "policy", "mta")
TABLE = "lib/log_event_table.h"
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')


def without_comments(text):
    """Comments blanked out (newlines kept, so line numbers hold); strings left as they are."""
    return re.sub(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/',
                  lambda m: m.group() if m.group().startswith('"')
                  else re.sub(r"[^\n]", " ", m.group()), text, flags=re.S)


def sources(root):
    for part in PARTS:
        for top, _, names in os.walk(os.path.join(root, part)):
            for name in sorted(names):
                path = os.path.join(top, name)
                if name.endswith((".c", ".h")) and os.path.relpath(path, root) != TABLE:
                    with open(path, encoding="utf-8") as f:
                        yield os.path.relpath(path, root), without_comments(f.read())


def call_args(text, start):
    """The top-level arguments of the call whose '(' ends just before start, or None."""
    args, depth, cur, i = [], 0, [], start
    while i < len(text):
        c = text[i]
        if c == '"':
            m = LITERAL.match(text, i)
            cur.append(m.group())
            i = m.end()
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur).strip())
                return args
            depth -= 1
        if c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    return None


def event_functions(files):
    """Function name -> the index of its event parameter: the log calls and every wrapper."""
    found = {}
    definition = re.compile(r"\b(\w+)\s*\(([^;{}()]*)\)\s*\{")
    for _, text in files:
        for m in definition.finditer(text):
            for index, param in enumerate(m.group(2).split(",")):
                if re.fullmatch(r"\s*const\s+char\s*\*\s*event\s*", param):
                    found[m.group(1)] = index
    return found


def logged_events(files):
    """Event name -> the places that log it; and the calls whose event cannot be told."""
    events, unclear = {}, []
    functions = event_functions(files)
    for path, text in files:
        def place(pos):
            return "%s:%d" % (path, text.count("\n", 0, pos) + 1)
        for m in re.finditer(r"\b(\w+)\s*\(", text):
            index = functions.get(m.group(1))
            args = call_args(text, m.end()) if index is not None else None
            if args is None or len(args) <= index:
                continue
            arg = args[index]
            if re.fullmatch(r"(const\s+)?char\s*\*\s*event", arg) or arg == "event":
                continue  # the definition itself, or a wrapper passing its event on
            names = LITERAL.findall(arg)
            if not names:
                unclear.append("%s: %s(): event %s" % (place(m.start()), m.group(1), arg))
            for name in names:
                events.setdefault(name, []).append(place(m.start()))
        for m in re.finditer(r'\bevent\s*=\s*"((?:[^"\\]|\\.)*)"', text):
            events.setdefault(m.group(1), []).append(place(m.start()))
    return events, unclear


def table_events(root):
    with open(os.path.join(root, TABLE), encoding="utf-8") as f:
        return re.findall(r'^    \{"([^"]+)",', f.read(), flags=re.M)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    files = list(sources(root))
    events, unclear = logged_events(files)
    table = table_events(root)
    problems = ["%s: event %s is not in %s" % (", ".join(places), name, TABLE)
                for name, places in sorted(events.items()) if name not in table]
    problems += ["%s: row %s is never logged" % (TABLE, name) for name in table
                 if name not in events]
    problems += ["%s (pass a string literal, or name the wrapper's parameter `event`)" % u
                 for u in unclear]
    for p in problems:
        print(p)
    if not table or not events:
        print("no events found: the scan is broken")
        return 1
    print("%d events logged, %d rows in the table" % (len(events), len(table)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
