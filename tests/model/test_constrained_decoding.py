"""Constrained decoding over the real SmolLM2 tokenizer: whatever the logits, the tokens a
`TrieLogitsProcessor` lets through spell a JSON array of distinct thesaurus labels that closes
within the budget. Random logits stand in for a model that has learned nothing."""
from __future__ import annotations

import json

import pytest

from tagflow.tagger.backends.constrained import LabelTrie, TrieLogitsProcessor


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from tagflow.core.models import resolve
    return AutoTokenizer.from_pretrained(resolve("embedded:smollm2-135m-instruct"))


@pytest.fixture(scope="module")
def trie(tok, tiny_thesaurus):
    return LabelTrie(tok, tiny_thesaurus, ["en", "fr"])


def decode_randomly(trie, tok, seed: int, budget: int, max_items: int) -> list[int]:
    """Greedy decoding of random logits through the processor, one sequence, like generate()."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    processor = TrieLogitsProcessor(trie, budget, max_items)
    ids = torch.zeros((1, 5), dtype=torch.long)          # a 5-token "prompt"
    for _ in range(budget):
        scores = torch.randn((1, len(tok)), generator=generator)
        token = int(processor(ids, scores).argmax())
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        if token == tok.eos_token_id:
            break
    return ids[0, 5:].tolist()


@pytest.mark.parametrize("budget,max_items", [(64, 10), (20, 10), (64, 2), (9, 3)])
def test_random_logits_always_spell_an_array_of_distinct_labels(trie, tok, tiny_thesaurus, budget, max_items):
    for seed in range(15):
        ids = decode_randomly(trie, tok, seed, budget, max_items)
        assert len(ids) <= budget
        labels = json.loads(tok.decode(ids, skip_special_tokens=True))
        uris = [tiny_thesaurus.resolve(label) for label in labels]
        assert labels and None not in uris, labels
        assert len(set(uris)) == len(uris) <= max_items, labels   # no concept twice
        items, closed = trie.read_answer(ids)
        assert closed and [u for u, _ in items] == uris


def test_labels_with_trailing_punctuation_follow_the_merged_tokens(tok, tiny_thesaurus):
    # BPE merges a label's last character with the separator (`)",`): the trie follows the
    # tokenization the model was trained on, which is that of the whole JSON answer.
    trie = LabelTrie(tok, tiny_thesaurus, ["en"])
    answer = json.dumps(["Museums", "Teachers", "Cultural heritage"])
    items, closed = trie.read_answer(tok.encode(answer, add_special_tokens=False))
    assert closed and [label for _, label in items] == ["Museums", "Teachers", "Cultural heritage"]
    assert trie.labels == 11    # 9 preferred + 2 alternative English labels


def test_a_cut_off_answer_keeps_its_complete_items(trie, tok):
    ids = tok.encode('["Museums", "Teachers", "Cultural her', add_special_tokens=False)
    items, closed = trie.read_answer(ids)
    assert not closed and [label for _, label in items] == ["Museums", "Teachers"]
