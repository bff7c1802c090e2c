"""HTTP service that tags documents with thesaurus concepts using the promoted (champion) model.

    bentoml serve services.tagger_service:Tagger --host 127.0.0.1 --port 3000   # from the project root

Endpoints (all POST, JSON in and out; the Swagger UI is at `/`):
  /tag        {"text": "...", "top_n": 10}  -> {"keywords": [{uri, label, score}], "model": {name, version}}
  /tag_batch  {"texts": ["...", ...], "top_n": 10} -> {"results": [{"keywords": [...]}, ...], "model": ...}
  /info       {} -> which model version is loaded (or why none is), its card, and the request limits
BentoML adds GET /readyz, /livez, /healthz and /metrics.

The model comes from the MLflow registry ($MLFLOW_TRACKING_URI): the version holding the
`champion` alias of `unesco-tagger` (TAGFLOW_MODEL_NAME names another). Everything that shapes
its answers (backend, prompt, chunking, default top_n, thesaurus version) comes from the model's
own card, never from a params.yaml, so it answers as its evaluation measured; /info shows the card.
It is loaded once at start-up. With no champion yet the
service still starts and answers 503 with instructions; it looks at the registry again on later
requests (at most every TAGFLOW_CHAMPION_RECHECK_SECONDS, default 5), so promoting a model needs no
restart. Replacing an already loaded champion does need a restart (a deliberate deploy step).
"""
from __future__ import annotations

from typing import Annotated, Literal

import bentoml
from pydantic import AfterValidator, BaseModel, Field
from starlette.responses import JSONResponse

from services.common import BodySizeLimit, Champion, error, model_name, recheck_seconds, too_large
from tagflow.tagger.config import RegistryConfig

MAX_TEXT_CHARS = 200_000      # per request: one text, or all texts of a batch together
MAX_TOP_N = 50
MAX_BATCH_TEXTS = 32
# The raw body is refused before it is parsed. JSON can spend up to 12 bytes on one character
# (an escaped surrogate pair), so 4 MiB admits any body whose text is within MAX_TEXT_CHARS.
MAX_BODY_BYTES = 4 * 1024 * 1024


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or only whitespace; send the document's text")
    return text


Text = Annotated[str, Field(strict=True, description=f"document text, at most {MAX_TEXT_CHARS:,} characters"),
                 AfterValidator(_not_blank)]
TopN = Annotated[int, Field(strict=True, ge=1, le=MAX_TOP_N,
                            description="concepts to return (default: the model's own top_n)")]


Refine = Literal["none", "specific", "balanced", "broad"]   # see tagflow.tagger.pipeline.refine
Lang = Literal["en", "fr", "es", "ar", "ru"]


class ConceptOut(BaseModel):
    uri: str
    label: str
    score: float


class ModelRef(BaseModel):
    name: str
    version: str


class TagResponse(BaseModel):
    keywords: list[ConceptOut]
    model: ModelRef


class DocumentKeywords(BaseModel):
    keywords: list[ConceptOut]


class BatchResponse(BaseModel):
    results: list[DocumentKeywords]
    model: ModelRef


@bentoml.service(name="tagger", traffic={"timeout": 600})   # long documents on CPU take minutes
class Tagger:
    def __init__(self) -> None:
        self.champion = Champion(model_name("TAGFLOW_MODEL_NAME", RegistryConfig.model_name), recheck_seconds())
        # NoChampionError is tolerated (the service starts and says so); any other failure
        # (unreachable registry, broken model) stops the start-up with its own message.
        self.champion.try_load(at_startup=True)

    def _predict(self, texts: list[str], top_n: int | None, refine: str | None = None,
                 lang: str | None = None) -> list[list[ConceptOut]] | JSONResponse:
        model = self.champion.get()
        if model is None:
            return error(503, self.champion.missing_reason or "no champion model is loaded")
        import pandas as pd
        # What the request leaves out, the model decides (its card's settings), exactly as
        # evaluation measured it.
        params = {k: v for k, v in {"top_n": top_n, "refine": refine, "lang": lang}.items() if v is not None}
        rows = list(model.predict(pd.DataFrame({"text": texts}), params=params))
        if len(rows) != len(texts):
            raise RuntimeError(f"model returned {len(rows)} results for {len(texts)} texts")
        return [[ConceptOut(uri=k["uri"], label=k["label"], score=float(k["score"]))
                 for k in list(row)[:top_n or MAX_TOP_N]] for row in rows]

    def _model_ref(self) -> ModelRef:
        return ModelRef(name=self.champion.model_name, version=self.champion.version)

    @bentoml.api(route="/tag")
    def tag(self, text: Text, top_n: TopN | None = None, refine: Refine | None = None,
            lang: Lang | None = None) -> TagResponse:
        """Keywords (thesaurus concepts) for one document, best first. `refine` resolves
        parent/child pairs (none, specific, balanced, broad); `lang` picks the labels' language."""
        if len(text) > MAX_TEXT_CHARS:
            return too_large(len(text), MAX_TEXT_CHARS)
        result = self._predict([text], top_n, refine, lang)
        if isinstance(result, JSONResponse):
            return result
        return TagResponse(keywords=result[0], model=self._model_ref())

    @bentoml.api(route="/tag_batch")
    def tag_batch(self, texts: Annotated[list[Text], Field(min_length=1, max_length=MAX_BATCH_TEXTS)],
                  top_n: TopN | None = None, refine: Refine | None = None,
                  lang: Lang | None = None) -> BatchResponse:
        """Keywords for several documents in one call (results in the order of `texts`)."""
        total = sum(len(t) for t in texts)
        if total > MAX_TEXT_CHARS:
            return too_large(total, MAX_TEXT_CHARS)
        result = self._predict(texts, top_n, refine, lang)
        if isinstance(result, JSONResponse):
            return result
        return BatchResponse(results=[DocumentKeywords(keywords=k) for k in result], model=self._model_ref())

    @bentoml.api(route="/info")
    def info(self) -> dict:
        """Which model is served (version null while no champion exists) and the request limits."""
        self.champion.get()
        from tagflow.tagger.artifact import load_card
        card = load_card(self.champion.model) if self.champion.model is not None else {}
        return {
            "model": {"name": self.champion.model_name, "version": self.champion.version},
            "card": card,
            "ready": self.champion.model is not None,
            "reason": self.champion.missing_reason,
            "limits": {"max_text_chars": MAX_TEXT_CHARS, "max_top_n": MAX_TOP_N,
                       "max_batch_texts": MAX_BATCH_TEXTS, "max_body_bytes": MAX_BODY_BYTES},
        }


Tagger.add_asgi_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES,
                           note=f"and {MAX_TEXT_CHARS:,} characters of text")
