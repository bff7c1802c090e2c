"""The educational-value classifier's endpoints (FineWeb-Edu recipe), mixed into the tagflow
service:

  /edu        {"text": "..."} -> {"score": 2.71, "int_score": 3, "model": {name, version}, "gate": {...}}
  /edu_batch  {"texts": [...]} -> {"results": [{score, int_score}], "model", "gate"}
  /edu_file   multipart: file (text, HTML, PDF or DOCX) -> as /edu, plus `chars`

From the `champion` of the first model in edu.registry.models (`fineweb-edu-multilingual`;
TAGFLOW_EDU_MODEL_NAME names another, e.g. `fineweb-edu-en`), through the registered model's own
predict (tagflow.edu.model.EduScorer, the code evaluation ran): `score` is the head's raw output,
`int_score = round(clamp(score, 0, 5))`. Concurrent requests share one encoder batch (the
service's queue: up to TAGFLOW_EDU_BATCH_TEXTS texts per call, default 32).
"""
from __future__ import annotations

import os

import bentoml
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from services.common import Family, ModelRef, Text, Texts, UploadedFile, model_name, read_upload

BATCH_TEXTS = int(os.environ.get("TAGFLOW_EDU_BATCH_TEXTS", "32"))   # pages per encoder call


def edu_family(queue: dict) -> Family:
    from tagflow.edu.config import RegistryConfig

    default = next(iter(RegistryConfig().models.values()))
    return Family("edu", model_name("TAGFLOW_EDU_MODEL_NAME", default), batch_texts=BATCH_TEXTS, **queue)


class EduScore(BaseModel):
    score: float = Field(description="educational value on the annotators' 0-5 scale (unclamped)")
    int_score: int = Field(description="round(clamp(score, 0, 5))")


class EduResponse(EduScore):
    model: ModelRef
    gate: dict


class FileEduResponse(EduResponse):
    chars: int


class EduBatchResponse(BaseModel):
    results: list[EduScore]
    model: ModelRef
    gate: dict


class EduEndpoints:
    """Mixed into the service class, whose `families["edu"]` is an `edu_family`."""

    families: dict[str, Family]

    async def _edu(self, texts: list[str]):
        family = self.families["edu"]
        result = await family.predict(texts, {})
        if isinstance(result, JSONResponse):
            return result
        loaded, rows = result
        return [EduScore(score=row["score"], int_score=row["int_score"]) for row in rows], family.identity(loaded)

    @bentoml.api(route="/edu")
    async def edu(self, text: Text) -> EduResponse:
        """Educational value of one page: `score` and `int_score` (0-5)."""
        result = await self._edu([text])
        if isinstance(result, JSONResponse):
            return result
        [one], identity = result
        return EduResponse(**one.model_dump(), **identity)

    @bentoml.api(route="/edu_batch")
    async def edu_batch(self, texts: Texts) -> EduBatchResponse:
        """Educational value of several pages in one call (results in the order of `texts`)."""
        result = await self._edu(texts)
        if isinstance(result, JSONResponse):
            return result
        results, identity = result
        return EduBatchResponse(results=results, **identity)

    @bentoml.api(route="/edu_file")
    async def edu_file(self, file: UploadedFile) -> FileEduResponse:
        """Educational value of an uploaded document (multipart/form-data): text, HTML, PDF or DOCX."""
        text = await read_upload(file)
        if isinstance(text, JSONResponse):
            return text
        result = await self._edu([text])
        if isinstance(result, JSONResponse):
            return result
        [one], identity = result
        return FileEduResponse(**one.model_dump(), chars=len(text), **identity)
