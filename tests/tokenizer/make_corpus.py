#!/usr/bin/env python3
"""Builds the tokenizer exactness corpus: corpus/corpus.jsonl, one JSON string per line.

Deterministic (fixed seed), so anyone can regenerate the committed file and get the same bytes:

    python3 tests/tokenizer/make_corpus.py > tests/tokenizer/corpus/corpus.jsonl

The strings aim at every place a tokenizer can go wrong: many scripts, emoji sequences, digits
of several scripts, full-width forms, math, code, JSON, HTML, whitespace runs of every kind,
special-token strings inside text, random code points from every plane, and long inputs.
Each line is [category, text]; the tests use the text and print the category on a mismatch."""
import json
import random
import sys

rng = random.Random(20240603)

SPECIALS = [
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<｜User｜>", "<｜Assistant｜>",
    "<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>",
    "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>",
    "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>", "<｜tool▁sep｜>", "<|EOT|>", "<｜place▁holder▁no▁0｜>",
    "<｜place▁holder▁no▁17｜>", "<｜place▁holder▁no▁796｜>",
]
NEAR_SPECIALS = ["<｜User", "User｜>", "<|User|>", "<｜USER｜>", "<｜end▁of▁sentence", "<<｜User｜>>",
                 "<｜tool▁sep｜｜>", "<|EOT|", "<|eot|>", "<｜place▁holder▁no▁9999｜>", "<", "｜", "▁"]

ENGLISH = ("the quick brown fox jumps over the lazy dog while a model reads every token of the "
           "prompt and the cache keeps the blocks it has already seen so the next request starts "
           "faster than the first one did because nothing is computed twice I've we're they'll "
           "don't can't it's O'Neil rock'n'roll e-mail state-of-the-art U.S.A. Mr. Smith's").split()
SCRIPTS = {
    "chinese": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切布",
    "japanese": "こんにちは世界。今日はいい天気ですね。私は東京に住んでいます。カタカナもひらがなも漢字も使います。ありがとうございました。コンピューターのプログラムを書くのが好きです。",
    "korean": "안녕하세요 세계 오늘은 날씨가 좋네요 저는 서울에 살고 있습니다 한국어 문장을 토큰으로 나눕니다 감사합니다 컴퓨터 프로그램",
    "arabic": "مرحبا بالعالم هذا نص عربي لاختبار المقسم اللغة العربية جميلة جدا شكرا لك على المساعدة في البرمجة",
    "hebrew": "שלום עולם זהו טקסט בעברית לבדיקת המפרק תודה רבה על העזרה בתכנות",
    "devanagari": "नमस्ते दुनिया यह हिंदी में एक परीक्षण वाक्य है धन्यवाद कंप्यूटर प्रोग्राम भाषा",
    "thai": "สวัสดีชาวโลก นี่คือข้อความภาษาไทยสำหรับทดสอบ ขอบคุณมากครับ คอมพิวเตอร์โปรแกรม",
    "cyrillic": "Привет мир это русский текст для проверки токенизатора спасибо большое за помощь Ёлка Щука",
    "greek": "Γειά σου κόσμε αυτό είναι ελληνικό κείμενο για δοκιμή ευχαριστώ πολύ ΑΒΓΔ ςσΣ",
    "latin_diacritics": "café naïve façade São Paulo Zürich Ångström Dvořák Łódź Şişli İstanbul ǅemal ﬁne ﬂow Straße",
}
EMOJI = ["😀", "👍", "👍🏽", "👍🏿", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸", "🇩🇪🇫🇷", "1️⃣", "#️⃣", "❤️", "❤",
         "🧑🏾‍🚀", "🫠", "🤌🏻", "👁️‍🗨️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "☺︎", "✌🏼", "🔥🔥🔥", "🙏", "💯", "🦀", "🐍", "🎉🎊"]
DIGITS = ["0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩৪৫৬৭৮৯", "๐๑๒๓๔๕๖๗๘๙",
          "０１２３４５６７８９", "²³¹⁴", "½¼¾⅓", "ⅠⅡⅢⅫ", "①②③⑳", "𝟎𝟏𝟐𝟑", "〇一二三", "፩፪፫"]
FULLWIDTH = "ＡＢＣＤＥＦｘｙｚ！？＃＄％＆（）［］｛｝＜＞＝＋－＊／＼｜～＠＾＿｀：；，．"
MATH = "∑∫∮√∛∞≤≥≠≈≡∀∃∄∈∉⊂⊃⊆⊇∪∩∧∨¬⇒⇔→←↔×÷±∓∂∇∆πθλμσΩℵℝℕℤℚℂ∘⊕⊗⟨⟩‖⌈⌉⌊⌋°′″‰"
SPACES = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", "\r\n\r\n", "\u00a0", "\u3000", "\u2003",
          "\u2009", "\u202f", "\u205f", "\u1680", "\u2028", "\u2029", "\u0085", "\u000b", "\u000c",
          "\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", " \n ", "\t \t", "    ", "        "]
PUNCT = list(".,;:!?-()[]{}\"'`~@#$%^&*_+=|\\/<>") + ["...", "--", "—", "–", "…", "«", "»", "“", "”", "‘", "’",
                                                      "。", "，", "、", "！", "？", "「", "」", "『", "』", "·", "•", "§", "¶"]

CODE = [
    'def fib(n):\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n',
    '#include <vector>\n\nint main(int argc, char** argv) {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;\n  return v.size() > 2 ? 0 : 1;\n}\n',
    'const fetchData = async (url) => {\n\tconst res = await fetch(url, { method: "GET" });\n\tif (!res.ok) throw new Error(`HTTP ${res.status}`);\n\treturn res.json();\n};\n',
    'fn main() {\n    let xs: Vec<u32> = (1..=10).filter(|x| x % 2 == 0).collect();\n    println!("{:?}", xs);\n}\n',
    'SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total >= 100.50 GROUP BY u.id HAVING n > 3;\n',
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Test &amp; check</title></head>\n<body>\n  <p class="note">Hello, <b>world</b>!&nbsp;&lt;tag&gt;</p>\n</body>\n</html>\n',
    '{"model": "deepseek-v3", "messages": [{"role": "user", "content": "Hi!\\nHow are you?"}], "temperature": 0.7, "max_tokens": 1024, "stream": true}',
    '[{"id": 1, "tags": ["a", "b"], "score": -3.25e-4, "ok": false, "next": null}, {"id": 2, "nested": {"k": "v\\u00e9"}}]',
    '$ git log --oneline | head -n 5 && make -j$(nproc) 2>&1 | tee build.log\n',
    '    if (x != nullptr && *x == \'\\0\') { return -1; }  // guard\n\t\telse {\n\t\t\tx++;\n\t\t}\n',
    '# Title\n\n- item one\n- item **two** with `code`\n\n```python\nprint("hi")\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n',
    'x = [i**2 for i in range(1000) if i % 7 == 3]; y = {k: v for k, v in zip("abc", (1, 2, 3))}',
    'https://example.com/path/to/page?query=value&other=123#fragment mailto:someone@example.org 192.168.0.1:8080',
    '\\begin{equation} E = mc^2 \\quad \\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2} \\end{equation}',
]


def words(script, n):
    pool = SCRIPTS[script]
    if script in ("chinese", "japanese"):
        return "".join(rng.choice(pool) for _ in range(n))
    ws = pool.split()
    return " ".join(rng.choice(ws) for _ in range(n))


def random_code_point(plane=None):
    while True:
        if plane is None:
            plane = rng.choice([0, 0, 0, 1, 1, 2, 3, 14, 15, 16])
        cp = plane * 0x10000 + rng.randrange(0x10000)
        if not (0xD800 <= cp <= 0xDFFF):
            return chr(cp)


def piece():
    k = rng.randrange(12)
    if k == 0:
        return " ".join(rng.choice(ENGLISH) for _ in range(rng.randint(1, 12)))
    if k == 1:
        return words(rng.choice(list(SCRIPTS)), rng.randint(1, 15))
    if k == 2:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4)))
    if k == 3:
        d = rng.choice(DIGITS)
        return "".join(rng.choice(d) for _ in range(rng.randint(1, 14)))
    if k == 4:
        return "".join(rng.choice(FULLWIDTH) for _ in range(rng.randint(1, 8)))
    if k == 5:
        return "".join(rng.choice(MATH) for _ in range(rng.randint(1, 6)))
    if k == 6:
        return rng.choice(SPACES)
    if k == 7:
        return rng.choice(PUNCT)
    if k == 8:
        return rng.choice(SPECIALS) if rng.random() < 0.7 else rng.choice(NEAR_SPECIALS)
    if k == 9:
        c = rng.choice(CODE)
        a = rng.randrange(len(c))
        return c[a:a + rng.randint(5, 80)]
    if k == 10:
        return "".join(random_code_point() for _ in range(rng.randint(1, 5)))
    return rng.choice(ENGLISH).capitalize() + rng.choice(["", ".", ",", "!", "'s", "'t", "'ll", "'re"])


def mixed(n):
    return "".join(piece() + (rng.choice(SPACES[:4]) if rng.random() < 0.5 else "") for _ in range(n))


def main():
    rows = []
    add = lambda cat, s: rows.append((cat, s))
    # Small, hand-picked edge cases first.
    for s in ["", " ", "  ", "\n", "a", "A", "0", "00", "000", "0000", "1234567", "12.5", "-3", "'s", "'S",
              "I'm", "don't", "HELLO", "Hello World", " Hello", "Hello ", "\tHello\n", "a\r\nb", "\r\n\r\n",
              " \n", "\n ", "x  y", "x   \n  y", "end.  ", "<", ">", "<>", "|", "｜", "▁", "<s>", "</s>"]:
        add("edge", s)
    for b in range(256):
        add("latin1", chr(b))
    for sp in SPECIALS + NEAR_SPECIALS:
        add("special", sp)
        add("special", "text" + sp + "text")
        add("special", " " + sp + " ")
        add("special", sp + sp)
    for e in EMOJI:
        add("emoji", e)
        add("emoji", "I like " + e + " a lot" + e + e)
    for d in DIGITS:
        add("digits", d)
        add("digits", d * 3 + " " + d[:3] + "," + d[3:7])
    for c in CODE:
        add("code", c)
    for sc in SCRIPTS:
        add("script", SCRIPTS[sc])
    for sp in SPACES:
        add("whitespace", "a" + sp + "b")
        add("whitespace", sp * 5)
        add("whitespace", "word" + sp * 3 + "\n" + sp + "word")
    for cat, count, fn in [
        ("english", 250, lambda: " ".join(rng.choice(ENGLISH) for _ in range(rng.randint(1, 40)))),
        ("script", 600, lambda: words(rng.choice(list(SCRIPTS)), rng.randint(1, 40))),
        ("emoji", 150, lambda: mixed(rng.randint(1, 6)) + "".join(rng.choice(EMOJI) for _ in range(3))),
        ("digits", 150, lambda: " ".join("".join(rng.choice(rng.choice(DIGITS)) for _ in range(rng.randint(1, 9)))
                                         for _ in range(rng.randint(1, 6)))),
        ("fullwidth", 60, lambda: "".join(rng.choice(FULLWIDTH) for _ in range(rng.randint(1, 30)))),
        ("math", 60, lambda: " ".join("".join(rng.choice(MATH) for _ in range(3)) for _ in range(6))),
        ("whitespace", 200, lambda: "".join(rng.choice(SPACES) + rng.choice(ENGLISH) for _ in range(rng.randint(1, 12)))),
        ("special", 250, lambda: mixed(rng.randint(1, 4)) + rng.choice(SPECIALS) + mixed(rng.randint(0, 4))),
        ("code", 200, lambda: rng.choice(CODE)[rng.randrange(40):] + mixed(1)),
        ("random_cp", 400, lambda: "".join(random_code_point() for _ in range(rng.randint(1, 40)))),
        ("random_bmp", 150, lambda: "".join(random_code_point(0) for _ in range(rng.randint(1, 40)))),
        ("mixed", 900, lambda: mixed(rng.randint(1, 30))),
    ]:
        for _ in range(count):
            add(cat, fn())
    for _ in range(12):
        s = ""
        while len(s) <= 10000 + rng.randrange(5000):
            s += mixed(50)
        add("long", s)
    add("long", " " * 12000)
    add("long", "a" * 12000)
    add("long", "1" * 11000)
    add("long", "你" * 11000)
    add("long", "\n" * 5000 + "\t" * 5000 + "x")
    add("long", "😀" * 3000)
    for cat, s in rows:
        sys.stdout.write(json.dumps([cat, s], ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
