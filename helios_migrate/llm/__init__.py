"""Optional LLM assistance through any OpenAI-compatible endpoint -- useful, never trusted.

Off unless configured (:mod:`.config`).  Every answer is parsed into helios-migrate's own
vocabulary, checked strictly, its SQL parsed with pglast and judged by the lock knowledge base
and the safety rules; what does not pass is rejected with reasons and the deterministic result
stands.

* :func:`~.propose.propose_plan` -- a lock-safe plan for SQL the rules cannot plan;
* :func:`~.rename.judge_rename` -- is a drop + add a rename?  (a hint, confirmed by the user);
* :mod:`.explain` -- ``helios-migrate explain``: a plain-English summary built from our facts;
* :mod:`.design` -- ``helios-migrate design``: SQLAlchemy models, created on a real PostgreSQL;
* :mod:`.check` -- ``helios-migrate llm check``.
"""

from __future__ import annotations

from .client import LlmClient, LlmError, LlmLog
from .config import LlmConfig, LlmConfigError, LlmNotConfigured, load_llm_config
from .propose import LLM_MARK, PlanContext, ProposalResult, propose_plan

__all__ = [
    "LLM_MARK",
    "LlmClient",
    "LlmConfig",
    "LlmConfigError",
    "LlmError",
    "LlmLog",
    "LlmNotConfigured",
    "PlanContext",
    "ProposalResult",
    "load_llm_config",
    "propose_plan",
]
