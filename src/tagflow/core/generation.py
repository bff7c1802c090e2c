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


def generate_static(tok, model, conversations: list[Messages], *, max_new_tokens: int, batch_size: int,
                    decode: bool = True, min_new_tokens: int = 0,
                    cuda_graph: bool | None = None) -> list[str] | list[list[int]]:
    """Greedy answers, as `generate_chat` gives them, from a loop built for throughput: one
    preallocated KV cache (transformers' `StaticCache`) reused by every batch, the batch padded to
    a fixed size, and, on CUDA, each decoding step replayed as one captured CUDA graph. `generate`
    spends most of a step launching ~20 small kernels per layer from Python and growing its cache
    by concatenation; a replayed graph launches them all at once and writes the cache in place.
    Works for decoder models whose attention takes a 4D mask (sdpa, eager); others fall back to
    `generate_chat`. `min_new_tokens` forbids end-of-sequence before that many tokens (benchmarks)."""
    import inspect

    import torch

    impl = getattr(model.config, "_attn_implementation", None)
    if impl not in ("sdpa", "eager") or not conversations:
        return generate_chat(tok, model, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size,
                             decode=decode, min_new_tokens=min_new_tokens)
    device = model.device
    cuda_graph = device.type == "cuda" if cuda_graph is None else cuda_graph
    texts = tok.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False)
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    rows = max(1, min(batch_size, len(ids)))
    # one cache length for the whole call, so one graph serves every batch
    cache_len = -(-(len(ids[order[0]]) + max_new_tokens) // 64) * 64
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    eos = _eos_ids(tok, model)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    accepted = inspect.signature(base.forward).parameters
    dtype = next(model.parameters()).dtype

    from transformers import StaticCache
    cache = StaticCache(config=model.config, max_cache_len=cache_len)
    positions = torch.arange(cache_len, device=device)
    # the decoding step's inputs and output live at fixed addresses (graph replay reads them there)
    cur = torch.full((rows, 1), pad_id, dtype=torch.long, device=device)
    pad = torch.zeros(rows, dtype=torch.long, device=device)
    pos = torch.zeros((), dtype=torch.long, device=device)
    eos_bias = torch.zeros(model.config.vocab_size, dtype=torch.float32, device=device)
    nxt = torch.zeros(rows, dtype=torch.long, device=device)

    def forward(input_ids, position_ids, allowed, cache_position):
        extra = {"logits_to_keep": 1} if "logits_to_keep" in accepted else {}
        if "cache_position" in accepted:
            extra["cache_position"] = cache_position
        out = model(input_ids=input_ids, position_ids=position_ids, attention_mask=_mask(allowed, impl, dtype),
                    past_key_values=cache, use_cache=True, **extra)
        return out.logits[:, -1].float() + eos_bias

    def step():
        allowed = ((positions >= pad[:, None]) & (positions <= pos))[:, None, None, :]
        nxt.copy_(forward(cur, (pos - pad)[:, None], allowed, pos.view(1)).argmax(-1))

    graph = None
    outputs: list = [None] * len(ids)
    with torch.inference_mode():
        if cuda_graph:
            graph = _capture(step, cache, forward, rows, cache_len, device)
        for start in range(0, len(order), rows):
            members = order[start:start + rows]
            batch = [ids[i] for i in members]
            batch += [batch[0]] * (rows - len(batch))           # fixed batch size: repeat a row
            longest = max(map(len, batch))
            cache.reset()
            pad.copy_(torch.tensor([longest - len(b) for b in batch], device=device))
            prompt = torch.tensor([[pad_id] * (longest - len(b)) + b for b in batch], device=device)
            i = torch.arange(longest, device=device)
            allowed = ((positions >= pad[:, None, None]) & (positions <= i[:, None])) | (positions == i[:, None])
            eos_bias[eos] = float("-inf") if min_new_tokens > 0 else 0.0
            logits = forward(prompt, (i - pad[:, None]).clamp(min=0), allowed[:, None], i)
            token = logits.argmax(-1)
            new = [token]
            done = torch.isin(token, eos)
            for t in range(1, max_new_tokens):
                if t == min_new_tokens:
                    eos_bias[eos] = 0.0
                cur.copy_(token[:, None])
                pos.fill_(longest + t - 1)
                graph.replay() if graph is not None else step()
                token = torch.where(done, torch.full_like(nxt, pad_id), nxt)
                new.append(token)
                done |= torch.isin(token, eos)
                if t % 8 == 0 and bool(done.all()):             # a host sync: only every 8 steps
                    break
            answers = torch.stack(new, 1)
            ended = torch.isin(answers, eos)
            lengths = torch.where(ended.any(1), ended.int().argmax(1), answers.shape[1]).tolist()
            for row, i_conv in enumerate(members):
                answer = answers[row, :lengths[row]].tolist()
                outputs[i_conv] = tok.decode(answer, skip_special_tokens=True) if decode else answer
    return outputs


def _eos_ids(tok, model):
    """The tokens that end an answer, as `generate` reads them: the generation config's, else the
    tokenizer's."""
    import torch

    config = getattr(model, "generation_config", None)
    ids = getattr(config, "eos_token_id", None)
    ids = ids if isinstance(ids, list) else [ids] if ids is not None else [tok.eos_token_id]
    return torch.tensor(sorted(set(ids)), dtype=torch.long, device=model.device)


def _mask(allowed, impl: str, dtype):
    """sdpa takes a boolean mask (True: attend); eager adds a float one."""
    import torch

    if impl == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


def _capture(step, cache, forward, rows: int, cache_len: int, device):
    """The decoding step as a CUDA graph. One forward first allocates the cache's tensors (lazily
    made), then the step runs a few times on a side stream, as capture requires; the cache is
    emptied afterwards (those runs wrote to it)."""
    import torch

    cache.reset()
    first = torch.zeros((rows, 1), dtype=torch.long, device=device)
    forward(first, first, torch.ones((rows, 1, 1, cache_len), dtype=torch.bool, device=device), first[0])
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    cache.reset()
    return graph
