"""The task model beside a pretrained multilingual encoder, on the same folds.

usage: measure.py <oof.jsonl> <outside-probabilities.jsonl> <dir with train.npz, test.npz, outside.npz>

`oof.jsonl` is what `taskrouter train data/tasks/tasks.jsonl --test data/tasks/test.jsonl --oof`
writes: the shipped model's out-of-fold probabilities for every corpus row, with its fold (the
writer's), then the test file's. The encoder's side is a classifier over the encoded prompts
(a hidden layer of 512, 12 epochs), fitted for each fold on the other nine, so its figures are
out of fold on the same writers; for the test file and the outside sets, fitted on every row.
Printed for each: the task model alone, the encoder's classifier alone, and the two combined
(the normalised geometric mean of their probabilities, equal weights, nothing fitted), then
cross-validation split by pasted material, per-label offsets to the task model's scores fitted
for macro-F1 on half the folds and read on the other half, the prompts the corpus also composes
without their material (the encoder reading the instruction alone), the most written languages,
and each language. The encoder's probabilities are kept in `encoder-probabilities.npz` in the
directory, and read from there when it exists, so the report can be read again without fitting.
"""

import collections
import json
import sys
import time

import numpy as np
from sklearn.neural_network import MLPClassifier

MIN_SCORE = 0.5


def mlp():
    return MLPClassifier(hidden_layer_sizes=(512,), alpha=1e-4, batch_size=256, max_iter=12, random_state=1)


def vectors(path):
    z = np.load(path)
    return np.hstack([z["head"], z["tail"]]).astype(np.float32)


def macro_f1(pred, y, k):
    f1 = []
    for c in range(k):
        tp = ((pred == c) & (y == c)).sum()
        wrong = ((pred == c) & (y != c)).sum() + ((pred != c) & (y == c)).sum()
        f1.append(2 * tp / max(1, 2 * tp + wrong))
    return float(np.mean(f1))


def report(name, p, y, labels):
    oos = labels.index("out_of_scope")
    pred = p.argmax(1)
    task = p.copy()
    task[:, oos] = -1
    best = task.max(1)
    inscope = y != oos
    print(f"{name:44s} accuracy {np.mean(pred == y):.3f}  macro-F1 {macro_f1(pred, y, len(labels)):.3f}  "
          f"coverage {(best[inscope] >= MIN_SCORE).mean():.3f}  false accepts {(best[~inscope] >= MIN_SCORE).mean():.3f}",
          flush=True)


def combined(a, b):
    z = np.exp(0.5 * np.log(a + 1e-9) + 0.5 * np.log(b + 1e-9))
    return z / z.sum(1, keepdims=True)


def encoder_probabilities(enc, fold, y, shape):
    """The encoder's classifier: out of fold on the corpus, fitted on every row for the others."""
    kept = f"{enc}/encoder-probabilities.npz"
    try:
        z = np.load(kept)
        if z["cv"].shape == shape:
            print(f"the encoder's probabilities from {kept}", flush=True)
            return z["cv"], z["test"], z["outside"]
        print(f"{kept} is for another corpus: fitting again", flush=True)
    except FileNotFoundError:
        pass
    x, xt, xo = vectors(f"{enc}/train.npz"), vectors(f"{enc}/test.npz"), vectors(f"{enc}/outside.npz")
    q = np.zeros(shape)
    start = time.time()
    for f in sorted(set(fold)):
        model = mlp().fit(x[fold != f], y[fold != f])
        q[fold == f] = model.predict_proba(x[fold == f])
        print(f"fold {f}: {time.time() - start:.0f} s", flush=True)
    model = mlp().fit(x, y)
    qt, qo = model.predict_proba(xt), model.predict_proba(xo)
    np.savez(kept, cv=q, test=qt, outside=qo)
    return q, qt, qo


def instruction_twins(corpus):
    """Rows with a material whose instruction alone is the row before: `taskrouter corpus` writes
    every third placeholder line that way. Returns the rows with a material."""
    rows = []
    for i in range(1, len(corpus)):
        row, before = corpus[i], corpus[i - 1]
        if row["material"] is None or before["material"] is not None:
            continue
        if (row["label"], row["batch"]) != (before["label"], before["batch"]):
            continue
        ask = before["text"].strip()
        if ask[:25] in row["text"] or ask[-25:] in row["text"]:
            rows.append(i)
    return np.array(rows, dtype=int)


def offsets_for_macro_f1(logp, y):
    """Per-label offsets added to the log-probabilities, chosen one label at a time (three passes
    over a grid of -1.5..1.5) for the macro-F1 of the argmax."""
    k = logp.shape[1]
    b = np.zeros(k)
    best = macro_f1(logp.argmax(1), y, k)
    for _ in range(3):
        for c in range(k):
            for d in np.linspace(-1.5, 1.5, 31):
                trial = b.copy()
                trial[c] = d
                score = macro_f1((logp + trial).argmax(1), y, k)
                if score > best + 1e-6:
                    best, b = score, trial
    return b


def main(oof_path, outside_path, enc):
    rows = [json.loads(line) for line in open(oof_path, encoding="utf-8")]
    labels = sorted(rows[0]["probabilities"])
    def probs(rs):
        return np.array([[r["probabilities"][l] for l in labels] for r in rs]), np.array([labels.index(r["label"]) for r in rs])
    cv = [r for r in rows if r["set"] == "cv"]
    test = [r for r in rows if r["set"] == "test"]
    outside = [json.loads(line) for line in open(outside_path, encoding="utf-8")]
    p, y = probs(cv)
    pt, yt = probs(test)
    po, yo = probs(outside)
    fold = np.array([r["fold"] for r in cv])
    q, qt, qo = encoder_probabilities(enc, fold, y, p.shape)
    for name, a, b, yy in (("cross-validation", p, q, y), ("test", pt, qt, yt), ("outside", po, qo, yo)):
        report(f"{name}: task model", a, yy, labels)
        report(f"{name}: encoder", b, yy, labels)
        report(f"{name}: both", combined(a, b), yy, labels)
    corpus = [json.loads(line) for line in open("data/tasks/tasks.jsonl", encoding="utf-8")]
    both = combined(p, q)
    pasted = np.array([c["material"] is not None for c in corpus])
    for v in (False, True):
        report(f"cross-validation, pasted material {v}: task model", p[pasted == v], y[pasted == v], labels)
        report(f"cross-validation, pasted material {v}: both", both[pasted == v], y[pasted == v], labels)
    # Would a decision rule fitted for macro-F1 beat the argmax? Offsets fitted on one half of
    # the folds, read on the other half.
    logp = np.log(p + 1e-12)
    half = fold < 5
    for fit, read, name in ((half, ~half, "folds 0-4 -> 5-9"), (~half, half, "folds 5-9 -> 0-4")):
        b = offsets_for_macro_f1(logp[fit], y[fit])
        before = macro_f1(logp[read].argmax(1), y[read], len(labels))
        after = macro_f1((logp[read] + b).argmax(1), y[read], len(labels))
        print(f"per-label offsets for macro-F1, fitted on {name}: macro-F1 {before:.4f} -> {after:.4f}", flush=True)
    twins = instruction_twins(corpus)
    print(f"cross-validation, the {len(twins)} prompts with a material whose instruction is also composed alone:")
    report("  task model", p[twins], y[twins], labels)
    report("  both", both[twins], y[twins], labels)
    report("  both, the encoder reading the instruction alone", combined(p[twins], q[twins - 1]), y[twins], labels)
    report("  task model, the instruction alone", p[twins - 1], y[twins], labels)
    swapped = both.copy()
    swapped[twins] = combined(p[twins], q[twins - 1])
    report("cross-validation, both, with those prompts' encoder reading the instruction", swapped, y, labels)
    lang = np.array([c["lang"] for c in corpus])
    by_count = [code for code, _ in collections.Counter(lang).most_common()]
    for n in (1, 8, 16, 30):
        m = np.isin(lang, by_count[:n])
        which = by_count[0] if n == 1 else f"the {n} most written languages"
        report(f"cross-validation, {which}: task model", p[m], y[m], labels)
        report(f"cross-validation, {which}: both", both[m], y[m], labels)
    print("language  prompts  accuracy: task model  encoder  both")
    for code, n in collections.Counter(lang).most_common():
        m = lang == code
        acc = [np.mean(v[m].argmax(1) == y[m]) for v in (p, q, both)]
        print(f"{code:8s}  {n:7d}  {acc[0]:.3f}  {acc[1]:.3f}  {acc[2]:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
