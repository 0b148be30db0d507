#!/usr/bin/python3
"""The demo model's tokenizer: a byte-level BPE trained here, written as Hugging Face files that
dsinfer (and npm/Python `tokenizers`, transformers) load.

    tools/train_demo/bpe.py --train /tmp/dsinfer-train-demo/train.txt --vocab-size 4096 \\
        --out /tmp/dsinfer-train-demo/tokenizer

DeepSeek-V3's tokenizer is the model (assets/tokenizer/deepseek-v3): the same pre-tokenizer
(digits in runs of up to 3, CJK runs, then its word regex: letters with one leading space or
other non-letter, punctuation runs with an optional leading space, whitespace), bytes mapped to
printable characters as byte-level BPE does, the special tokens inside the vocabulary at ids 0-3
(BOS, EOS, <｜User｜>, <｜Assistant｜>), and its chat template verbatim (the one dsinfer renders).
BOS: tokenizer_config.json says add_bos_token, which dsinfer reads; the TemplateProcessing
post-processor says the same for Hugging Face.

Training: the unique pre-tokenized words are counted once, then each merge takes the most
frequent pair (ties: the smaller (left bytes, right bytes)) and updates pair counts only in the
words that hold it. Same input, byte-identical files: assets/demo-model/ ships the ones made from
data.py's train.txt with the defaults (tests/tokenizer/check_demo_tokenizer.py checks them against
Hugging Face's tokenizer).

From Python (the trainer): `sys.path.insert(0, "tools/train_demo"); import bpe;
bpe.train_and_write(train_txt, 4096, DIR)` (the CLI's work), `tok = bpe.load(DIR)`,
`tok.encode(text) -> [ids]`, `tok.decode(ids) -> str`, `tok.bos_id`, `tok.eos_id`, `tok.vocab_size()`.
Encoding recognises the special-token strings in the text and never adds BOS itself, as
`dsinfer tokenize` does. Character classes come from Python's unicodedata (Unicode 14 in
Debian 12's Python 3.11); HF and dsinfer use Unicode 16, so text with characters assigned since
14 may pre-tokenize differently here. The Brown text is ASCII.
"""
import argparse
import heapq
import json
import os
import re
import time
import unicodedata
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
DEEPSEEK_CONFIG = os.path.join(HERE, "..", "..", "assets", "tokenizer", "deepseek-v3", "tokenizer_config.json")

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
SPECIALS = [BOS, EOS, "<｜User｜>", "<｜Assistant｜>"]  # ids 0..3, as DeepSeek-V3 names them
N_BYTES = 256

# DeepSeek-V3's pre-tokenizer, character for character as its tokenizer.json writes it
# (Oniguruma syntax; CR and LF appear as the characters themselves, not as escapes).
DIGITS_RE = r"\p{N}{1,3}"
CJK_RE = r"[一-龥぀-ゟ゠-ヿ]+"
WORD_RE = ("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
           " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+")


def bytes_to_unicode():
    """Byte -> printable character, as byte-level BPE writes tokens: bytes that are printable
    Latin-1 characters stand for themselves, the other 68 (controls, space, NBSP, soft hyphen)
    take U+0100 onwards in byte order, so a space is 'Ġ' and a newline 'Ċ'."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAC + 1)) | set(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(N_BYTES):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


BYTE_CHAR = bytes_to_unicode()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


# --- Pre-tokenizer ---------------------------------------------------------------------------
# Python's `re` has no \p{...}, so each character is first mapped to one letter naming its class
# and the regexes above, rewritten over those letters, run on the class string; the matches'
# offsets are the text's. Classes (CJK characters get their own letters, since the CJK split
# must see them but the word regex treats them by category):
#   A ASCII letter, L other letter, K CJK letter, M mark, k CJK mark, N number, J CJK number,
#   a ASCII punctuation/symbol, p other P/S, q CJK P/S, r CR, n LF, ' ' space,
#   s other whitespace (Oniguruma's \s: \t \v \f U+0085 and category Z), o other, x CJK other.
def char_class(c):
    if c in "\r\n ":
        return {"\r": "r", "\n": "n", " ": " "}[c]
    cat = unicodedata.category(c)
    if c in "\t\x0b\x0c\x85" or cat[0] == "Z":
        return "s"
    if c.isascii():
        return "A" if c.isalpha() else "a" if cat[0] in "PS" else "N" if cat[0] == "N" else "o"
    base = {"L": "L", "M": "M", "N": "N", "P": "p", "S": "p"}.get(cat[0], "o")
    o = ord(c)
    if 0x4E00 <= o <= 0x9FA5 or 0x3040 <= o <= 0x30FF:
        return {"L": "K", "M": "k", "N": "J", "p": "q", "o": "x"}[base]
    return base


class _Classes(dict):
    def __missing__(self, o):
        self[o] = char_class(chr(o))
        return self[o]


_CLASSES = _Classes()
_ASCII_CLASSES = bytes(ord(char_class(chr(i))) if i < 128 else 0 for i in range(256))  # bytes.translate wants 256
_DIGITS = re.compile(r"[NJ]{1,3}")
_CJK = re.compile(r"[KkJqx]+")
_WORD = re.compile(r"aA+|[^rnALKapq]?[ALKMk]+| ?[apq]+[rn]*|[ rns]*[rn]+|[ rns]+(?![^ rns])|[ rns]+")


def _split(pattern, classes, begin, end):
    """Hugging Face's Split with behavior Isolated on classes[begin:end]: matches and the gaps
    between them, in order."""
    at = begin
    for m in pattern.finditer(classes, begin, end):
        if m.start() > at:
            yield at, m.start()
        yield m.start(), m.end()
        at = m.end()
    if at < end:
        yield at, end


def pre_tokenize(text):
    """The pieces of `text` (no special tokens in it), as DeepSeek-V3's pre-tokenizer cuts them."""
    if text.isascii():
        classes = text.encode().translate(_ASCII_CLASSES).decode()
    else:
        classes = text.translate(_CLASSES)
    for b1, e1 in _split(_DIGITS, classes, 0, len(text)):
        for b2, e2 in _split(_CJK, classes, b1, e1):
            for b3, e3 in _split(_WORD, classes, b2, e2):
                yield text[b3:e3]


_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(s) for s in SPECIALS) + ")")


def _segments(text):
    """Text -> (special token or None, text between) in order, as added tokens split it."""
    for i, part in enumerate(_SPECIAL_SPLIT.split(text)):
        if i % 2:
            yield part, None
        elif part:
            yield None, part


# --- The tokenizer ---------------------------------------------------------------------------
class Tokenizer:
    """Byte-level BPE: `vocab` maps each token's bytes to its id (special tokens by their UTF-8
    content), `merges` is the ordered list of (left id, right id)."""

    def __init__(self, token_bytes, merges):
        self.token_bytes = token_bytes  # by id
        self.merges = merges
        self.special_ids = {s: i for i, s in enumerate(SPECIALS)}
        self.bos_id, self.eos_id = self.special_ids[BOS], self.special_ids[EOS]
        ids = {b: i for i, b in enumerate(token_bytes) if i >= len(SPECIALS)}
        self.byte_ids = [ids[bytes([b])] for b in range(N_BYTES)]
        self.ranks = {pair: (rank, ids[token_bytes[pair[0]] + token_bytes[pair[1]]])
                      for rank, pair in enumerate(merges)}
        self.cache = {}

    def vocab_size(self):
        return len(self.token_bytes)

    def _bpe(self, piece):
        ids = [self.byte_ids[b] for b in piece.encode()]
        while len(ids) > 1:
            best = min((self.ranks.get(p, (1 << 30, 0)) for p in zip(ids, ids[1:])))
            if best[0] == 1 << 30:
                break
            pair = self.merges[best[0]]
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                    out.append(best[1])
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        return ids

    def encode(self, text):
        """Text -> ids, exactly as dsinfer's and Hugging Face's encode (no BOS added)."""
        out = []
        cache = self.cache
        for special, part in _segments(text):
            if special is not None:
                out.append(self.special_ids[special])
                continue
            for piece in pre_tokenize(part):
                ids = cache.get(piece)
                if ids is None:
                    ids = cache[piece] = self._bpe(piece)
                out += ids
        return out

    def decode(self, ids):
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def token_string(self, i):
        """The token as tokenizer.json writes it: a special token's content, else byte-level."""
        if i < len(SPECIALS):
            return SPECIALS[i]
        return "".join(BYTE_CHAR[b] for b in self.token_bytes[i])


def train(texts, vocab_size, log=None):
    """Learns merges on `texts` (each pre-tokenized alone, so no merge spans two) until the
    vocabulary (special tokens, the 256 bytes, merged tokens) has `vocab_size` entries."""
    words = Counter(p for text in texts for special, part in _segments(text) if part for p in pre_tokenize(part))
    token_bytes = [s.encode() for s in SPECIALS] + [bytes([b]) for b in range(N_BYTES)]
    id_of = {b: i for i, b in enumerate(token_bytes) if i >= len(SPECIALS)}
    # Unique words as symbol lists, visited in a fixed order.
    seqs = [[id_of[bytes([b])] for b in w.encode()] for w in sorted(words)]
    freqs = [words[w] for w in sorted(words)]
    counts = defaultdict(int)   # pair -> occurrences, weighted by word frequency
    where = defaultdict(set)    # pair -> words that (may) hold it; stale entries are skipped
    for i, seq in enumerate(seqs):
        for p in zip(seq, seq[1:]):
            counts[p] += freqs[i]
            where[p].add(i)
    # Max-heap by count, then by the pair's bytes: entries go stale when a count changes (a new
    # entry is pushed then), and a popped entry counts only if it matches the current count.
    heap = [(-c, token_bytes[a], token_bytes[b], a, b) for (a, b), c in counts.items()]
    heapq.heapify(heap)
    merges, merged = [], set()
    while len(token_bytes) < vocab_size and heap:
        c, _, _, a, b = heapq.heappop(heap)
        if counts.get((a, b), 0) != -c or -c < 2:
            continue
        pair = (a, b)
        new_bytes = token_bytes[a] + token_bytes[b]
        new = id_of.get(new_bytes)
        if new is None:  # the same bytes may already be a token, reached by other merges
            new = id_of[new_bytes] = len(token_bytes)
            token_bytes.append(new_bytes)
        if pair not in merged:
            merges.append(pair)
            merged.add(pair)
        changed = set()
        for i in sorted(where.pop(pair)):
            seq, f = seqs[i], freqs[i]
            out, j = [], 0
            while j < len(seq):
                if j + 1 < len(seq) and seq[j] == a and seq[j + 1] == b:
                    out.append(new)
                    j += 2
                else:
                    out.append(seq[j])
                    j += 1
            if len(out) == len(seq):
                continue
            delta = Counter(zip(out, out[1:]))
            delta.subtract(Counter(zip(seq, seq[1:])))
            for p, d in delta.items():
                if d:
                    counts[p] += d * f
                    changed.add(p)
                    if d > 0:
                        where[p].add(i)
            seqs[i] = out
        counts.pop(pair, None)
        for p in sorted(changed):
            if counts.get(p, 0) > 0:
                heapq.heappush(heap, (-counts[p], token_bytes[p[0]], token_bytes[p[1]], p[0], p[1]))
            else:
                counts.pop(p, None)
        if log and len(merges) % 1000 == 0:
            log(f"  {len(merges)} merges, vocabulary {len(token_bytes)}")
    return Tokenizer(token_bytes, merges)


# --- Hugging Face files ----------------------------------------------------------------------
def tokenizer_json(tok):
    special = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i, s in enumerate(SPECIALS)]
    split = lambda regex: {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}
    bos = {"SpecialToken": {"id": BOS, "type_id": 0}}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            split(DIGITS_RE), split(CJK_RE), split(WORD_RE),
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        # BOS first, as add_bos_token says (and as transformers' LlamaTokenizerFast rebuilds it).
        "post_processor": {"type": "TemplateProcessing",
                           "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": BOS, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {BOS: {"id": BOS, "ids": [tok.bos_id], "tokens": [BOS]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {tok.token_string(i): i for i in range(tok.vocab_size())},
                  "merges": [f"{tok.token_string(a)} {tok.token_string(b)}" for a, b in tok.merges]},
    }


def tokenizer_config(model_max_length):
    template = json.load(open(DEEPSEEK_CONFIG, encoding="utf-8"))["chat_template"]
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": model_max_length,
        "tokenizer_class": "LlamaTokenizerFast",
        "chat_template": template,  # DeepSeek-V3's, verbatim: the only one dsinfer renders
    }


def save(tok, out_dir, model_max_length):
    os.makedirs(out_dir, exist_ok=True)
    for name, obj in (("tokenizer.json", tokenizer_json(tok)), ("tokenizer_config.json", tokenizer_config(model_max_length))):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.write("\n")


def load(model_dir):
    """The tokenizer in model_dir/tokenizer.json (one this script wrote)."""
    j = json.load(open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8"))["model"]
    by_id = sorted((i, t) for t, i in j["vocab"].items())
    if [i for i, _ in by_id] != list(range(len(by_id))) or [t for _, t in by_id[:len(SPECIALS)]] != SPECIALS:
        raise ValueError(f"{model_dir}/tokenizer.json: not a vocabulary written by bpe.py")
    token_bytes = [t.encode() if i < len(SPECIALS) else bytes(CHAR_BYTE[c] for c in t) for i, t in by_id]
    merges = [tuple(j["vocab"][s] for s in m.split(" ")) for m in j["merges"]]
    return Tokenizer(token_bytes, merges)


def read_documents(path):
    """The file's documents, each its paragraphs joined by newlines: data.py writes one paragraph
    per line and an empty line after each document, and the trainer feeds the model whole
    documents, so BPE learns from the same text (a newline after punctuation is part of the
    punctuation's pre-token, and may be merged with it)."""
    with open(path, encoding="utf-8") as f:
        blocks = f.read().split("\n\n")
    return ["\n".join(line.strip() for line in b.split("\n") if line.strip()) for b in blocks if b.strip()]


def train_and_write(train_path, vocab_size, out_dir, model_max_length=1024, log=print):
    """Trains on the lines of train_path and writes out_dir/tokenizer.json and
    tokenizer_config.json; returns the tokenizer."""
    t0 = time.time()
    tok = train(read_documents(train_path), vocab_size, log)
    if log:
        log(f"trained in {time.time() - t0:.1f} s: {len(tok.merges)} merges, vocabulary {tok.vocab_size()}")
    save(tok, out_dir, model_max_length)
    if log:
        log(f"wrote {out_dir}/tokenizer.json and tokenizer_config.json")
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, help="training text, one paragraph per line, documents separated by an empty line (data.py's train.txt)")
    ap.add_argument("--vocab-size", type=int, default=4096, help="all tokens, special ones included")
    ap.add_argument("--out", required=True, help="folder for tokenizer.json and tokenizer_config.json")
    ap.add_argument("--model-max-length", type=int, default=1024,
                    help="tokenizer_config.json's model_max_length: the demo's max_position_embeddings")
    args = ap.parse_args()
    train_and_write(args.train, args.vocab_size, args.out, args.model_max_length)
    t0 = time.time()
    tok = load(args.out)
    docs = read_documents(args.train)
    n_tokens = sum(len(tok.encode(doc)) for doc in docs)
    n_bytes = sum(len(doc.encode()) for doc in docs)
    print(f"{args.train}: {len(docs)} documents, {n_bytes} bytes -> {n_tokens} tokens (+ BOS and EOS per document), "
          f"{n_bytes / n_tokens:.2f} bytes per token (encoded in {time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
