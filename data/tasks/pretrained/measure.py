"""The task model beside a pretrained multilingual encoder, on the same folds.

usage: measure.py <oof.jsonl> <outside-probabilities.jsonl> <dir with train.npz, test.npz, outside.npz>

`oof.jsonl` is what `taskrouter train data/tasks/tasks.jsonl --test data/tasks/test.jsonl --oof`
writes: the shipped model's out-of-fold probabilities for every corpus row, with its fold (the
writer's), then the test file's. The encoder's side is a classifier over the encoded prompts
(a hidden layer of 512, 12 epochs), fitted for each fold on the other nine, so its figures are
out of fold on the same writers; for the test file and the outside sets, fitted on every row.
Printed for each: the task model alone, the encoder's classifier alone, and the two combined
(the normalised geometric mean of their probabilities, equal weights, nothing fitted), then
cross-validation split by pasted material and by language.
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


def report(name, p, y, labels):
    oos = labels.index("out_of_scope")
    pred = p.argmax(1)
    f1 = []
    for k in range(len(labels)):
        tp = ((pred == k) & (y == k)).sum()
        wrong = ((pred == k) & (y != k)).sum() + ((pred != k) & (y == k)).sum()
        f1.append(2 * tp / max(1, 2 * tp + wrong))
    task = p.copy()
    task[:, oos] = -1
    best = task.max(1)
    inscope = y != oos
    print(f"{name:44s} accuracy {np.mean(pred == y):.3f}  macro-F1 {np.mean(f1):.3f}  "
          f"coverage {(best[inscope] >= MIN_SCORE).mean():.3f}  false accepts {(best[~inscope] >= MIN_SCORE).mean():.3f}",
          flush=True)


def combined(a, b):
    z = np.exp(0.5 * np.log(a + 1e-9) + 0.5 * np.log(b + 1e-9))
    return z / z.sum(1, keepdims=True)


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
    x, xt, xo = vectors(f"{enc}/train.npz"), vectors(f"{enc}/test.npz"), vectors(f"{enc}/outside.npz")
    q = np.zeros_like(p)
    start = time.time()
    for f in sorted(set(fold)):
        model = mlp().fit(x[fold != f], y[fold != f])
        q[fold == f] = model.predict_proba(x[fold == f])
        print(f"fold {f}: {time.time() - start:.0f} s", flush=True)
    model = mlp().fit(x, y)
    qt, qo = model.predict_proba(xt), model.predict_proba(xo)
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
    lang = np.array([c["lang"] for c in corpus])
    print("language  prompts  accuracy: task model  encoder  both")
    for code, n in collections.Counter(lang).most_common():
        m = lang == code
        acc = [np.mean(v[m].argmax(1) == y[m]) for v in (p, q, both)]
        print(f"{code:8s}  {n:7d}  {acc[0]:.3f}  {acc[1]:.3f}  {acc[2]:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
