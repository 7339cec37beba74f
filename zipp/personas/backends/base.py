"""One interface for every persona backend.

``Backend.personas(inputs)`` turns a batch of users' ranked inputs into one :class:`PersonaResult`
each, never raising for a single user: a user that cannot be done comes back ``status=failed`` with
the reason. LLM backends subclass :class:`ChatBackend` and only implement ``generate`` (a batch of
chat requests -> text or an exception per request); the shared loop packs the evidence, parses and
validates the reply, and re-asks with the validation error at most ``personas.max_retries`` times.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

from zipp.config import ZippConfig
from zipp.personas.evidence import Evidence, EvidenceError, Packer, UserInputs
from zipp.personas.prompt import build_messages, prompt_hash
from zipp.personas.schema import Persona, parse_persona
from zipp.personas.tokens import ImageCoster, TokenCounter
from zipp.personas.untrusted import defang

log = logging.getLogger(__name__)


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (missing package, endpoint not configured)."""


@dataclass
class ChatRequest:
    messages: list[dict]
    images: list[str] = field(default_factory=list)  # URLs for <image n=k/> placeholders, in order
    prompt_tokens: int = 0  # by the budget tokenizer, image tokens included
    image_files: list[str | None] = field(default_factory=list)  # local copies of ``images`` (None: not cached)

    def image_sources(self) -> list[str]:
        """What to show the model for each image: its local file as a data: URL (the pixels the
        budget was counted on; works offline), else the original URL."""
        files = self.image_files or [None] * len(self.images)
        return [data_url(f) if f else u for u, f in zip(self.images, files)]


def data_url(path: str) -> str:
    import base64

    from PIL import Image

    with Image.open(path) as im:
        fmt = (im.format or "png").lower()
    return f"data:image/{fmt};base64," + base64.b64encode(open(path, "rb").read()).decode()


def image_coster(cfg: ZippConfig) -> ImageCoster:
    """The per-image budget cost for ``cfg``: the model's processor when multimodal and the model
    has one (hub ids are tried only by backends that load the model), else ``image_tokens``."""
    p = cfg.personas
    if not p.multimodal:
        return ImageCoster(None, p.image_tokens)
    from zipp.personas.tokens import model_path

    return ImageCoster(model_path(cfg), p.image_tokens, try_hub=p.backend in ("vllm", "transformers"))


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class PersonaResult:
    user_key: str
    user_id: int | None
    status: str  # ok | failed
    error: str | None = None
    persona: Persona | None = None
    evidence: Evidence | None = None
    ranking: str | None = None
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_hash: str | None = None


class Backend(ABC):
    name: ClassVar[str]

    def __init__(self, cfg: ZippConfig, counter: TokenCounter):
        self.cfg = cfg
        self.pcfg = cfg.personas
        self.counter = counter
        self.packer = Packer(counter, cfg.personas, image_coster(cfg))

    @property
    def model_name(self) -> str:
        return self.pcfg.model

    def setup(self) -> None:
        """Load heavy things once per worker."""

    @abstractmethod
    def personas(self, inputs: Sequence[UserInputs]) -> list[PersonaResult]:
        ...

    def _pack_first(self, inp: UserInputs) -> Evidence:
        return self.packer.pack(inp, frame=lambda block: build_messages(block))


@dataclass
class _State:
    idx: int
    inp: UserInputs
    ev: Evidence
    first_hash: str
    attempt: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatBackend(Backend):
    """An LLM behind chat messages; subclasses implement ``generate``."""

    @abstractmethod
    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation | Exception]:
        """One Generation or the exception that stopped it, per request, in order."""

    def personas(self, inputs: Sequence[UserInputs]) -> list[PersonaResult]:
        results: list[PersonaResult | None] = [None] * len(inputs)
        pending: list[_State] = []
        for i, inp in enumerate(inputs):
            try:
                ev = self._pack_first(inp)
            except EvidenceError as e:
                results[i] = PersonaResult(inp.user_key, inp.user_id, "failed", error=str(e), ranking=inp.ranking)
                continue
            pending.append(_State(i, inp, ev, prompt_hash(ev.messages, ev.images)))

        while pending:
            gens = self.generate([ChatRequest(s.ev.messages, s.ev.images, s.ev.prompt_tokens, s.ev.image_files) for s in pending])
            retry: list[_State] = []
            for s, g in zip(pending, gens):
                if isinstance(g, Exception):
                    results[s.idx] = self._result(s, "failed", error=f"backend error: {type(g).__name__}: {g}"[:1000])
                    continue
                s.prompt_tokens += g.prompt_tokens
                s.completion_tokens += g.completion_tokens
                persona, err = parse_persona(g.text)
                if persona is not None:
                    results[s.idx] = self._result(s, "ok", persona=persona)
                    continue
                if s.attempt > self.pcfg.max_retries:
                    results[s.idx] = self._result(s, "failed", error=f"invalid output after {s.attempt} attempts: {err}")
                    continue
                echo = defang(self.counter.head(g.text, self.pcfg.retry_echo_tokens), self.counter.special_tokens)
                try:
                    s.ev = self.packer.pack(s.inp, frame=lambda block, r=(echo, err): build_messages(block, retry=r))
                except EvidenceError as e:
                    results[s.idx] = self._result(s, "failed", error=f"invalid output ({err}); the retry prompt does not fit: {e}")
                    continue
                s.attempt += 1
                retry.append(s)
            pending = retry
        return [r for r in results if r is not None]

    @staticmethod
    def _result(s: _State, status: str, persona: Persona | None = None, error: str | None = None) -> PersonaResult:
        return PersonaResult(
            s.inp.user_key, s.inp.user_id, status, error=error, persona=persona, evidence=s.ev, ranking=s.inp.ranking,
            attempts=s.attempt, prompt_tokens=s.prompt_tokens, completion_tokens=s.completion_tokens, prompt_hash=s.first_hash,
        )
