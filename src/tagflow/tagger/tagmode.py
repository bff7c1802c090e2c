"""The semantic-tagging-with-IPO recipe's own task, "tag mode" (`tagger.pairs.mode: tags`): at most
three short free tags in `[tag1][tag2][tag3]` form, on texts outside the thesaurus task.

Validity (`check_tags`, limits in `tagger.pairs.tags`): the whole answer, stripped, is one or more
bracketed groups, side by side or separated by spaces on one line, with nothing before, between
or after them; 1..max_tags groups; each tag (stripped) non-empty, at most max_tag_words words and
max_tag_chars characters, and one tag, not a list or a quoted string (no `,` `;` or `"` inside:
`[economy, inflation]` or a JSON array in brackets is not a tag answer); no tag twice (ignoring
case); no tag is the prompt's own placeholder (`tag1`, `Tag 2`, `tag`: an echo of the template, not a
tag); every tag has at least min_tag_letters letters (`[1]` or `[A]`, which a short IPO run
learned to answer, say nothing about the text). An invalid answer is named by its first
problem (PROBLEMS), so pair and evaluation figures can say why answers fail.

Texts (`read_texts`): a Reuters-21578 SGML folder (story bodies), a CSV with a `text` column (the
edu annotation pages) or a JSONL file with a `text` field (the smoke fixture). They are ordered by
a hash of their content, so the split does not depend on the file's order or on any seed: the
first `eval_texts` are held out for tagger_pref_evaluate, the rest are the pair prompts.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..core.errors import DataError
from .config import PairsConfig, TagModeConfig

PROBLEMS = ("malformed", "empty_tag", "too_many_tags", "not_one_tag", "placeholder", "not_a_word",
            "tag_too_long", "duplicate_tag")
_PLACEHOLDER = re.compile(r"tag\s*\d*", re.I)   # [tag1][tag2][tag3] copied from the prompt
_NOT_IN_A_TAG = re.compile(r'[,;"]')   # a list or a JSON string crammed into one bracket
_GROUP = r"\[[^\[\]\n]*\]"
_WHOLE = re.compile(rf"{_GROUP}(?:[ \t]*{_GROUP})*")
_INNER = re.compile(r"\[([^\[\]\n]*)\]")


def check_tags(raw: str, cfg: TagModeConfig) -> tuple[list[str] | None, str | None]:
    """(tags, None) for a valid answer, (None, problem) otherwise; see the module doc."""
    answer = raw.strip()
    if not _WHOLE.fullmatch(answer):
        return None, "malformed"
    tags = [t.strip() for t in _INNER.findall(answer)]
    if any(not t for t in tags):
        return None, "empty_tag"
    if len(tags) > cfg.max_tags:
        return None, "too_many_tags"
    if any(_NOT_IN_A_TAG.search(t) for t in tags):
        return None, "not_one_tag"
    if any(_PLACEHOLDER.fullmatch(t) for t in tags):
        return None, "placeholder"
    if any(sum(ch.isalpha() for ch in t) < cfg.min_tag_letters for t in tags):
        return None, "not_a_word"
    if any(len(t) > cfg.max_tag_chars or len(t.split()) > cfg.max_tag_words for t in tags):
        return None, "tag_too_long"
    if len({t.casefold() for t in tags}) < len(tags):
        return None, "duplicate_tag"
    return tags, None


def parse_tags(raw: str, cfg: TagModeConfig) -> list[str] | None:
    """The tags of a valid answer, None otherwise."""
    return check_tags(raw, cfg)[0]


def problem_counts(answers: list[str], cfg: TagModeConfig) -> dict[str, int]:
    """How many answers fail for each problem (valid answers are counted as `valid`)."""
    counts = dict.fromkeys(("valid",) + PROBLEMS, 0)
    for a in answers:
        counts[check_tags(a, cfg)[1] or "valid"] += 1
    return counts


# ---------------------------------------------------------------- texts

def read_texts(source: str | Path) -> list[str]:
    """The non-empty texts of a source (see the module doc), in file order."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: tag-mode text source not found (tagger.pairs.tags.texts)")
    if path.is_dir():
        from ..topics.reuters import read_dir

        texts = read_dir(path)["body"].tolist()
    elif path.suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path)
        if "text" not in frame.columns:
            raise DataError(f"{path}: a tag-mode CSV needs a `text` column; has {list(frame.columns)}")
        texts = frame["text"].dropna().astype(str).tolist()
    elif path.suffix == ".jsonl":
        from ..core.io import read_jsonl

        texts = [r.get("text") for r in read_jsonl(path)]
        if not all(isinstance(t, str) for t in texts):
            raise DataError(f"{path}: every tag-mode JSONL row needs a string `text` field")
    else:
        raise DataError(f"{path}: a tag-mode text source is a Reuters SGML folder, a .csv or a .jsonl file")
    return [t.strip() for t in texts if t and t.strip()]


def cut(text: str, max_chars: int) -> str:
    """The text up to max_chars, ended at a word boundary where there is one."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    return head.rsplit(None, 1)[0] if " " in head.strip() else head


def text_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def split_texts(texts: list[str], eval_texts: int) -> tuple[list[str], list[str]]:
    """(pair texts, held-out evaluation texts): distinct texts ordered by content hash, the first
    `eval_texts` held out. Fails when no text is left for pairs."""
    unique = sorted(set(texts), key=text_id)
    if len(unique) <= eval_texts:
        raise DataError(f"tag mode: {len(unique)} distinct texts, but {eval_texts} are held out for evaluation "
                        "(tagger.pairs.tags.eval_texts) and pairs need more")
    return unique[eval_texts:], unique[:eval_texts]


def tag_rows(cfg: PairsConfig, part: str) -> list[dict]:
    """Rows {id, text, prompt} of the `pairs` part (at most max_prompts when > 0) or the `eval`
    part; the text is cut to max_text_chars, and the prompt is the tag instruction over it."""
    t = cfg.tags
    pairs_part, eval_part = split_texts(read_texts(t.texts), t.eval_texts)
    texts = eval_part if part == "eval" else pairs_part
    if part == "pairs" and cfg.max_prompts > 0:
        texts = texts[:cfg.max_prompts]
    rows = []
    for text in texts:
        shown = cut(text, t.max_text_chars)
        rows.append({"id": f"tags-{text_id(text)}", "text": shown,
                     "prompt": [{"role": "user", "content": t.prompt.format(text=shown)}]})
    return rows
