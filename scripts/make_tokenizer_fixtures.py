#!/usr/bin/env python3
"""Builds the tokenizer conformance fixtures under Tests/Fixtures/tokenizers/.

There is no model hub access in our environment, so instead of downloading the
real Llama/Qwen/SmolLM/Mistral tokenizers this script *trains* small ones with
the Hugging Face `tokenizers` library, configured exactly like each family, on a
generated corpus. It then records what HF produces for a set of probe strings so
the Swift tokenizer can be checked against it without Python.

Run once by a developer (never needed to build or test):

    .venv-ref/bin/python scripts/make_tokenizer_fixtures.py

Requires `tokenizers` (0.19.x) and `transformers` (4.44.x). Output is
byte-for-byte reproducible for a given library version (the model fixtures record
hashes of these tokenizer files, so rerun scripts/make_model_fixtures.py after any
change here).

Each folder holds what transformers' `save_pretrained` writes (tokenizer.json,
tokenizer_config.json, special_tokens_map.json) plus expected.json: for every probe
string the ids with and without special tokens, the token strings, and the decoded
text with and without special tokens, checked to agree between
`AutoTokenizer.from_pretrained(folder)` and `tokenizers.Tokenizer.from_file`; then
decodings of arbitrary id runs (cut UTF-8, unknown ids) and the tokenizer's metadata.

Folders: llama3, qwen2, smollm, llama2, mistral (configured like those families),
metaspace_unk (Metaspace decoder, <unk> without byte fallback), added_tokens (every
added-token flag, RobertaProcessing), misc (generic normalizers and Split behaviors).
split_patterns.json records HF's splits of random strings under the GPT-2, Llama-3
and Qwen2 regular expressions.
"""

import json
import os
import random
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import (  # noqa: E402
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
import transformers  # noqa: E402
from transformers import AutoTokenizer, LlamaTokenizerFast, PreTrainedTokenizerFast  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "tokenizers"

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

INPUT_NAMES = ["input_ids", "attention_mask"]

# --------------------------------------------------------------------------------------
# Corpus


WORDS = (
    "the of and to in is was that for on with as by at from this have not are but had his they "
    "you were her she there been one all we their can has more when will would who so no if out "
    "time people year way day man thing woman life child world school state family student group "
    "country problem hand part place case week company system program question work government "
    "number night point home water room mother area money story fact month lot right study book "
    "eye job word business issue side kind head house service friend father power hour game line "
    "end member law car city community name president team minute idea kid body information back "
    "parent face others level office door health person art war history party result change "
    "morning reason research girl guy moment air teacher force education tokenizer model language "
    "transformer attention embedding sequence vector matrix gradient training inference quickly "
    "beautiful important different large small young little great good new old long high early "
    "running jumped walking thought understood believe remember consider appear happen suggest"
).split()

ACCENTED = (
    "café naïve résumé Zürich São Paulo Ångström façade crème brûlée jalapeño piñata "
    "coöperate Dvořák Łódź Øresund smörgåsbord über Müller déjà vu fiancée Málaga"
).split()

FOREIGN = [
    "Καλημέρα κόσμε", "Привет, мир!", "Здравствуйте, как дела?", "你好，世界！", "東京は日本の首都です。",
    "안녕하세요 세계", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "Xin chào thế giới",
    "Ελληνικά γράμματα", "こんにちは、お元気ですか？", "中文分词测试", "ภาษาไทย",
]

EMOJI = ["😀", "🚀", "👍🏽", "👨‍👩‍👧", "❤️", "🎉", "🤖", "🔥", "✅", "🇫🇷"]

CODE = [
    "def square(x):\n    return x ** 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    'let json = {"name": "Ada", "age": 36, "tags": ["math", "code"]};',
    "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;",
    "if x != None and y <= 3.5:\n    print(f\"{x=} {y=}\")",
    "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }",
    "git commit -m 'Fix bug #42' && git push origin main",
    "const add = (a, b) => a + b; // arrow function",
]

URLS = [
    "https://example.com/path/to/page?q=tokenizer&lang=en#section-2",
    "http://www.test.org/index.html",
    "mailto:someone@example.co.uk",
    "ftp://files.example.net/pub/data_2024.tar.gz",
]

CONTRACTIONS = [
    "don't", "I'm", "we'll", "they've", "she'd", "it's", "can't", "won't", "you're",
    "DON'T", "I'M", "WE'LL", "THEY'VE", "It'S", "o'clock", "rock'n'roll",
]


def make_corpus(seed=1234, lines=4000):
    rng = random.Random(seed)

    def number():
        kind = rng.randrange(6)
        if kind == 0:
            return str(rng.randrange(10 ** rng.randrange(1, 9)))
        if kind == 1:
            return f"{rng.uniform(0, 1000):.{rng.randrange(1, 5)}f}"
        if kind == 2:
            return f"{rng.randrange(1900, 2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        if kind == 3:
            return f"${rng.randrange(1, 10000):,}.{rng.randrange(100):02d}"
        if kind == 4:
            return f"{rng.randrange(101)}%"
        return f"+1 ({rng.randrange(200, 999)}) {rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}"

    def sentence():
        n = rng.randrange(4, 18)
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.72:
                w = rng.choice(WORDS)
                if rng.random() < 0.1:
                    w = w.capitalize()
                elif rng.random() < 0.02:
                    w = w.upper()
            elif r < 0.8:
                w = rng.choice(CONTRACTIONS)
            elif r < 0.88:
                w = number()
            elif r < 0.94:
                w = rng.choice(ACCENTED)
            elif r < 0.97:
                w = rng.choice(EMOJI)
            else:
                w = rng.choice(["(", ")", "\"", "-", "--", "...", "&", "/", "*", ":", ";"]) + rng.choice(WORDS)
            parts.append(w)
        s = " ".join(parts)
        s = s[0].upper() + s[1:]
        if rng.random() < 0.3:
            cut = rng.randrange(1, len(parts))
            s = " ".join(parts[:cut]) + rng.choice([",", ";", " -", ":"]) + " " + " ".join(parts[cut:])
        return s + rng.choice([".", ".", ".", "!", "?", "...", "!?", ""])

    out = []
    for _ in range(lines):
        r = rng.random()
        if r < 0.70:
            out.append(" ".join(sentence() for _ in range(rng.randrange(1, 4))))
        elif r < 0.80:
            out.append(rng.choice(CODE))
        elif r < 0.86:
            out.append(rng.choice(FOREIGN) + " " + sentence())
        elif r < 0.90:
            out.append("Visit " + rng.choice(URLS) + " for details.")
        elif r < 0.95:
            out.append("\t".join(sentence() for _ in range(2)) + "\r\n" + sentence())
        else:
            out.append("  " + sentence() + "\n\n" + "    " + sentence() + "   ")
    return out


# --------------------------------------------------------------------------------------
# Probe strings


def probe_texts():
    long_word = "".join(random.Random(7).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(300))
    return [
        "",
        " ",
        "  ",
        "\n",
        "\t",
        "Hello world",
        "Hello, world!",
        " Hello world",
        "Hello world ",
        "   leading and trailing spaces   ",
        "The quick brown fox jumps over the lazy dog.",
        "I don't think they're coming; we'll see what she'd say.",
        "DON'T SHOUT! I'M SERIOUS. It'S fine, WE'LL GO.",
        "o'clock rock'n'roll 'quoted' ''double'' 'S 'Ll",
        "Numbers: 1234567 and 3.14159, plus 1,000,000 and 007.",
        "12345678901234567890",
        "Price: $1,299.99 (50% off) on 2024-05-01 at 10:30am.",
        "café naïve résumé Zürich São Paulo Ångström",
        "Cafe\u0301 with a combining accent vs caf\u00e9 precomposed",
        "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ and ligatures ﬁ ﬂ and ½ ² ①",
        "Καλημέρα κόσμε! Привет, мир!",
        "你好，世界！東京は日本の首都です。",
        "안녕하세요 세계 and ภาษาไทย and مرحبا بالعالم",
        "Emoji: 😀🚀👍🏽 👨‍👩‍👧 ❤️ 🇫🇷",
        "🤖🤖🤖",
        "tabs\tand\t\ttabs",
        "line one\nline two\n\nline four",
        "windows\r\nline\r\nendings\r\n",
        "mixed \n \t \r\n whitespace   \n\n   end",
        "trailing newline\n",
        "\n\nleading newlines",
        "multiple     spaces     here",
        "non\u00a0breaking\u3000ideographic\u2028separator",
        "def square(x):\n    return x ** 2\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
        '{"name": "Ada", "tags": ["math", "code"], "n": 36}',
        "https://example.com/path/to/page?q=tokenizer&lang=en#section-2",
        "email: someone@example.co.uk",
        "C:\\Users\\name\\file.txt",
        "--- *** ### !!! ??? ... ,,,",
        "a",
        "A",
        "supercalifragilisticexpialidocious",
        long_word,
        "hello<|endoftext|>world",
        "<|endoftext|>",
        "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
        "<|begin_of_text|>Some text<|end_of_text|>",
        "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>",
        "</s>",
        "<s>Hello</s>",
        "hello </s> world",
        "Sentence.</s><s>Next",
        "<unk> is not special text",
        "[INST] What is 2+2? [/INST] 4",
        "<tool_call>{\"name\": \"f\"}</tool_call>",
        "▁already▁has▁meta▁spaces",
        "Mixed: The café costs €3.50 — that's 10× cheaper 😀!",
        "ALL CAPS SENTENCE WITH NUMBERS 42 AND 1999",
        "snake_case_identifier and camelCaseIdentifier and kebab-case",
        "ſ long s and 'ſ and the Kelvin sign K",
        "\u0000 control \u0007 chars \u001b[0m",
        "ends with space ",
        "x" * 40 + " " + "ab" * 30,
        "a  <mask>  b [R]   c <both>  d",
        "<mask><mask>  [R][R]  <both><both>",
        "cat concat cats the cat. Cat CAT 'cat'",
        "Dog DOG dog hotdog ﬁsh fish FISH",
        "<a><b> <a> <a><b><b> abc ab abcd",
        "In New York and new york and new  york",
        "x-y-z -- 12-34 word,with;punct: TitleCase CamelCaseWord",
        "  spaced    out\t\ttext  ",
        "``quoted'' 12345 and x1y22z333",
    ]


# --------------------------------------------------------------------------------------
# Tokenizer construction


def added(content, special=True):
    return AddedToken(content, special=special, normalized=False, lstrip=False, rstrip=False, single_word=False)


def byte_level_trainer(vocab_size, special_tokens=()):
    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[added(t) for t in special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )


def build_llama3(corpus):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.train_from_iterator(corpus, byte_level_trainer(1000))
    specials = [
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
        "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
    ]
    tok.add_special_tokens([added(t) for t in specials])
    bos = "<|begin_of_text|>"
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(
            single=f"{bos} $A",
            pair=f"{bos} $A {bos}:1 $B:1",
            special_tokens=[(bos, tok.token_to_id(bos))],
        ),
    ])
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token="<|eot_id|>",
        clean_up_tokenization_spaces=True,
        model_max_length=131072,
        model_input_names=INPUT_NAMES,
    )
    extra = {
        "add_bos_token": True,
        "add_eos_token": False,
        "chat_template": (
            "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}"
            "<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
            "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
        ),
    }
    return hf, extra


def build_qwen2(corpus):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.train_from_iterator(corpus, byte_level_trainer(1000))
    tok.add_special_tokens([added("<|endoftext|>"), added("<|im_start|>"), added("<|im_end|>")])
    # Qwen2.5 ships these two as added tokens that are *not* special: they survive
    # skip_special_tokens when decoding.
    tok.add_tokens([added("<tool_call>", special=False), added("</tool_call>", special=False)])
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        model_input_names=INPUT_NAMES,
    )
    extra = {
        "bos_token": None,
        "errors": "replace",
        "split_special_tokens": False,
        "chat_template": (
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
            " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
        ),
    }
    return hf, extra


def build_smollm(corpus):
    specials = [
        "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>",
        "<file_sep>", "<filename>", "<gh_stars>",
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    # Like SmolLM, the special tokens are part of the trained vocabulary (ids 0...).
    tok.train_from_iterator(corpus, byte_level_trainer(800, specials))
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        clean_up_tokenization_spaces=False,
        model_max_length=8192,
        model_input_names=INPUT_NAMES,
    )
    extra = {
        "chat_template": (
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
            " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
        ),
    }
    return hf, extra


def restrict_alphabet(corpus, keep):
    """Drops all but the `keep` most frequent characters from the training text, so the
    rarest ones are left to byte fallback or <unk>. (The trainer's own limit_alphabet
    breaks frequency ties in hash order, which would make the fixtures non-reproducible.)"""
    counts = {}
    for line in corpus:
        for ch in line:
            counts[ch] = counts.get(ch, 0) + 1
    allowed = {ch for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]}
    return ["".join(ch for ch in line if ch in allowed) for line in corpus]


def train_sentencepiece_bpe(corpus, vocab_size=1000):
    """Trains BPE the way SentencePiece does it (merges never cross a word boundary,
    words carry a leading ▁, rare characters are left to byte fallback), then lays the
    result out like Llama-2's tokenizer.json: <unk> <s> </s>, 256 <0xNN> tokens, pieces."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False)
    tok.train_from_iterator(restrict_alphabet(corpus, 120), trainer)
    model = json.loads(tok.to_str())["model"]
    trained = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in trained:
        if piece not in vocab:
            vocab[piece] = len(vocab)
    return vocab, model["merges"]


def sp_added_tokens(vocab, extra=()):
    def entry(content, token_id):
        return {"id": token_id, "content": content, "single_word": False, "lstrip": False,
                "rstrip": False, "normalized": False, "special": True}

    tokens = [entry(t, vocab[t]) for t in ("<unk>", "<s>", "</s>")]
    next_id = len(vocab)
    for t in extra:
        tokens.append(entry(t, next_id))
        next_id += 1
    return tokens


SP_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"},
    {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0},
]}


def sp_template(bos="<s>", bos_id=1):
    return {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }


def sp_model(vocab, merges):
    return {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": merges}


def build_llama2(sp):
    vocab, merges = sp
    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": sp_added_tokens(vocab),
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        ]},
        "pre_tokenizer": None,
        "post_processor": sp_template(),
        "decoder": SP_DECODER,
        "model": sp_model(vocab, merges),
    }
    tok = Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))
    hf = LlamaTokenizerFast(
        tokenizer_object=tok,
        bos_token=added("<s>"), eos_token=added("</s>"), unk_token=added("<unk>"),
        add_bos_token=True, add_eos_token=False, legacy=True,
        clean_up_tokenization_spaces=False, model_max_length=4096,
        model_input_names=INPUT_NAMES,
    )
    def serialized(content):
        # Llama-2's own tokenizer_config.json spells its special tokens this way.
        return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": False,
                "rstrip": False, "single_word": False}

    return hf, {"add_bos_token": True, "add_eos_token": False, "pad_token": None, "legacy": True,
                "bos_token": serialized("<s>"), "eos_token": serialized("</s>"), "unk_token": serialized("<unk>"),
                "sp_model_kwargs": {}, "use_default_system_prompt": False}


def build_mistral(sp):
    vocab, merges = sp
    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": sp_added_tokens(vocab, extra=("[INST]", "[/INST]")),
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        "post_processor": sp_template(),
        "decoder": SP_DECODER,
        "model": sp_model(vocab, merges),
    }
    tok = Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))
    hf = LlamaTokenizerFast(
        tokenizer_object=tok,
        bos_token=added("<s>"), eos_token=added("</s>"), unk_token=added("<unk>"),
        additional_special_tokens=["[INST]", "[/INST]"],
        add_bos_token=True, add_eos_token=False, legacy=False,
        clean_up_tokenization_spaces=False, model_max_length=32768,
        model_input_names=INPUT_NAMES,
    )
    extra = {
        "add_bos_token": True, "add_eos_token": False, "pad_token": None, "legacy": False,
        "chat_template": (
            "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
            "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}"
            "{% endif %}{% endfor %}"
        ),
    }
    return hf, extra


def build_metaspace_unk(corpus):
    """Not a real family: exercises the Metaspace decoder, prepend_scheme "always" with
    split=true, and <unk> without byte fallback (fuse_unk=false)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=500, min_frequency=2, show_progress=False,
                                  special_tokens=[added("<unk>"), added("<s>"), added("</s>")])
    tok.train_from_iterator(restrict_alphabet(corpus, 60), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>",
        clean_up_tokenization_spaces=False, model_max_length=512, model_input_names=INPUT_NAMES,
    )
    return hf, {}


def build_added_tokens(corpus):
    """Not a real family: added tokens with every matching flag, matched before a
    lowercasing normalizer, so that `normalized` tokens match case-insensitively."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, byte_level_trainer(400))
    tok.add_special_tokens([
        AddedToken("<mask>", lstrip=True, special=True, normalized=False),
        AddedToken("[R]", rstrip=True, special=True, normalized=False),
        AddedToken("<both>", lstrip=True, rstrip=True, special=True, normalized=False),
        AddedToken("<a>", special=True, normalized=False),
        AddedToken("<a><b>", special=True, normalized=False),
    ])
    tok.add_tokens([
        AddedToken("cat", single_word=True, special=False, normalized=False),
        AddedToken("DOG", normalized=True, special=False),
        AddedToken("ﬁsh", normalized=True, special=False),
        AddedToken("the", normalized=False, special=False),
        AddedToken("new york", normalized=False, special=False),
        AddedToken("ab", normalized=False, special=False),
        AddedToken("abc", normalized=False, special=False),
    ])
    tok.post_processor = processors.RobertaProcessing(sep=("[R]", tok.token_to_id("[R]")),
                                                      cls=("<mask>", tok.token_to_id("<mask>")))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False,
                                 model_input_names=INPUT_NAMES)
    return hf, {}


def build_misc(corpus):
    """Not a real family: the generic normalizers, Split behaviors, a regex outside the
    hand-coded set and Digits(contiguous), in front of byte-level BPE."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([
        normalizers.Strip(left=True, right=True),
        normalizers.Replace(Regex(r"[\t ]{2,}"), " "),
        normalizers.Replace("``", "\""),
        normalizers.NFD(),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("-", behavior="merged_with_previous"),
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[,;:]"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"\p{Lu}"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"[a-z]+"), behavior="isolated", invert=True),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, byte_level_trainer(600))
    tok.add_special_tokens([added("<|endoftext|>")])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", clean_up_tokenization_spaces=False,
                                 model_input_names=INPUT_NAMES)
    return hf, {}


# --------------------------------------------------------------------------------------
# Output


def token_text(value):
    if value is None or isinstance(value, str):
        return value
    return value.content if hasattr(value, "content") else value["content"]


def write_family(name, kind, hf, extra):
    folder = OUT / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    hf.save_pretrained(str(folder))
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.update(extra)
    config["model_input_names"] = INPUT_NAMES
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")

    auto = AutoTokenizer.from_pretrained(str(folder))
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cleanup = bool(config.get("clean_up_tokenization_spaces", False))

    def raw_decode(ids, skip):
        text = raw.decode(ids, skip_special_tokens=skip)
        return auto.clean_up_tokenization(text) if cleanup else text

    cases = []
    for text in probe_texts():
        ids = auto(text).input_ids
        plain = auto(text, add_special_tokens=False).input_ids
        assert ids == raw.encode(text).ids, (name, text, ids, raw.encode(text).ids)
        assert plain == raw.encode(text, add_special_tokens=False).ids, (name, text)
        decoded = auto.decode(ids)
        skipped = auto.decode(ids, skip_special_tokens=True)
        assert decoded == raw_decode(ids, False), (name, text, decoded)
        assert skipped == raw_decode(ids, True), (name, text, skipped)
        cases.append({
            "text": text,
            "ids": ids,
            "ids_no_special": plain,
            "tokens": [raw.id_to_token(i) for i in plain],
            "decoded": decoded,
            "decoded_skip_special": skipped,
        })

    # Decoding arbitrary id runs: prefixes that cut multi-byte characters in half,
    # special tokens in the middle, and ids the tokenizer does not know.
    rng = random.Random(99)
    size = raw.get_vocab_size(with_added_tokens=True)
    decode_cases = []
    for text in ["Emoji: 😀🚀👍🏽 and 你好", "héllo wörld", "x\n\ty  z"]:
        ids = raw.encode(text, add_special_tokens=False).ids
        for cut in range(1, len(ids)):
            decode_cases.append(ids[:cut])
    for _ in range(12):
        decode_cases.append([rng.randrange(size) for _ in range(rng.randrange(1, 12))])
    decode_cases.append([size + 5, 0, size + 100])
    decode_records = []
    for ids in decode_cases:
        record = {"ids": ids, "decoded": raw_decode(ids, False), "decoded_skip_special": raw_decode(ids, True)}
        if all(i < size for i in ids):
            assert record["decoded"] == auto.decode(ids), (name, ids)
            assert record["decoded_skip_special"] == auto.decode(ids, skip_special_tokens=True), (name, ids)
        decode_records.append(record)

    spec = json.loads((folder / "tokenizer.json").read_text())
    added_special = sorted(t["id"] for t in spec["added_tokens"] if t["special"])
    single = auto.backend_tokenizer.post_processor
    probe = raw.encode("x", add_special_tokens=False).ids
    with_special = raw.encode("x").ids
    prefix = with_special[: with_special.index(probe[0])] if probe else []
    suffix = with_special[with_special.index(probe[0]) + len(probe):] if probe else []

    def tok_and_id(attr):
        value = token_text(getattr(auto, attr))
        return value, (auto.convert_tokens_to_ids(value) if value is not None else None)

    expected = {
        "name": name,
        "kind": kind,
        "vocab_size": raw.get_vocab_size(with_added_tokens=True),
        "model_vocab_size": raw.get_vocab_size(with_added_tokens=False),
        "special_token_ids": added_special,
        "adds_bos": len(prefix) > 0,
        "adds_eos": len(suffix) > 0,
        "post_processor": type(single).__name__ if single is not None else None,
        "cases": cases,
        "decode_cases": decode_records,
        "versions": {"tokenizers": __import__("tokenizers").__version__, "transformers": transformers.__version__},
    }
    for attr in ("bos_token", "eos_token", "pad_token", "unk_token"):
        value, token_id = tok_and_id(attr)
        expected[attr] = value
        expected[attr + "_id"] = token_id
    (folder / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    total = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{name}: vocab {expected['vocab_size']}, {len(cases)} cases, {total // 1024} KB")


def random_split_strings(count=240, seed=5):
    rng = random.Random(seed)
    pools = [
        (0.30, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        (0.10, "0123456789"),
        (0.14, " "),
        (0.05, "\t\n\r"),
        (0.08, "'''sStTmMdDlLrReEvV"),
        (0.10, ".,;:!?-_()[]{}<>\"/\\@#$%^&*+=|~`"),
        (0.06, "éüñçøßÅÉĳſK"),
        (0.04, "\u0301\u0308\u200d\ufe0f"),
        (0.05, "你好世界東京한국어"),
        (0.03, "😀🚀👍🏽❤"),
        (0.03, "\u00a0\u3000\u2028\u0085\u000b\u000c\u2009"),
        (0.02, "٣४²½Ⅻ①"),
    ]
    weights = [w for w, _ in pools]
    out = []
    for _ in range(count):
        n = rng.randrange(0, 40)
        chars = []
        for _ in range(n):
            pool = rng.choices(pools, weights)[0][1]
            chars.append(rng.choice(pool))
        out.append("".join(chars))
    return out


def write_split_patterns():
    strings = random_split_strings() + [
        "I'm don't DON'T 'S 'sS 'll 'LL 're 'RE 've 'd 'ſ",
        "  \n  x", "a\r\n\r\nb", "x   \t\ty", "hello   ", "   ", "\n \n ", ".\n\n", " !!\r\n ",
        "123456789 12 1", "abc123def", "  123", "٣٤٥٦ ²³", "e\u0301\u0301x",
    ]
    patterns = {"llama3": LLAMA3_PATTERN, "qwen2": QWEN2_PATTERN, "gpt2": GPT2_PATTERN}
    record = {"patterns": patterns, "cases": []}
    splitters = {k: pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for k, p in patterns.items()}
    for s in strings:
        entry = {"text": s}
        for key, splitter in splitters.items():
            entry[key] = [piece for piece, _ in splitter.pre_tokenize_str(s)]
        record["cases"].append(entry)
    (OUT / "split_patterns.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"split_patterns: {len(strings)} strings")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    corpus = make_corpus()
    write_split_patterns()
    write_family("llama3", "byte-level BPE", *build_llama3(corpus))
    write_family("qwen2", "byte-level BPE", *build_qwen2(corpus))
    write_family("smollm", "byte-level BPE", *build_smollm(corpus))
    sp = train_sentencepiece_bpe(corpus)
    write_family("llama2", "SentencePiece BPE", *build_llama2(sp))
    write_family("mistral", "SentencePiece BPE", *build_mistral(sp))
    write_family("metaspace_unk", "SentencePiece BPE", *build_metaspace_unk(corpus))
    write_family("added_tokens", "byte-level BPE", *build_added_tokens(corpus))
    write_family("misc", "byte-level BPE", *build_misc(corpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
