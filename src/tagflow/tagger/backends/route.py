"""Language routing: each chunk goes to the member backend configured for its language, guessed
from its script and stop words (`text.guess_language`).

Why: no embedded encoder is best everywhere. all-MiniLM-L6-v2 over English labels is the best
retriever for English text but reads French and Spanish poorly; multilingual e5 over en/fr/es
labels is the better one for those (README, "Backends compared"). With
`routes: "en=embedding,*=embedding@multilingual"` each gets the text it is good at.

Members are fitted into sub-directories of the route's own model directory, with their
parameters recorded beside them, so the registered model carries all of them."""
from __future__ import annotations

import json
from pathlib import Path

from ...core.errors import ConfigError, ModelError
from ..text import GUESSABLE_LANGUAGES, guess_language
from .base import ChunkSuggestions, TaggerBackend

STATE = "route.json"


def parse_routes(spec: str) -> dict[str, str]:
    """"en=embedding,*=embedding@multilingual" -> {"en": "embedding", "*": "embedding@multilingual"}."""
    from . import base_name, names

    routes = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        lang, sep, member = (x.strip() for x in part.partition("="))
        if not sep or not lang or not member or lang in routes:
            raise ConfigError(f"backend route.routes: {spec!r} must be distinct `lang=backend` pairs, "
                              f"e.g. 'en=embedding,*=embedding@multilingual'")
        if base_name(member) not in names() or base_name(member) in ("route", "llm"):
            raise ConfigError(f"backend route.routes: {member!r} cannot be a member (backends: "
                              f"{[n for n in names() if n not in ('route', 'llm')]}, or their variants)")
        routes[lang] = member
    if "*" not in routes:
        raise ConfigError(f"backend route.routes: {spec!r} has no `*=backend` for other languages")
    return routes


class RouteBackend(TaggerBackend):
    name = "route"
    needs_fit = True
    composite = True  # built with its members' parameters (see backends.make_backend)
    DEFAULT_PARAMETERS = {
        "routes": "en=embedding,*=embedding@multilingual",  # language=backend; `*`: all others
    }

    def __init__(self, params: dict, thesaurus, model_dir=None, member_params: dict | None = None):
        super().__init__(params, thesaurus, model_dir)
        if self.model_dir is None or not (self.model_dir / STATE).exists():
            raise ModelError(f"route: no fitted state in {self.model_dir} (run `tagflow tagger fit`)")
        from . import get_backend

        state = json.loads((self.model_dir / STATE).read_text())
        self.routes = state["routes"]
        self.members = {name: get_backend(name)(state["member_params"][name], thesaurus, self.model_dir / name)
                        for name in sorted(set(self.routes.values()))}

    def member_for(self, chunk: str) -> str:
        lang = guess_language(chunk, GUESSABLE_LANGUAGES)
        return self.routes.get(lang, self.routes["*"])

    def suggest(self, chunks: list[str]) -> list[ChunkSuggestions]:
        # Each member gets all of its chunks in one batch; answers go back in the chunks' order.
        by_member: dict[str, list[int]] = {}
        for i, chunk in enumerate(chunks):
            by_member.setdefault(self.member_for(chunk), []).append(i)
        out: list[ChunkSuggestions | None] = [None] * len(chunks)
        for name, indices in by_member.items():
            for i, result in zip(indices, self.members[name].suggest([chunks[i] for i in indices])):
                out[i] = result
        return out

    def training_ids(self) -> frozenset[str]:
        return frozenset().union(*(m.training_ids() for m in self.members.values()))

    def describe(self) -> dict:
        return {"routes": self.routes,
                "members": {name: m.describe() for name, m in self.members.items()}}

    @classmethod
    def fit(cls, params: dict, thesaurus, documents: list[dict], out_dir: Path,
            member_params: dict | None = None, validation: list[dict] | None = None) -> dict:
        from . import fit_members

        params = cls.resolve_params(params, "route")
        routes = parse_routes(params["routes"])
        resolved, summaries = fit_members(sorted(set(routes.values())), member_params, thesaurus,
                                          documents, out_dir, validation)
        (Path(out_dir) / STATE).write_text(json.dumps({"routes": routes, "member_params": resolved}, indent=2))
        return {"routes": routes, "members": summaries}
