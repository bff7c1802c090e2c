"""Batched chat generation with a transformers causal LM: the one loop that teachers (sampling)
and the LLM tagger backend (greedy) share. Prompts are left-padded by the tokenizer (see
`core.models.load_causal_lm`), so one batch may mix lengths; conversations are batched in order
of length (answers come back in the caller's order), so a batch pads to a similar length instead
of to its longest outlier: on a GPU, where padding is most of the wasted work, this is the
cheapest speed-up there is."""
from __future__ import annotations

Messages = list[dict]


def generate_chat(tok, model, conversations: list[Messages], *, max_new_tokens: int,
                  batch_size: int, sample: bool = False, temperature: float = 1.0,
                  seed: int | None = None, processor=None, decode: bool = True,
                  **generate_kwargs) -> list[str] | list[list[int]]:
    """One answer per conversation, in order: decoded text, or the new token ids (`decode=False`).
    `seed` (sampling) seeds each batch alike; `processor()` makes a logits processor per batch
    (constrained decoding keeps per-batch state)."""
    import torch
    from transformers import LogitsProcessorList

    order = sorted(range(len(conversations)), key=lambda i: -_length(conversations[i]))
    outputs: list = [None] * len(conversations)
    for start in range(0, len(order), max(1, batch_size)):
        members = order[start:start + max(1, batch_size)]
        batch = [conversations[i] for i in members]
        enc = tok.apply_chat_template(batch, add_generation_prompt=True, return_tensors="pt",
                                      padding=True, return_dict=True).to(model.device)
        if seed is not None:
            torch.manual_seed(seed)
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=sample, pad_token_id=tok.pad_token_id)
        if sample:
            kwargs["temperature"] = temperature
        if processor is not None:
            kwargs["logits_processor"] = LogitsProcessorList([processor()])
        with torch.inference_mode():
            out = model.generate(**enc, **kwargs, **generate_kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        answers = tok.batch_decode(new, skip_special_tokens=True) if decode else new.tolist()
        for i, answer in zip(members, answers):
            outputs[i] = answer
    return outputs


def _length(conversation: Messages) -> int:
    """Characters of a conversation's messages: a tokenizer-free proxy for its prompt length."""
    return sum(len(str(m.get("content", ""))) for m in conversation)
