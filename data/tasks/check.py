#!/usr/bin/env python3
"""Check the hand-written corpus while writing it: `python3 data/tasks/check.py [FILE ...]`.

Validates every line of data/tasks/batches/*.jsonl (or the files named), prints per-file counts
(labels, share with pasted material, share not in English, languages) and every near-duplicate
pair across all batches (word 3-gram Jaccard > 0.5 of the written part, placeholders removed).
The same rules are enforced by `cargo test` (tools/cli/tests/train_cli.rs) and `taskrouter corpus`,
which are authoritative; this is a writer's aid. Its words are Python's \w runs, the Rust check's
are letters and digits by Rust's rules, which keep some combining marks (an Arabic shadda) inside
a word: around such marks `taskrouter corpus` can find a pair this misses.
"""
import json, re, sys, collections
from pathlib import Path

LABELS = {"faq", "billing", "troubleshooting", "upset_customer", "marketing_copy", "long_form",
          "code_formatting", "code_generation", "translation", "grammar", "summarisation",
          "classification", "extraction", "reasoning", "out_of_scope"}
KINDS = {"prose", "conversation", "email", "code", "data", "config", "log"}
PASTE = re.compile(r"\{\{paste:([a-z]+)\}\}")
root = Path(__file__).parent

def shingles(text):
    words = re.findall(r"\w+", PASTE.sub(" ", text).lower())
    if len(words) < 3:
        return {" ".join(words)}
    return {" ".join(words[i:i + 3]) for i in range(len(words) - 2)}

def main():
    files = [Path(f) for f in sys.argv[1:]] or sorted((root / "batches").glob("*.jsonl"))
    allfiles = sorted((root / "batches").glob("*.jsonl"))
    bad = 0
    rows = []
    for f in allfiles:
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{f.name}:{i}"
            try:
                r = json.loads(line)
            except Exception as e:
                print(f"{where}: not JSON: {e}"); bad += 1; continue
            problems = []
            if set(r) != {"text", "label", "batch", "lang"}:
                problems.append(f"fields must be text, label, batch, lang (got {sorted(r)})")
            if r.get("label") not in LABELS:
                problems.append(f"unknown label {r.get('label')!r}")
            kinds = PASTE.findall(r.get("text", ""))
            if len(kinds) > 1 or any(k not in KINDS for k in kinds):
                problems.append(f"at most one placeholder of a known kind (got {kinds})")
            if "{{" in PASTE.sub("", r.get("text", "")):
                problems.append("a malformed placeholder")
            if not PASTE.sub("", r.get("text", "")).strip():
                problems.append("nothing written besides the placeholder")
            if problems and Path(f) in [Path(x) for x in files]:
                print(f"{where}: " + "; ".join(problems)); bad += 1
            rows.append((where, f, r))
    # near duplicates
    index = collections.defaultdict(list)
    sh = []
    for n, (where, f, r) in enumerate(rows):
        s = shingles(r.get("text", ""))
        sh.append(s)
        for g in s:
            index[g].append(n)
    mine = {Path(x).resolve() for x in files}
    # An evaluation prompt is never shown: writers must not read the test set.
    shown = lambda k: "(an evaluation prompt, not shown)" if rows[k][1].name.startswith("test-") else repr(rows[k][2]["text"][:60])
    seen = set()
    dups = 0
    for n, s in enumerate(sh):
        cands = collections.Counter(m for g in s for m in index[g] if m > n)
        for m, inter in cands.items():
            j = inter / len(s | sh[m])
            if j > 0.5 and (rows[n][1].resolve() in mine or rows[m][1].resolve() in mine):
                if (n, m) not in seen:
                    seen.add((n, m)); dups += 1
                    print(f"near-duplicate ({j:.2f}): {rows[n][0]} ~ {rows[m][0]}: {shown(n)} ~ {shown(m)}")
    for f in files:
        rs = [r for w, ff, r in rows if ff.resolve() == Path(f).resolve()]
        if not rs:
            continue
        labels = collections.Counter(r.get("label") for r in rs)
        paste = sum(1 for r in rs if PASTE.search(r.get("text", "")))
        langs = collections.Counter(r.get("lang") for r in rs)
        non_en = sum(v for k, v in langs.items() if k != "en")
        print(f"{Path(f).name}: {len(rs)} lines; with material {paste / len(rs):.0%}; not English {non_en / len(rs):.0%}; languages {dict(langs)}")
        print("   labels: " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())))
    ids = set()
    for f in sorted((root / "materials").glob("*.jsonl")):
        kinds = collections.Counter()
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                m = json.loads(line)
            except Exception as e:
                print(f"{f.name}:{i}: not JSON: {e}"); bad += 1; continue
            if set(m) != {"id", "kind", "lang", "text"} or m.get("kind") not in KINDS:
                print(f"{f.name}:{i}: fields must be id, kind (one of {sorted(KINDS)}), lang, text"); bad += 1
            elif m["id"] in ids:
                print(f"{f.name}:{i}: id {m['id']} is used twice"); bad += 1
            elif not 80 <= len(m["text"]) <= 6500:
                print(f"{f.name}:{i}: text must be 80 to 6,500 characters (is {len(m['text'])})"); bad += 1
            ids.add(m.get("id"))
            kinds[m.get("kind")] += 1
        print(f"materials/{f.name}: {dict(kinds)}")
    print(f"{bad} invalid lines, {dups} near-duplicate pairs")
    return 1 if bad or dups else 0

sys.exit(main())
