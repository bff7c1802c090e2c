"""Topic classifiers behind one small interface, so training, evaluation and the registered
model treat them alike:

    clf = make_classifier(kind, labels, params); clf.fit(texts, Y, val_texts, Y_val) -> info
    clf.scores(texts) -> (n_docs, n_labels) array in [0, 1]; clf.save(dir); load_classifier(dir)

`svm`: TF-IDF over word 1..n-grams + one-vs-rest LinearSVC (the floor). Its scores are the
logistic of the SVM margin: 0.5 is the SVM's own decision boundary, not a calibrated probability
(per-class thresholds tuned on validation take care of the operating point).
`transformer`: any backbone with a multi-label head (BCE), adapted with LoRA (peft; the head is
trained whole, at its own higher learning rate), 4-bit base weights (QLoRA) on CUDA with
bitsandbytes, early stopping on validation micro-F1. Encoders (`pooling: auto` -> `mean`):
mean of the token states over the attention mask + a linear head (topics/pooling.py says why);
decoders (`auto` -> `model`): `AutoModelForSequenceClassification`, which reads the last
non-pad token.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import ConfigError, DataError, ModelError
from ..core.log import Progress, get_logger

log = get_logger("topics.classifiers")

META = "topics_model.json"


def micro_f1(Y: np.ndarray, P: np.ndarray) -> float:
    tp = float(np.logical_and(Y, P).sum())
    denom = float(Y.sum() + P.sum())
    return 2 * tp / denom if denom else 0.0


def _class_weight(params: dict):
    value = params.get("class_weight", "none")   # models saved before the option: unweighted
    if value not in ("none", "balanced"):
        raise ConfigError(f"topics svm class_weight {value!r}; expected none | balanced")
    return None if value == "none" else value


class SvmClassifier:
    kind = "svm"

    def __init__(self, labels: Sequence[str], params: dict):
        self.labels, self.params = list(labels), dict(params)
        self.pipeline = None

    def fit(self, texts, Y, val_texts=None, Y_val=None) -> dict:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.svm import LinearSVC

        p = self.params
        self.pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, int(p["ngram_max"])), min_df=int(p["min_df"]),
                            sublinear_tf=bool(p["sublinear_tf"]), dtype=np.float32),
            OneVsRestClassifier(LinearSVC(C=float(p["C"]), class_weight=_class_weight(p))))
        import warnings
        with warnings.catch_warnings():  # labels without a training positive: constant, by design
            warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
            self.pipeline.fit(list(texts), np.asarray(Y))
        # one-vs-rest answers a label without training positives with a constant 0 margin, which
        # would read as 0.5 (predicted); such labels get no score instead
        self.pipeline.untrained_labels_ = ~np.asarray(Y, bool).any(0)
        info = {"features": len(self.pipeline[0].vocabulary_),
                "labels_without_training_docs": int(self.pipeline.untrained_labels_.sum())}
        if val_texts is not None:
            info["val_micro_f1"] = micro_f1(np.asarray(Y_val), self.scores(val_texts) >= 0.5)
        return info

    def scores(self, texts) -> np.ndarray:
        margin = np.asarray(self.pipeline.decision_function(list(texts)), dtype=np.float64)
        margin = margin.reshape(len(texts), len(self.labels))
        margin[:, self.pipeline.untrained_labels_] = -np.inf
        return 1.0 / (1.0 + np.exp(-margin))

    def save(self, folder: str | Path) -> None:
        import joblib

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.pipeline, folder / "svm.joblib")
        _write_meta(folder, self)

    def _load(self, folder: Path) -> None:
        import joblib

        self.pipeline = joblib.load(folder / "svm.joblib")

    def describe(self) -> dict:
        return {"kind": self.kind, "model": "tfidf+linearsvc", **self.params}


def resolve_backbone(model_id: str) -> str:
    """embedded encoders (core.encoders) and embedded decoders (core.models) by name; anything
    else (hub name, folder) as given."""
    from ..core import encoders, models

    name = model_id.removeprefix("embedded:")
    if model_id.startswith("embedded:") and name in {**encoders.EMBEDDED, **encoders.UNPACKED}:
        return encoders.resolve_encoder(model_id)
    if model_id.startswith("embedded:") and name not in models.EMBEDDED:
        known = sorted({**encoders.EMBEDDED, **encoders.UNPACKED, **models.EMBEDDED})
        raise ConfigError(f"unknown embedded backbone {name!r}; known: {known}")
    return models.resolve(model_id)


class TransformerClassifier:
    """LoRA fine-tune of a transformer backbone, in its own loop, on one device (cuda:0 or the
    CPU): unlike the tagger's SFT/IPO it has no multi-process (`processes`) mode."""
    kind = "transformer"
    infer_batch = 32

    def __init__(self, labels: Sequence[str], params: dict):
        self.labels, self.params = list(labels), dict(params)
        self.model = self.tokenizer = None
        # models saved before `pooling` existed used the architecture's own head
        self.params.setdefault("pooling", "model")
        if self.params["pooling"] not in ("auto", "mean", "model"):
            raise ConfigError(f"topics transformer pooling {self.params['pooling']!r}; expected auto | mean | model")
        from ..core.models import pick_runtime

        self.runtime = pick_runtime(bool(self.params.get("load_in_4bit")))
        if self.params.get("load_in_4bit") and not self.runtime.load_in_4bit:
            log.warning("topics transformer: 4-bit (QLoRA) needs CUDA and bitsandbytes; loading "
                        "%s weights on %s instead", self.runtime.dtype, self.runtime.device)
        if int(self.params.get("threads") or 0) > 0:
            import torch
            torch.set_num_threads(int(self.params["threads"]))

    # ---- model
    def _base(self):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve_backbone(self.params["backbone"])
        try:
            tok = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load backbone {self.params['backbone']!r} ({path}): {exc}") from exc
        if tok.pad_token is None:  # decoders: pad with EOS; the head reads the last real token
            tok.pad_token = tok.eos_token
        tok.padding_side = "right"
        if self.params["pooling"] == "auto":  # resolved once; the saved metadata keeps the answer
            from .pooling import is_encoder
            self.params["pooling"] = "mean" if is_encoder(path) else "model"
        kwargs: dict = {}
        if self.runtime.load_in_4bit:
            import torch
            from transformers import BitsAndBytesConfig
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=self.runtime.dtype,
                bnb_4bit_use_double_quant=True)
            kwargs["device_map"] = self.runtime.device_map
            kwargs["dtype"] = torch.float32 if self.runtime.dtype is None else self.runtime.dtype
        if self.params["pooling"] == "mean":
            from transformers import AutoModel
            return tok, AutoModel.from_pretrained(path, **kwargs)   # the head comes in _wrap
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(self.labels), problem_type="multi_label_classification",
            id2label=dict(enumerate(self.labels)), label2id={label: i for i, label in enumerate(self.labels)},
            **kwargs)
        model.config.pad_token_id = tok.pad_token_id
        return tok, model

    def _wrap(self, model):
        """The mean-pooling head around an encoder; decoders' models already carry theirs."""
        if self.params["pooling"] != "mean":
            return model
        from .pooling import MeanPoolClassifier
        return MeanPoolClassifier(model, len(self.labels))

    def _to_device(self, model):
        """4-bit weights were placed by their loader; only a head made here still has to move."""
        if not self.runtime.load_in_4bit:
            return model.to(self.runtime.target)
        if self.params["pooling"] == "mean":
            model.classifier.to(self.runtime.target)
        return model

    def _autocast(self, training: bool = False):
        """bf16 autocast where the runtime picked bf16: on CUDA always, on a CPU only for
        inference (CPU autocast training steps measured 5-10x slower than fp32 here)."""
        import contextlib

        import torch
        if self.runtime.dtype == torch.float32 or (training and self.runtime.device == "cpu"):
            return contextlib.nullcontext()
        return torch.autocast(self.runtime.device, dtype=self.runtime.dtype)

    def _encode(self, texts: Sequence[str]):
        enc = self.tokenizer(list(texts), truncation=True, max_length=int(self.params["max_length"]),
                             padding=True, return_tensors="pt")
        return {k: v.to(self.runtime.target) for k, v in enc.items()}

    # ---- training
    def fit(self, texts, Y, val_texts=None, Y_val=None) -> dict:
        import torch
        from peft import LoraConfig, TaskType, get_peft_model

        p = self.params
        torch.manual_seed(int(p["seed"]))
        self.tokenizer, base = self._base()
        if self.runtime.load_in_4bit:
            from peft import prepare_model_for_kbit_training
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
        mean = p["pooling"] == "mean"
        model = self._wrap(get_peft_model(base, LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION if mean else TaskType.SEQ_CLS, r=int(p["lora_r"]),
            lora_alpha=int(p["lora_alpha"]), lora_dropout=float(p["lora_dropout"]),
            target_modules="all-linear")))
        texts, Y = list(texts), np.asarray(Y, dtype=np.float32)
        if not texts:
            raise DataError("no training documents")
        if mean:
            from .pooling import prior_logits
            with torch.no_grad():
                model.classifier.bias.copy_(prior_logits(Y))
        self.model = self._to_device(model)
        batch = int(p["batch_size"])
        steps_per_epoch = math.ceil(len(texts) / batch)
        total = int(p["max_steps"]) if int(p["max_steps"]) > 0 else max(1, int(steps_per_epoch * float(p["epochs"])))
        named = [(name, t) for name, t in model.named_parameters() if t.requires_grad]
        trainable = [t for _, t in named]
        head = [t for name, t in named if _is_head(name)]
        lora = [t for name, t in named if not _is_head(name)]
        # the head starts from scratch, LoRA from a trained backbone: the head moves faster
        optim = torch.optim.AdamW([{"params": lora, "lr": float(p["learning_rate"])},
                                   {"params": head, "lr": float(p["head_learning_rate"])}], weight_decay=0.0)
        started = time.monotonic()
        deadline = started + float(p["max_minutes"]) * 60 if float(p["max_minutes"]) > 0 else math.inf
        warmup = max(1, int(0.05 * total))
        sched = torch.optim.lr_scheduler.LambdaLR(
            optim, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
        rng = np.random.default_rng(int(p["seed"]))
        order: list[int] = []
        best = {"f1": -1.0, "step": 0, "state": None}
        history, bad_checks, losses = [], 0, []
        progress = Progress("topics.train", total, "steps", every=30)
        step = 0
        while step < total:
            if len(order) < batch:
                order += list(rng.permutation(len(texts)))
            idx, order = order[:batch], order[batch:]
            model.train()
            with self._autocast(training=True):
                out = model(**self._encode([texts[i] for i in idx]),
                            labels=torch.tensor(Y[idx], device=self.runtime.target))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            losses.append(float(out.loss.detach()))
            step += 1
            progress.update(step)
            out_of_time = time.monotonic() >= deadline
            last = step == total or out_of_time
            if val_texts is not None and (step % int(p["eval_every"]) == 0 or last):
                f1 = micro_f1(np.asarray(Y_val), self.scores(val_texts) >= 0.5)
                history.append({"step": step, "val_micro_f1": round(f1, 4),
                                "train_loss": round(float(np.mean(losses[-int(p["eval_every"]):])), 4)})
                log.info("step %d: validation micro-F1 %.4f (best %.4f)", step, f1, max(f1, best["f1"]))
                if f1 > best["f1"]:
                    best = {"f1": f1, "step": step, "state": _trainable_state(model)}
                    bad_checks = 0
                else:
                    bad_checks += 1
                    if bad_checks >= int(p["patience"]):
                        log.info("early stop at step %d (best step %d)", step, best["step"])
                        break
            if out_of_time or time.monotonic() >= deadline:   # a check that ran past it ends here too
                log.info("stopped at step %d: topics transformer max_minutes %s reached", step, p["max_minutes"])
                break
        progress.done()
        if best["state"] is not None:
            _load_trainable_state(model, best["state"])
        return {"steps": step, "planned_steps": total, "best_step": best["step"], "pooling": p["pooling"],
                "best_val_micro_f1": round(best["f1"], 4), "history": history,
                "train_seconds": round(time.monotonic() - started, 1), "runtime": self.runtime.describe(),
                "trainable_params": int(sum(t.numel() for t in trainable))}

    # ---- inference
    def scores(self, texts) -> np.ndarray:
        import torch

        texts = list(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        order = np.argsort([len(t) for t in texts])  # similar lengths batch with little padding
        self.model.eval()
        with torch.no_grad(), self._autocast():
            for start in range(0, len(texts), self.infer_batch):
                idx = order[start:start + self.infer_batch]
                logits = self.model(**self._encode([texts[i] for i in idx])).logits
                out[idx] = torch.sigmoid(logits.float()).cpu().numpy()
        return out

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        if self.params["pooling"] == "mean":
            self.model.encoder.save_pretrained(folder / "adapter")
            self.model.save_head(folder)
        else:
            self.model.save_pretrained(folder / "adapter")
        self.tokenizer.save_pretrained(folder / "adapter")
        _write_meta(folder, self)

    def _load(self, folder: Path) -> None:
        from peft import PeftModel

        self.tokenizer, base = self._base()
        model = PeftModel.from_pretrained(base, str(folder / "adapter"))
        if not self.runtime.load_in_4bit:
            model = model.merge_and_unload()
        model = self._wrap(model)
        if self.params["pooling"] == "mean":
            model.load_head(folder)
        self.model = self._to_device(model).eval()

    def describe(self) -> dict:
        return {"kind": self.kind, "model": self.params["backbone"], **self.params}


def _is_head(name: str) -> bool:
    """The classification head's parameters: the mean-pooling head's, or peft's trained copy of
    a decoder's `score` layer."""
    return name.startswith("classifier.") or "modules_to_save" in name


def _trainable_state(model) -> dict:
    return {name: t.detach().clone() for name, t in model.named_parameters() if t.requires_grad}


def _load_trainable_state(model, state: dict) -> None:
    import torch

    with torch.no_grad():
        for name, t in model.named_parameters():
            if name in state:
                t.copy_(state[name])


KINDS = {"svm": SvmClassifier, "transformer": TransformerClassifier}


def make_classifier(kind: str, labels: Sequence[str], params: dict):
    if kind not in KINDS:
        raise ConfigError(f"unknown topics classifier {kind!r}; known: {sorted(KINDS)}")
    return KINDS[kind](labels, params)


def _write_meta(folder: Path, clf) -> None:
    (folder / META).write_text(json.dumps({"kind": clf.kind, "labels": clf.labels, "params": clf.params},
                                          indent=2) + "\n")


def load_classifier(folder: str | Path):
    """A saved classifier, rebuilt from its own metadata (kind, labels, parameters)."""
    folder = Path(folder)
    meta_path = folder / META
    if not meta_path.exists():
        raise ModelError(f"{folder}: not a saved topics classifier (no {META})")
    meta = json.loads(meta_path.read_text())
    clf = make_classifier(meta["kind"], meta["labels"], meta["params"])
    clf._load(folder)
    return clf
