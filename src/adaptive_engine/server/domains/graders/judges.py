"""LLM judges: prompts, constrained output, robust parsing, and the prebuilt criteria.

A binary judge asks a chat model whether a completion meets a criterion and expects the JSON object
``{"reasoning": "...", "score": "PASS" | "FAIL" | "NA"}``. Prompts are Handlebars templates (the official
client sends its own; ours are the defaults), rendered with pybars3. On a backend that supports it the
output is constrained to :data:`VERDICT_PATTERN`, so even a tiny model always yields a valid verdict;
otherwise the answer is parsed leniently (JSON, then a ``score`` field, then a bare verdict word).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from adaptive_engine.server.errors import InvalidInput

MAX_REASONING_CHARS = 160
# The output schema as a regex (used for constrained decoding): reasoning first, then the verdict.
VERDICT_PATTERN = r'\{"reasoning": "[^"\\\n]{0,' + str(MAX_REASONING_CHARS) + r'}", "score": "(PASS|FAIL|NA)"\}'
OUTPUT_SCHEMA = '{\n  "reasoning": str,\n  "score": Literal["PASS", "FAIL", "NA"]\n}'
VERDICT_SCORES = {"PASS": 1.0, "FAIL": 0.0, "NA": None}
MAX_CRITERIA_CHARS = 20_000
MAX_EXAMPLES = 50


class TextGenerator(Protocol):
    """What judges need from the inference layer: one chat completion from a registered model, greedy,
    optionally constrained to a regular expression."""

    async def __call__(
        self, model_key: str, messages: list[dict[str, str]], *, max_tokens: int, constraint: str | None = None
    ) -> str: ...


class JudgeParseError(Exception):
    pass


@dataclass
class Verdict:
    verdict: str  # PASS / FAIL / NA
    reasoning: str

    @property
    def score(self) -> float | None:
        return VERDICT_SCORES[self.verdict]


# --------------------------------------------------------------------------- templates

DEFAULT_SYSTEM_TEMPLATE = """You grade answers written by an AI assistant against one criterion.
Read the conversation, the user's question and the assistant's answer, then decide:
- PASS: the answer meets the criterion;
- FAIL: the answer does not meet the criterion;
- NA: the criterion does not apply to this question.
Judge only the final answer. Give one short sentence of reasoning, then the verdict.
Reply with a single JSON object that follows this schema, and nothing else:
{{{output_schema}}}
{{#if examples.length}}
Annotated examples follow. They are ground truth: when a case resembles one, decide as it does.
{{#each examples}}
EXAMPLE {{@index}}
QUESTION: {{{user_question}}}
ANSWER: {{{completion}}}
OUTPUT: {{{output_json}}}
{{/each}}
{{/if}}"""

DEFAULT_USER_TEMPLATE = """{{#if context_str_without_last_user}}CONVERSATION SO FAR
{{{context_str_without_last_user}}}

{{/if}}QUESTION
{{{last_user_turn_content}}}

ANSWER
{{{completion}}}

CRITERION
{{{criteria}}}

Reply with the JSON object only."""


def _compile(template: str) -> Any:
    from pybars import Compiler

    try:
        return Compiler().compile(template)
    except Exception as exc:  # pybars raises its own parse errors
        raise InvalidInput(f"the judge template does not parse as Handlebars: {exc}") from exc


_BLOCK_TAG = re.compile(r"\{\{~?([#/])\s*([\w.-]+)")


def validate_template(template: str, what: str) -> str:
    if len(template) > 100_000:
        raise InvalidInput(f"the {what} is longer than 100000 characters")
    # pybars accepts a block that is never closed; check the nesting first.
    stack: list[str] = []
    for sign, name in _BLOCK_TAG.findall(template):
        if sign == "#":
            stack.append(name)
        elif not stack or stack.pop() != name:
            raise InvalidInput(f"the {what} does not parse as Handlebars: unexpected {{{{/{name}}}}}")
    if stack:
        raise InvalidInput(f"the {what} does not parse as Handlebars: {{{{#{stack[-1]}}}}} is never closed")
    _compile(template)
    return template


def _transcript(turns: list[dict[str, Any]]) -> str:
    return "\n".join(f"{t['role']}: {t['content']}" for t in turns)


def _split_last_user(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return messages[:i] + messages[i + 1 :], str(messages[i].get("content", ""))
    return list(messages), ""


def render_judge_prompt(
    *,
    criteria: str,
    examples: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    completion: str,
    system_template: str | None = None,
    user_template: str | None = None,
) -> list[dict[str, str]]:
    """The chat messages sent to the judge model."""
    rendered_examples = []
    for ex in examples:
        ctx, question = _split_last_user(ex.get("input") or [])
        verdict = "PASS" if ex.get("pass") else "FAIL"
        rendered_examples.append(
            {
                "context_str": _transcript(ctx),
                "user_question": question,
                "completion": ex.get("output", ""),
                "output_json": json.dumps({"reasoning": ex.get("reasoning") or "", "score": verdict}),
            }
        )
    context, question = _split_last_user(messages)
    values = {
        "criteria": criteria,
        "examples": rendered_examples,
        "context_str": _transcript(messages),
        "context_str_without_last_user": _transcript(context),
        "last_user_turn_content": question,
        "user_question": question,
        "completion": completion,
        "output_schema": OUTPUT_SCHEMA,
    }
    system = str(_compile(system_template or DEFAULT_SYSTEM_TEMPLATE)(values)).strip()
    user = str(_compile(user_template or DEFAULT_USER_TEMPLATE)(values)).strip()
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------- parsing

_SCORE_FIELD = re.compile(
    r'["\']?score["\']?\s*[:=]\s*["\']?\s*(PASS|FAIL|NA|N/A|true|false|1(?:\.0+)?(?![\d.])|0(?:\.0+)?(?![\d.]))',
    re.IGNORECASE,
)
_BARE = re.compile(r"\b(PASS|FAIL|NA|N/A)\b")
_REASONING_FIELD = re.compile(r'"reasoning"\s*:\s*"((?:[^"\\]|\\.)*)"', re.DOTALL)


def _norm(word: str) -> str:
    """PASS / FAIL / NA from a verdict word; small models also answer 1 / 0 or true / false."""
    word = str(word).strip().upper()
    if word in ("1", "TRUE") or (word.startswith("1.") and not word.strip("1.0")):
        return "PASS"
    if word in ("0", "FALSE") or (word.startswith("0.") and not word.strip("0.")):
        return "FAIL"
    return "NA" if word == "N/A" else word


def parse_verdict(text: str) -> Verdict:
    """The verdict in a judge's answer: a JSON object, else a ``score`` field, else one bare verdict word."""
    text = (text or "").strip()
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        try:
            obj = json.loads(text[start : end + 1])
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            score = obj.get("score", "")
            score = str(int(score)) if isinstance(score, bool) or score in (0, 1) else str(score)
            if _norm(score) in VERDICT_SCORES:
                return Verdict(_norm(score), str(obj.get("reasoning") or "").strip())
    reasoning_match = _REASONING_FIELD.search(text)
    reasoning = reasoning_match.group(1) if reasoning_match else text
    field = _SCORE_FIELD.search(text)
    if field and _norm(field.group(1)) in VERDICT_SCORES:
        return Verdict(_norm(field.group(1)), reasoning.strip()[:2000])
    words = {_norm(w) for w in _BARE.findall(text)}
    if len(words) == 1:
        return Verdict(words.pop(), reasoning.strip()[:2000])
    raise JudgeParseError(f"the judge's answer holds no verdict: {text[:200]!r}")


# --------------------------------------------------------------------------- running a binary judge


async def run_binary_judge(
    generate: TextGenerator,
    model_key: str,
    *,
    criteria: str,
    examples: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    completion: str,
    constrained: bool = True,
    system_template: str | None = None,
    user_template: str | None = None,
) -> Verdict:
    prompt = render_judge_prompt(
        criteria=criteria,
        examples=examples,
        messages=messages,
        completion=completion,
        system_template=system_template,
        user_template=user_template,
    )
    # Enough room for the longest reasoning the pattern allows (one token is at least one character).
    text = await generate(
        model_key, prompt, max_tokens=MAX_REASONING_CHARS + 40, constraint=VERDICT_PATTERN if constrained else None
    )
    return parse_verdict(text)


# --------------------------------------------------------------------------- prebuilt judges


class PrebuiltKey(enum.StrEnum):
    FAITHFULNESS = "FAITHFULNESS"
    ANSWER_RELEVANCY = "ANSWER_RELEVANCY"
    CONTEXT_RELEVANCY = "CONTEXT_RELEVANCY"


@dataclass(frozen=True)
class PrebuiltCriteria:
    key: PrebuiltKey
    name: str
    feedback_key: str
    description: str


PREBUILT: dict[PrebuiltKey, PrebuiltCriteria] = {
    PrebuiltKey.FAITHFULNESS: PrebuiltCriteria(
        PrebuiltKey.FAITHFULNESS,
        "Faithfulness",
        "faithfulness",
        "Share of the answer's statements that the context given to the model supports (0 to 1).",
    ),
    PrebuiltKey.ANSWER_RELEVANCY: PrebuiltCriteria(
        PrebuiltKey.ANSWER_RELEVANCY,
        "Answer relevancy",
        "answer_relevancy",
        "Whether the answer addresses the user's question (1) or not (0).",
    ),
    PrebuiltKey.CONTEXT_RELEVANCY: PrebuiltCriteria(
        PrebuiltKey.CONTEXT_RELEVANCY,
        "Context relevancy",
        "context_relevancy",
        "Share of the context passages given to the model that are relevant to the question (0 to 1).",
    ),
}

MAX_UNITS = 8
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _statements(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE.split(text or "") if len(p.strip()) > 2]
    return parts[:MAX_UNITS]


def _passages(context: list[dict[str, Any]]) -> list[str]:
    passages: list[str] = []
    for turn in context:
        for block in re.split(r"\n\s*\n", str(turn.get("content", ""))):
            if block.strip():
                passages.append(block.strip())
    return passages[:MAX_UNITS]


@dataclass
class PrebuiltOutcome:
    score: float | None
    reasoning: str


async def run_prebuilt(
    generate: TextGenerator,
    model_key: str,
    key: PrebuiltKey,
    *,
    messages: list[dict[str, Any]],
    completion: str,
    constrained: bool = True,
) -> PrebuiltOutcome:
    context, question = _split_last_user(messages)
    context_text = _transcript(context)

    async def judge(criteria: str, answer: str, convo: list[dict[str, Any]]) -> Verdict:
        return await run_binary_judge(
            generate,
            model_key,
            criteria=criteria,
            examples=[],
            messages=convo,
            completion=answer,
            constrained=constrained,
        )

    if key is PrebuiltKey.ANSWER_RELEVANCY:
        v = await judge(
            "The answer responds to the user's question directly and stays on its topic.", completion, messages
        )
        return PrebuiltOutcome(v.score, f"{v.verdict}: {v.reasoning}")

    if key is PrebuiltKey.FAITHFULNESS:
        if not context_text.strip():
            return PrebuiltOutcome(None, "NA: the model was given no context to be faithful to")
        statements = _statements(completion)
        if not statements:
            return PrebuiltOutcome(None, "NA: the answer makes no statement")
        verdicts = []
        for statement in statements:
            v = await judge(
                "The answer is supported by the CONVERSATION SO FAR: everything it states is said "
                "or directly implied there, and nothing contradicts it.",
                statement,
                messages,
            )
            verdicts.append((statement, v))
        return _share(verdicts, "supported")

    # CONTEXT_RELEVANCY
    passages = _passages(context)
    if not passages:
        return PrebuiltOutcome(None, "NA: the model was given no context")
    verdicts = []
    for passage in passages:
        v = await judge(
            "The answer (a context passage) holds information useful to answer the question.",
            passage,
            [{"role": "user", "content": question}],
        )
        verdicts.append((passage, v))
    return _share(verdicts, "relevant")


def _share(verdicts: list[tuple[str, Verdict]], adjective: str) -> PrebuiltOutcome:
    applicable = [(text, v) for text, v in verdicts if v.verdict != "NA"]
    lines = [f"- [{v.verdict}] {text[:120]}: {v.reasoning[:200]}" for text, v in verdicts]
    if not applicable:
        return PrebuiltOutcome(None, "NA\n" + "\n".join(lines))
    passed = sum(1 for _, v in applicable if v.verdict == "PASS")
    score = passed / len(applicable)
    return PrebuiltOutcome(score, f"{passed}/{len(applicable)} {adjective}\n" + "\n".join(lines))
