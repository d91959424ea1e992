#!/usr/bin/env python3
"""Reads labelled prompts ({"text", "label"} per line) with `taskrouter classify --json` and
prints how many the model labels right (a prompt below `min_score` counts as out_of_scope), and
the ones it gets wrong.

    python3 data/tasks/probe.py data/tasks/probes/short-pastes.jsonl [--model FILE] [--bin PATH]

The files under probes/ are small checks of one failure each, written by hand to see whether it
is fixed: not evaluation data (they were written after the failure was seen, and are few).
"""
import json
import subprocess
import sys


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path, extra, binary = args[0], [], "target/release/taskrouter"
    if "--model" in args:
        extra = ["--model", args[args.index("--model") + 1]]
    if "--bin" in args:
        binary = args[args.index("--bin") + 1]
    right = total = 0
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        row = json.loads(line)
        run = subprocess.run([binary, "classify", "-", "--json", *extra], input=row["text"],
                             capture_output=True, text=True, check=True)
        got = json.loads(run.stdout)
        label = got["task"] or "out_of_scope"
        total += 1
        if label == row["label"]:
            right += 1
        else:
            first = row["text"].splitlines()[0][:60]
            print(f"  {row['label']} read as {label} ({got['top'][0][0]} {got['top'][0][1]:.2f}): {first}")
    print(f"{right} of {total} right")
    return 0


sys.exit(main())
