#!/usr/bin/env bash
# The task model beside a pretrained multilingual encoder: see README.md here. Not part of the
# test suite: it installs Python packages from PyPI into WORK and runs for about 70 minutes on
# two cores (32 of them encoding the corpus, 25 fitting the encoder's classifier ten times).
#   bash data/tasks/pretrained/run.sh [WORK]        (WORK defaults to target/pretrained)
set -euo pipefail
cd "$(dirname "$0")/../../.."
work="${1:-target/pretrained}"
here=data/tasks/pretrained
mkdir -p "$work"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q -r "$here/requirements.txt"
fi
py="$work/venv/bin/python"
cargo build --release -q -p taskrouter-cli
cli=target/release/taskrouter
cat data/tasks/outside/*.jsonl > "$work/outside.jsonl"
# The shipped model's probabilities: out of fold for the corpus, and on the test and outside sets.
"$cli" train data/tasks/tasks.jsonl --out "$work/model.trcls" --seed 1 \
  --test data/tasks/test.jsonl --oof "$work/oof.jsonl" > "$work/train.txt"
cmp "$work/model.trcls" models/tasks-v2.trcls
"$cli" evaluate "$work/outside.jsonl" --probabilities "$work/outside-probabilities.jsonl" > /dev/null
for set in test outside train; do
  src="$work/outside.jsonl"
  [ "$set" = test ] && src=data/tasks/test.jsonl
  [ "$set" = train ] && src=data/tasks/tasks.jsonl
  [ -f "$work/$set.npz" ] || OMP_NUM_THREADS=1 "$py" "$here/encode.py" "$src" "$work/$set.npz"
done
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$py" "$here/measure.py" \
  "$work/oof.jsonl" "$work/outside-probabilities.jsonl" "$work" | tee "$work/measured.txt"
