"""Request models and input constraints of the JSON API (they also shape the OpenAPI spec)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kgreason.serve.generation import DEFAULT_NEW_TOKENS, DEFAULT_TIMEOUT_S, MAX_NEW_TOKENS

# A run or experiment name is its folder path relative to the runs folder: plain segments joined by
# "/", none starting with a dot. Anything else (../, absolute paths, backslashes) fails here, and a
# name that passes must still be one that discovery listed.
RUN_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*){0,3}$"
SEGMENT = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
JOB_ID = r"^[0-9a-f]{32}$"  # uuid4().hex, as GenerationQueue names its jobs
MAX_ID = 300
MAX_PAGE = 200
MAX_CHAIN = 6
MAX_BODY_BYTES = 64 * 1024  # the largest request body any endpoint needs is well under 1 KB


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    # JSON parsers accept NaN and Infinity (and 1e999 overflows to inf); a non-finite number would
    # pass or break the bounds checks further on, so it is refused here with a 422.
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, allow_inf_nan=False)
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=300, allow_inf_nan=False)

    @model_validator(mode="after")
    def one_question(self) -> GenerateRequest:
        if (self.task_id is None) == (self.compose is None):
            raise ValueError("give exactly one of task_id or compose")
        return self


class JobCreated(BaseModel):
    job_id: str
    position: int
    events: str
    cancel: str  # DELETE this URL to cancel the job


class JobCancelled(BaseModel):
    job_id: str
    status: str  # "cancelled", or the status it had already finished with
