#!/usr/bin/env python3
"""Lists lexicon forms that may be false friends: common words of ANOTHER language, where the
concept would fire on unrelated text (the matcher does not look at an entry's language).

    pip install wordfreq
    python3 data/tasks/lexicon/false_friends.py data/tasks/lexicon/p2-*.tsv

Prints candidates only; a person reads each and removes the false friends by hand (cognates that
mean the same thing stay). Two checks (BRIEF-2.md):
  - whole words of Latin script with a Zipf frequency >= 4 in another language whose own entries
    do not give the word the same concept;
  - stems that start common words (top 30,000, Zipf >= 3.3) of 32 big languages.
"""
import collections
import glob
import os
import sys

from wordfreq import available_languages, top_n_list, zipf_frequency

HERE = os.path.dirname(os.path.abspath(__file__))
# wordfreq's codes for languages the lexicon spells otherwise.
ALIAS = {"sh": {"hr", "sr", "bs"}, "nb": {"no", "nb"}, "fil": {"tl"}}
BIG = ["en", "es", "fr", "de", "pt", "it", "ru", "nl", "pl", "tr", "id", "sv", "cs", "uk", "fi",
       "hu", "ro", "da", "nb", "ar", "fa", "hi", "vi", "ms", "fil", "ca", "sh", "bg", "sl", "sk",
       "lv", "lt"]


def lex_langs(code):
    return ALIAS.get(code, {code})


def latin(form):
    return all(ch.isascii() or "\u00c0" <= ch <= "\u024f" for ch in form)


def entries(paths):
    for path in paths:
        for line in open(path, encoding="utf-8"):
            if line.startswith("#") or not line.strip():
                continue
            concept, lang, form = line.rstrip("\n").split("\t")
            yield os.path.basename(path), concept, lang, form


def main(paths):
    every = collections.defaultdict(set)  # (lang, concept) -> forms, in all the lexicon's files
    for _, concept, lang, form in entries(sorted(glob.glob(os.path.join(HERE, "*.tsv")))):
        every[(lang, concept)].add(form)

    def covered(other, concept, word):
        return any(
            form == word or (form.endswith("*") and word.startswith(form[:-1]))
            for lang in lex_langs(other)
            for form in every.get((lang, concept), ())
        )

    # Chinese, Japanese and Korean need tokenisers wordfreq does not bring; their scripts are
    # not the lexicon's Latin forms anyway.
    langs = [x for x in sorted(available_languages(wordlist="best")) if x not in ("ja", "ko", "zh")]
    tops = {o: top_n_list(o, 30000) for o in BIG}
    for name, concept, lang, form in entries(paths):
        if " " in form:
            continue
        if form.endswith("*"):
            stem = form[:-1]
            hits = []
            for o in BIG:
                if lang in lex_langs(o):
                    continue
                words = [w for w in tops[o] if w.startswith(stem) and zipf_frequency(w, o) >= 3.3]
                if words:
                    hits.append((o, words[:4]))
        elif latin(form):
            hits = [
                (o, round(zipf_frequency(form, o), 1))
                for o in langs
                if lang not in lex_langs(o)
                and zipf_frequency(form, o) >= 4.0
                and not covered(o, concept, form)
            ]
        else:
            continue
        if hits:
            print(name, concept, lang, form, hits[:4], sep="\t")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
