"""The topic classifier's endpoints (Reuters-21578 topics), mixed into the tagflow service:

  /topics        {"text": "...", "top_k": 5} -> {"topics": [...], "probabilities": {label: p},
                 "thresholds": {label: t}, "model": {name, version}, "gate": {...}}
  /topics_batch  {"texts": [...], "top_k"} -> {"results": [{topics, probabilities, thresholds}], "model", "gate"}
  /topics_file   multipart: file (text, HTML, PDF or DOCX) + top_k -> as /topics, plus `chars`

From the `champion` of `reuters-topics` (TAGFLOW_TOPICS_MODEL_NAME names another), through the
registered model's own predict (tagflow.topics.inference.TopicPredictor, the code evaluation
ran): `topics` are the labels at or above their per-class thresholds (tuned on validation), best
first; `probabilities` those and the top_k labels; `thresholds` the threshold of each label shown.
"""
from __future__ import annotations

import os
from typing import Annotated

import bentoml
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from services.common import (Family, Loaded, ModelRef, Text, Texts, UploadedFile, model_name,
                             read_upload)

MAX_TOP_K = 100
BATCH_TEXTS = int(os.environ.get("TAGFLOW_TOPICS_BATCH_TEXTS", "32"))   # texts per model call

TopK = Annotated[int, Field(strict=True, ge=1, le=MAX_TOP_K,
                            description="labels whose probability is shown besides the chosen topics (default 5)")]
FormTopK = Annotated[int, Field(ge=1, le=MAX_TOP_K, description="labels whose probability is shown (default 5)")]


def topics_family(queue: dict) -> Family:
    from tagflow.topics.config import RegistryConfig

    return Family("topics", model_name("TAGFLOW_TOPICS_MODEL_NAME", RegistryConfig.model_name),
                  batch_texts=BATCH_TEXTS, **queue)


class DocumentTopics(BaseModel):
    topics: list[str] = Field(description="labels at or above their per-class threshold, best first")
    probabilities: dict[str, float] = Field(description="the chosen topics' and the top_k labels' probabilities")
    thresholds: dict[str, float] = Field(description="the per-class threshold of each label shown")


class TopicsResponse(DocumentTopics):
    model: ModelRef
    gate: dict


class FileTopicsResponse(TopicsResponse):
    chars: int


class TopicsBatchResponse(BaseModel):
    results: list[DocumentTopics]
    model: ModelRef
    gate: dict


def thresholds_of(loaded: Loaded) -> dict[str, float]:
    """label -> the per-class threshold the registered predictor decides with."""
    predictor = loaded.model.unwrap_python_model().predictor
    return dict(zip(predictor.labels, (float(t) for t in predictor.thresholds)))


def with_thresholds(row: dict, thresholds: dict[str, float]) -> DocumentTopics:
    return DocumentTopics(topics=row["topics"], probabilities=row["probabilities"],
                          thresholds={label: thresholds[label] for label in row["probabilities"]})


class TopicsEndpoints:
    """Mixed into the service class, whose `families["topics"]` is a `topics_family`."""

    families: dict[str, Family]

    async def _topics(self, texts: list[str], top_k: int | None):
        family = self.families["topics"]
        result = await family.predict(texts, {} if top_k is None else {"top_k": top_k})
        if isinstance(result, JSONResponse):
            return result
        loaded, rows = result
        thresholds = thresholds_of(loaded)
        return [with_thresholds(row, thresholds) for row in rows], family.identity(loaded)

    @bentoml.api(route="/topics")
    async def topics(self, text: Text, top_k: TopK | None = None) -> TopicsResponse:
        """Topics of one document (multi-label), with their probabilities and the per-class
        thresholds that decided them."""
        result = await self._topics([text], top_k)
        if isinstance(result, JSONResponse):
            return result
        [one], identity = result
        return TopicsResponse(**one.model_dump(), **identity)

    @bentoml.api(route="/topics_batch")
    async def topics_batch(self, texts: Texts, top_k: TopK | None = None) -> TopicsBatchResponse:
        """Topics of several documents in one call (results in the order of `texts`)."""
        result = await self._topics(texts, top_k)
        if isinstance(result, JSONResponse):
            return result
        results, identity = result
        return TopicsBatchResponse(results=results, **identity)

    @bentoml.api(route="/topics_file")
    async def topics_file(self, file: UploadedFile, top_k: FormTopK | None = None) -> FileTopicsResponse:
        """Topics of an uploaded document (multipart/form-data): plain text, HTML, PDF or DOCX."""
        text = await read_upload(file)
        if isinstance(text, JSONResponse):
            return text
        result = await self._topics([text], top_k)
        if isinstance(result, JSONResponse):
            return result
        [one], identity = result
        return FileTopicsResponse(**one.model_dump(), chars=len(text), **identity)
