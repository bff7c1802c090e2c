"""The tagflow HTTP service: tags documents with thesaurus concepts using the promoted (champion)
tagger, and answers for the other families from their champions (topics: services/topics_endpoints.py,
educational value: services/edu_endpoints.py), so one service and one page serve a librarian.

    bentoml serve services.tagger_service:Tagger --host 127.0.0.1 --port 3000   # from the project root

Endpoints (POST, JSON in and out unless said otherwise):
  /tag        {"text": "...", "title", "top_n": 10, "refine", "lang", "hierarchy"} (all but text optional)
              -> {"keywords": [{uri, label, score}], "model": {name, version}, "gate": {...}}
  /tag_batch  {"texts": ["...", ...], ...} -> {"results": [{"keywords": [...]}, ...], "model", "gate"}
  /tag_file   multipart: file (text, HTML, PDF or DOCX) + the same optional fields -> as /tag, plus
              the extracted text's length
  /topics, /topics_batch, /topics_file   topics with probabilities and per-class thresholds
  /edu, /edu_batch, /edu_file            educational value: score, int_score
  /info       {} -> which tagger version is loaded (or why none is), its gate verdict and card,
              the queue and the request limits; under `families`, the same for topics and edu
GET /       the service's own docs page (no remote scripts); GET /ui the librarian page;
GET /readyz 200 only while the tagger's champion is loaded (and, if TAGFLOW_READY_FAMILIES names
            them, e.g. "tagger,edu", those families' champions too). A family without a champion
            leaves the others serving: its endpoints answer 503 naming why, /info says so.
BentoML adds /livez, /healthz, /metrics, /docs.json.

The models come from the MLflow registry ($MLFLOW_TRACKING_URI): the version holding the
`champion` alias of `unesco-tagger` (TAGFLOW_MODEL_NAME names another), `reuters-topics`
(TAGFLOW_TOPICS_MODEL_NAME) and `fineweb-edu-multilingual` (TAGFLOW_EDU_MODEL_NAME). Everything
that shapes their answers comes from each model's own card, never from a params.yaml. Each alias
is followed both ways: every TAGFLOW_CHAMPION_RECHECK_SECONDS (default 5) a watcher thread per
family looks at it, loads a new version off the request path and swaps it in (promotion or
rollback; logged as "switched from vN to vM"). Every answer names the version and its gate
verdict, so a plumbing-only model cannot pass for a measured one.

At start (once, before workers), a registry that does not answer after
TAGFLOW_REGISTRY_START_ATTEMPTS tries (default 3, 2 s apart) ends `bentoml serve` with one message
and a non-zero status. A registry without a champion is fine: the service answers 503 (not ready)
until one is promoted.

Inference runs on one thread per family behind a bounded queue: concurrent requests with the same
parameters share one model call (collected for TAGFLOW_BATCH_WAIT_MS, default 10, up to
TAGFLOW_BATCH_TEXTS texts for the tagger, default 8; TAGFLOW_TOPICS_BATCH_TEXTS and
TAGFLOW_EDU_BATCH_TEXTS, default 32; a batch request is never split); with TAGFLOW_MAX_PENDING
(default 8) requests of a family queued or running, more are refused at once with 503 and
Retry-After; a request waits at most TAGFLOW_REQUEST_TIMEOUT_SECONDS (default 120) and then gets 504.
"""
from __future__ import annotations

import os
from typing import Annotated, Any, Literal

import bentoml
from pydantic import BaseModel, Field, model_serializer
from starlette.responses import JSONResponse

from services.common import (MAX_BATCH_TEXTS, MAX_FILE_BYTES, MAX_TEXT_CHARS, BodySizeLimit, Family, ModelRef,
                             StaticPages, Text, Texts, UploadedFile, check_registry_in_child,
                             families_from_env, model_name, read_upload)
from services.edu_endpoints import EduEndpoints, edu_family
from services.pages import docs_page, librarian_page
from services.topics_endpoints import TopicsEndpoints, topics_family
from tagflow.tagger.config import RegistryConfig
from tagflow.tagger.text import with_title

MAX_TOP_N = 50
# The raw body is refused before it is parsed. JSON can spend up to 12 bytes on one character
# (an escaped surrogate pair), so 4 MiB admits any body whose text is within MAX_TEXT_CHARS.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_PENDING = int(os.environ.get("TAGFLOW_MAX_PENDING", "8"))
REQUEST_TIMEOUT = float(os.environ.get("TAGFLOW_REQUEST_TIMEOUT_SECONDS", "120"))
BATCH_WAIT = float(os.environ.get("TAGFLOW_BATCH_WAIT_MS", "10")) / 1000
BATCH_TEXTS = int(os.environ.get("TAGFLOW_BATCH_TEXTS", "8"))    # texts per model call, across requests
MODEL_NAME = model_name("TAGFLOW_MODEL_NAME", RegistryConfig.model_name)
# What /readyz waits for: by default the tagger's champion only (topics and edu say in /info
# whether they are in service, and answer 503 while they are not).
READY_FAMILIES = families_from_env("TAGFLOW_READY_FAMILIES", "tagger", ("tagger", "topics", "edu"))
QUEUE = {"max_pending": MAX_PENDING, "batch_wait": BATCH_WAIT, "timeout": REQUEST_TIMEOUT}

TopN = Annotated[int, Field(strict=True, ge=1, le=MAX_TOP_N,
                            description="concepts to return (default: the model's own top_n)")]
FormTopN = Annotated[int, Field(ge=1, le=MAX_TOP_N, description="concepts to return (default: the model's own)")]
Hierarchy = Annotated[bool, Field(description="add each concept's broader path and micro-thesaurus")]
Title = Annotated[str, Field(max_length=1000, description="the document's title, read as its first paragraph "
                                                           "(titles name subjects densely: better keywords)")]


Refine = Literal["none", "specific", "balanced", "broad"]   # see tagflow.tagger.pipeline.refine
Lang = Literal["en", "fr", "es", "ar", "ru"]


class Node(BaseModel):
    uri: str
    label: str


class ConceptOut(BaseModel):
    uri: str
    label: str
    score: float
    # with hierarchy=true, when the model carries its thesaurus: top concept first, parent last
    broader: list[Node] | None = None
    micro_thesaurus: Node | None = None

    @model_serializer(mode="wrap")
    def _without_empty_hierarchy(self, handler):     # the hierarchy fields only when asked for
        data = handler(self)
        for key in ("broader", "micro_thesaurus"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class TagResponse(BaseModel):
    keywords: list[ConceptOut]
    model: ModelRef
    gate: dict


class FileTagResponse(TagResponse):
    chars: int


class DocumentKeywords(BaseModel):
    keywords: list[ConceptOut]


class BatchResponse(BaseModel):
    results: list[DocumentKeywords]
    model: ModelRef
    gate: dict


def broader_path(th: Any, uri: str, lang: str) -> list[Node]:
    """The chain of broader concepts above `uri`, top first (the first parent at each level)."""
    path, seen = [], {uri}
    parent = next(iter(th.broader.get(uri) or ()), None)
    while parent and parent not in seen and parent in th:
        seen.add(parent)
        path.append(Node(uri=parent, label=th.pref_label(parent, lang)))
        parent = next(iter(th.broader.get(parent) or ()), None)
    return path[::-1]


def micro_thesaurus(th: Any, uri: str) -> Node | None:
    group = th.micro.get(uri) if uri in th else None
    if not group:
        return None
    return Node(uri=group, label=th.row(uri).get("micro_thesaurus_label") or group)


@bentoml.service(name="tagger", traffic={"timeout": REQUEST_TIMEOUT + 30})
class Tagger(TopicsEndpoints, EduEndpoints):
    @bentoml.on_deployment
    def _registry_answers() -> None:
        """Runs once in the serve process before any worker: fail fast on a dead registry."""
        check_registry_in_child(MODEL_NAME)

    def __init__(self) -> None:
        self.tagger = Family("tagger", MODEL_NAME, batch_texts=BATCH_TEXTS, **QUEUE)
        self.families = {"tagger": self.tagger, "topics": topics_family(QUEUE), "edu": edu_family(QUEUE)}
        for name, family in self.families.items():
            family.start(wait=name in READY_FAMILIES)

    @bentoml.on_shutdown
    def _stop(self) -> None:
        for family in self.families.values():
            family.stop()

    async def __is_ready__(self) -> bool:
        return all(self.families[name].ready for name in READY_FAMILIES)

    async def _predict(self, texts: list[str], top_n: int | None, refine: str | None, lang: str | None,
                       hierarchy: bool) -> tuple[Any, list[list[ConceptOut]]] | JSONResponse:
        # What the request leaves out, the model decides (its card's settings), exactly as
        # evaluation measured it.
        params = {k: v for k, v in {"top_n": top_n, "refine": refine, "lang": lang}.items() if v is not None}
        result = await self.tagger.predict(texts, params)
        if isinstance(result, JSONResponse):
            return result
        loaded, rows = result
        label_lang = lang or (loaded.card.get("infer") or {}).get("label_lang") or "en"
        th = loaded.thesaurus if hierarchy else None
        return loaded, [[self._concept(k, th, label_lang) for k in list(row)[:top_n or MAX_TOP_N]]
                        for row in rows]

    @staticmethod
    def _concept(k: dict, th: Any, lang: str) -> ConceptOut:
        concept = ConceptOut(uri=k["uri"], label=k["label"], score=float(k["score"]))
        if th is not None:
            concept.broader = broader_path(th, k["uri"], lang)
            concept.micro_thesaurus = micro_thesaurus(th, k["uri"])
        return concept

    async def _answer(self, texts: list[str], top_n, refine, lang, hierarchy: bool, respond):
        """The prediction and the response built by `respond(keywords, identity)`: identity names
        the version that answered and its gate verdict."""
        result = await self._predict(texts, top_n, refine, lang, hierarchy)
        if isinstance(result, JSONResponse):
            return result
        loaded, keywords = result
        return respond(keywords, self.tagger.identity(loaded))

    @bentoml.api(route="/tag")
    async def tag(self, text: Text, title: Title | None = None, top_n: TopN | None = None,
                  refine: Refine | None = None, lang: Lang | None = None, hierarchy: Hierarchy = False) -> TagResponse:
        """Keywords (thesaurus concepts) for one document, best first. `title`, when the document
        has one, is read as its first paragraph; `refine` resolves parent/child pairs (none,
        specific, balanced, broad); `lang` picks the labels' language; `hierarchy` adds each
        concept's broader path and micro-thesaurus."""
        return await self._answer([with_title(text, title)], top_n, refine, lang, hierarchy,
                                  lambda keywords, identity: TagResponse(keywords=keywords[0], **identity))

    @bentoml.api(route="/tag_file")
    async def tag_file(self, file: UploadedFile, title: Title | None = None, top_n: FormTopN | None = None,
                       refine: Refine | None = None, lang: Lang | None = None,
                       hierarchy: Hierarchy = False) -> FileTagResponse:
        """Keywords for an uploaded document (multipart/form-data): plain text, HTML, PDF or DOCX,
        with its `title` when it has one."""
        text = await read_upload(file)
        if isinstance(text, JSONResponse):
            return text
        return await self._answer([with_title(text, title)], top_n, refine, lang, hierarchy, lambda keywords, identity:
                                  FileTagResponse(keywords=keywords[0], chars=len(text), **identity))

    @bentoml.api(route="/tag_batch")
    async def tag_batch(self, texts: Texts, top_n: TopN | None = None, refine: Refine | None = None,
                        lang: Lang | None = None, hierarchy: Hierarchy = False) -> BatchResponse:
        """Keywords for several documents in one call (results in the order of `texts`)."""
        return await self._answer(texts, top_n, refine, lang, hierarchy, lambda keywords, identity:
                                  BatchResponse(results=[DocumentKeywords(keywords=k) for k in keywords], **identity))

    @bentoml.api(route="/info")
    async def info(self) -> dict:
        """Which tagger model is served (version null while none is), its gate verdict and card,
        the queue and the request limits; under `families`, the same for topics and edu. Never
        waits for inference."""
        loaded = self.tagger.champion.current
        return {
            **self.tagger.info(),
            "hierarchy": bool(loaded and loaded.thesaurus is not None),
            "families": {name: family.info() for name, family in self.families.items() if family is not self.tagger},
            "ready_requires": list(READY_FAMILIES),
            "limits": {"max_text_chars": MAX_TEXT_CHARS, "max_top_n": MAX_TOP_N,
                       "max_batch_texts": MAX_BATCH_TEXTS, "max_body_bytes": MAX_BODY_BYTES,
                       "max_file_bytes": MAX_FILE_BYTES, "request_timeout_seconds": REQUEST_TIMEOUT},
        }


Tagger.add_asgi_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES,
                           note=f"and {MAX_TEXT_CHARS:,} characters of text",
                           per_path={path: MAX_FILE_BYTES for path in ("/tag_file", "/topics_file", "/edu_file")})
Tagger.add_asgi_middleware(StaticPages, pages={"/": docs_page(), "/ui": librarian_page()})
