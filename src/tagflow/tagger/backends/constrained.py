"""Constrained decoding: the generator can only write a JSON array of distinct thesaurus labels.

Every answer has the shape the adapter was trained on, `["Label", "Label"]` (json.dumps), so the
allowed token sequences are: the opening `["`, then items, each one label followed either by
`", "` (another item follows) or by `"]` (the end), then end-of-sequence. Items are tokenized
whole (label + separator), not label and separator apart, because BPE merges across the seam
(`Culture (anthropology)",` ends in one token `)",`): the model is steered along exactly the
tokens it learned.

A token trie over all items is walked for each sequence at each step; a child is allowed only if
(a) some concept below it has not been emitted yet (no repeats), (b) the array can still be
closed within the generation budget, and (c) the item limit is kept. So invalid JSON, unknown
labels and repeats cannot be generated; if a sequence is cut off anyway, `read_answer` keeps its
complete items.
"""
from __future__ import annotations

import json
import math

from ...thesaurus.index import strings

OPEN, NEXT, CLOSE = '["', '", "', '"]'


class _Node:
    __slots__ = ("children", "concepts", "leaf", "close_rest")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.concepts: set[str] = set()     # concepts of the items below (for "no repeats")
        self.leaf: tuple[str, str, str] | None = None   # ("next" | "close", uri, label) at an item's end
        self.close_rest = math.inf          # fewest tokens from here to the end of a closing item


class LabelTrie:
    """Token trie over `label + NEXT` and `label + CLOSE` for every label of the given languages."""

    def __init__(self, tokenizer, thesaurus, languages: list[str]):
        self.tok = tokenizer
        self.open = tokenizer.encode(OPEN, add_special_tokens=False)
        self.eos = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        self.root = _Node()
        self.labels = 0
        table = thesaurus.table
        for row in table.to_dict("records"):
            seen = set()
            for lang in languages:
                for label in strings(row.get(f"pref_{lang}")) + strings(row.get(f"alt_{lang}")):
                    # A quote would need escaping and could be confused with a separator.
                    if label.casefold() in seen or '"' in label or "\\" in label:
                        continue
                    seen.add(label.casefold())
                    self._add(label, row["uri"])
        self._settle(self.root)

    def _add(self, label: str, uri: str) -> None:
        self.labels += 1
        for kind, sep in (("next", NEXT), ("close", CLOSE)):
            node = self.root
            node.concepts.add(uri)
            for token in self.tok.encode(label + sep, add_special_tokens=False):
                node = node.children.setdefault(token, _Node())
                node.concepts.add(uri)
            node.leaf = (kind, uri, label)

    def _settle(self, root: _Node) -> None:
        """Compute close_rest bottom-up (iteratively: labels can be long)."""
        order, stack = [], [root]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(node.children.values())
        for node in reversed(order):
            if node.leaf and node.leaf[0] == "close":
                node.close_rest = 0
            for child in node.children.values():
                node.close_rest = min(node.close_rest, 1 + child.close_rest)

    def walk(self, generated: list[int]):
        """State after `generated`: (node, emitted (uri, label) items, status). status is "open"
        while the answer can go on (node None while the opening is being written), "closed" once
        the array is closed, "off" where the tokens leave the grammar (a free or cut answer)."""
        emitted: list[tuple[str, str]] = []
        if generated[:len(self.open)] != self.open[:len(generated)]:
            return None, emitted, "off"
        if len(generated) < len(self.open):
            return None, emitted, "open"
        node = self.root
        for token in generated[len(self.open):]:
            node = node.children.get(token)
            if node is None:
                return None, emitted, "off"
            if node.leaf:
                emitted.append(node.leaf[1:])
                if node.leaf[0] == "close":
                    return None, emitted, "closed"
                node = self.root
        return node, emitted, "open"

    def allowed(self, generated: list[int], budget: int, max_items: int) -> list[int]:
        """Token ids that keep `generated` inside the grammar, with `budget` new tokens in all."""
        if len(generated) < len(self.open):
            return [self.open[len(generated)]]
        node, emitted, status = self.walk(generated)
        if status != "open":
            return sorted(self.eos)
        used, left = {uri for uri, _ in emitted}, budget - len(generated) - 1   # tokens left after this one
        out = []
        for token, child in node.children.items():
            if child.concepts <= used:
                continue
            if child.leaf and child.leaf[0] == "next":
                # another item must follow and close in time, and the item limit must allow it
                if len(emitted) + 2 > max_items or self.root.close_rest + 1 > left:
                    continue
            elif child.close_rest + 1 > left:     # +1: the end-of-sequence token
                continue
            out.append(token)
        return out or sorted(self.eos)            # a dead end (rare): stop; read_answer repairs

    def read_answer(self, generated: list[int]) -> tuple[list[tuple[str, str]], bool]:
        """(emitted (uri, label) items, whether the array was closed) from generated token ids."""
        generated = [t for t in generated if t not in self.eos]
        _, emitted, status = self.walk(generated)
        return emitted, status == "closed"


def labels_json(labels: list[str]) -> str:
    return json.dumps(labels, ensure_ascii=False)


class TrieLogitsProcessor:
    """A transformers logits processor over a batch: everything outside `LabelTrie.allowed` is -inf.
    Made afresh per batch: the prompt length is taken from the first call (prompts are left-padded
    to one length, so generated tokens start at the same column in every row)."""

    def __init__(self, trie: LabelTrie, budget: int, max_items: int):
        self.trie, self.budget, self.max_items = trie, budget, max_items
        self.prompt_len: int | None = None

    def __call__(self, input_ids, scores):
        import torch

        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        mask = torch.full_like(scores, -math.inf)
        for row, ids in enumerate(input_ids[:, self.prompt_len:].tolist()):
            mask[row, self.trie.allowed(ids, self.budget, self.max_items)] = 0
        return scores + mask
