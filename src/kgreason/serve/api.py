"""Request models and input constraints of the JSON API (they also shape the OpenAPI spec)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kgreason.serve.generation import DEFAULT_NEW_TOKENS, DEFAULT_TIMEOUT_S, MAX_NEW_TOKENS

# A run or experiment name is its folder path relative to the runs folder: plain segments joined by
# "/", none starting with a dot. Anything else (../, absolute paths, backslashes) fails here, and a
# name that passes must still be one that discovery listed.
RUN_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*){0,3}$"
SEGMENT = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
MAX_ID = 300
MAX_PAGE = 200
MAX_CHAIN = 6


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComposeRequest(Strict):
    run: str = Field(pattern=RUN_NAME, max_length=200, description="a run name from /api/runs")
    start: str = Field(min_length=1, max_length=MAX_ID, description="start entity id")
    chain: list[str] = Field(min_length=1, max_length=MAX_CHAIN, description="relation ids, in order")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seeds option choice and letter")


class ComposeSpec(Strict):
    start: str = Field(min_length=1, max_length=MAX_ID)
    chain: list[str] = Field(min_length=1, max_length=MAX_CHAIN)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class GenerateRequest(Strict):
    run: str = Field(pattern=RUN_NAME, max_length=200)
    model: str = Field(default="base", pattern=SEGMENT, max_length=100,
                       description="'base' or an adapter phase listed by /api/models")
    task_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID,
                                description="an item of the run's task files")
    compose: ComposeSpec | None = Field(default=None, description="or a composed question")
    max_new_tokens: int = Field(default=DEFAULT_NEW_TOKENS, ge=1, le=MAX_NEW_TOKENS)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=300)

    @model_validator(mode="after")
    def one_question(self) -> GenerateRequest:
        if (self.task_id is None) == (self.compose is None):
            raise ValueError("give exactly one of task_id or compose")
        return self


class JobCreated(BaseModel):
    job_id: str
    position: int
    events: str
