"""What one GraphQL request may ask for, and how long a query may run.

A single document of 2,000 aliased ``completions { totalCount }`` once kept the server and its database
busy for 48 s. These checks refuse such a document before any resolver runs, with QUERY_TOO_COMPLEX
naming the limit and its setting. Tokens, depth and aliases are strawberry's own limiters. Strawberry has
no cost limit, so ``CostRule`` below estimates one: every field the query would resolve, times the sizes of
the lists around it (a paged list holds its page size, ``page: {first|last}``; another list is guessed), so
a short document cannot ask for a million rows.

Order matters. Tokens are counted while parsing. The cost check runs next, alone, before the rest of the
validation: strawberry's depth and alias walkers inline every fragment again at each spread (a few hundred
tokens that spread each fragment twice keep them busy for hours), while the cost walk counts each fragment
once and refuses a document that inlines to more than MAX_INLINED_FIELDS fields, so what follows is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    is_interface_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    validate,
    value_from_ast_untyped,
)
from graphql.language.parser import MAX_NESTING_DEPTH
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.types.graphql import OperationType

from adaptive_engine.server.errors import DeadlineExceeded, QueryTooComplex
from adaptive_engine.server.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

if TYPE_CHECKING:
    from adaptive_engine.server.config import Settings

SETTINGS = {
    "tokens": "ADAPTIVE_GRAPHQL_MAX_TOKENS",
    "cost": "ADAPTIVE_GRAPHQL_MAX_COST",
    "depth": "ADAPTIVE_GRAPHQL_MAX_DEPTH",
    "aliases": "ADAPTIVE_GRAPHQL_MAX_ALIASES",
}
# Items assumed in a list that takes no page size (users, models, a use case's feedback keys ...).
UNPAGED_LIST_SIZE = 10
# Fields a document may hold once its fragments are inlined: what bounds strawberry's depth and alias walkers
# (the clients' largest queries inline to a few hundred).
MAX_INLINED_FIELDS = 10_000
# Arguments that set how many items a list field returns.
PAGE_ARGUMENTS = frozenset({"page", "first", "last", "limit"})


def too_complex(limit: str, maximum: int, message: str, nodes: Any = None) -> GraphQLError:
    setting = SETTINGS.get(limit)
    message = f"{message} (setting {setting})" if setting else message
    error = QueryTooComplex(message, details={"limit": limit, "max": maximum})
    return GraphQLError(error.message, nodes, original_error=error)


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """The schema extensions enforcing ``settings``, in the order they must run (0 turns a limit off)."""
    extensions: list[Callable[[], SchemaExtension]] = []
    if settings.graphql_max_tokens:
        extensions.append(partial(TokenLimit, settings.graphql_max_tokens))
    extensions.append(partial(CostLimit, settings.graphql_max_cost))
    if settings.graphql_max_depth:
        extensions.append(partial(DepthLimit, settings.graphql_max_depth))
    if settings.graphql_max_aliases:
        extensions.append(partial(AliasLimit, settings.graphql_max_aliases))
    if settings.graphql_timeout_s:
        extensions.append(partial(TimeBudget, settings.graphql_timeout_s))
    return extensions


class TokenLimit(MaxTokensLimiter):
    """The library's token limit (the parser stops at the first token over it), its error typed."""

    def __init__(self, max_tokens: int) -> None:
        super().__init__(max_token_count=max_tokens)

    def on_parse(self) -> Iterator[None]:
        yield
        aborted = f"Document contains more than {self.max_token_count} tokens. Parsing aborted."
        for error in self.execution_context.pre_execution_errors or []:
            if isinstance(error, GraphQLSyntaxError) and error.message.endswith(aborted):
                typed = too_complex(
                    "tokens", self.max_token_count, f"The query is longer than {self.max_token_count:,} tokens"
                )
                # Typed in place: strawberry answers with this very error object.
                error.message, error.original_error = typed.message, typed.original_error


# --- cost ---------------------------------------------------------------------------------------------


class Tally(NamedTuple):
    cost: int  # fields times the items they are resolved for
    inlined: int  # fields once fragments are inlined (what strawberry's walkers visit)
    nesting: int  # levels of selections and spreads below


NOTHING = Tally(0, 0, 0)


class NestedTooDeeply(Exception):
    pass


class Cost:
    """The estimated cost of a document's operations: each field counts once per item it is resolved for.

    A paged field (a connection taking ``page``) multiplies the lists inside it by the page it asks for
    (the server's default page when it asks for none, at most the largest page the server serves); a list
    field taking no page multiplies its items by UNPAGED_LIST_SIZE. Fragments are counted once per page
    context, so the walk is linear in the document whatever it spreads; it stops past graphql-core's own
    MAX_NESTING_DEPTH (which graphql-core checks only after the rules, with ours, have walked). Unknown
    fields count like known ones that are not lists, unknown fragments nothing: validation reports both."""

    def __init__(
        self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.memo: dict[tuple[str, int | None], Tally] = {}
        self.open: set[str] = set()

    @classmethod
    def of(
        cls,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> Tally:
        """The Tally of ``operation``; NestedTooDeeply past MAX_NESTING_DEPTH."""
        defaults = {
            d.variable.name.value: value_from_ast_untyped(d.default_value)
            for d in operation.variable_definitions or ()
            if d.default_value is not None
        }
        root = schema.get_root_type(operation.operation)
        walk = cls(schema, fragments, {**defaults, **variables})
        return walk.selections(operation.selection_set, root, None, 0)

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, page: int | None, level: int
    ) -> Tally:
        if level > MAX_NESTING_DEPTH:
            raise NestedTooDeeply
        cost = inlined = nesting = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                tally = self.field(selection, parent, page, level)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                tally = self.selections(selection.selection_set, inner or parent, page, level)
            elif isinstance(selection, FragmentSpreadNode):
                tally = self.fragment(selection.name.value, page, level)
            else:
                continue
            cost, inlined, nesting = cost + tally.cost, inlined + tally.inlined, max(nesting, tally.nesting)
        return Tally(cost, inlined, nesting)

    def fragment(self, name: str, page: int | None, level: int) -> Tally:
        key = (name, page)
        if key not in self.memo:
            definition = self.fragments.get(name)
            if definition is None or name in self.open:  # unknown, or a cycle: both are validation errors
                return NOTHING
            self.open.add(name)
            condition = self.schema.get_type(definition.type_condition.name.value)
            self.memo[key] = self.selections(definition.selection_set, condition, page, level + 1)
            self.open.discard(name)
        tally = self.memo[key]
        if level + 1 + tally.nesting > MAX_NESTING_DEPTH:
            raise NestedTooDeeply
        return tally._replace(nesting=1 + tally.nesting)

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, page: int | None, level: int) -> Tally:
        if node.selection_set is None:
            return Tally(1, 1, 0)
        name = node.name.value
        known = name == "__typename" or is_object_type(parent) or is_interface_type(parent)
        definition = self.schema.get_field(parent, name) if known else None  # type: ignore[arg-type]
        if definition is None:
            # Still walked: what it spreads must not escape the count.
            inner = self.selections(node.selection_set, None, None, level + 1)
            return Tally(1 + inner.cost, 1 + inner.inlined, 1 + inner.nesting)
        own = self.page_size(node) if PAGE_ARGUMENTS & definition.args.keys() else None
        shape = definition.type.of_type if is_non_null_type(definition.type) else definition.type
        if is_list_type(shape):
            items = own or page or UNPAGED_LIST_SIZE
            inner_page = None
        else:
            # A connection: the lists inside it (its nodes) hold the page it asked for.
            items, inner_page = 1, own
        inner = self.selections(node.selection_set, get_named_type(definition.type), inner_page, level + 1)
        return Tally(items * (1 + inner.cost), 1 + inner.inlined, 1 + inner.nesting)

    def page_size(self, node: FieldNode) -> int:
        given = {a.name.value: value_from_ast_untyped(a.value, self.variables) for a in node.arguments or ()}
        page = given.get("page")
        asked = [given.get("first"), given.get("last"), given.get("limit")]
        if isinstance(page, dict):
            asked += [page.get("first"), page.get("last")]
        sizes = [s for s in asked if isinstance(s, int) and not isinstance(s, bool)]
        # A size over the largest page is refused by the resolver; 0 still walks its fields once.
        return min(max(max(sizes) if sizes else DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)


def cost_rule(max_cost: int, variables: dict[str, Any]) -> type[ValidationRule]:
    """A graphql-core rule refusing operations whose Cost is over ``max_cost`` (page sizes may come from the
    request's variables, hence a rule per request)."""

    class CostRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            for operation in document.definitions:
                if not isinstance(operation, OperationDefinitionNode):
                    continue
                try:
                    cost, inlined, _ = Cost.of(context.schema, operation, fragments, variables)
                except NestedTooDeeply:
                    message = f"The query nests deeper than {MAX_NESTING_DEPTH} levels once its fragments are inlined"
                    context.report_error(too_complex("nesting", MAX_NESTING_DEPTH, message, [operation]))
                    continue
                if inlined > MAX_INLINED_FIELDS:
                    message = (
                        f"The query has {inlined:,} fields once its fragments are inlined, "
                        f"the limit is {MAX_INLINED_FIELDS:,}"
                    )
                    context.report_error(too_complex("inlined fields", MAX_INLINED_FIELDS, message, [operation]))
                elif cost > max_cost:
                    message = (
                        f"The query's estimated cost is {cost:,}, the limit is {max_cost:,}: ask for "
                        "smaller pages (page: {first: N}) or fewer nested lists"
                    )
                    context.report_error(too_complex("cost", max_cost, message, [operation]))

    return CostRule


class CostLimit(SchemaExtension):
    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            variables = context.variables if isinstance(context.variables, dict) else {}
            rule = cost_rule(self.max_cost, variables)
            errors = validate(context.schema._schema, context.graphql_document, [rule])
            ours = [e for e in errors if isinstance(e.original_error, QueryTooComplex)]
            if ours:
                # Set before strawberry validates, which then skips its rules (and the library limiters).
                context.pre_execution_errors = ours
        yield


# --- depth and aliases: the library's rules, their reports typed ----------------------------------------


def _typed(rule: type[ASTValidationRule], limit: str, maximum: int) -> type[ASTValidationRule]:
    """``rule`` (a library limiter reporting from ``__init__``), reporting one QUERY_TOO_COMPLEX instead."""

    class Typed(rule):  # type: ignore[valid-type, misc]
        def __init__(self, context: ValidationContext) -> None:
            reports: list[GraphQLError] = []
            forward, context.on_error = context.on_error, reports.append  # type: ignore[method-assign, assignment]
            try:
                super().__init__(context)
            except KeyError:
                # The walker looks up fragments unchecked; KnownFragmentNamesRule reports the unknown one.
                ValidationRule.__init__(self, context)
            finally:
                context.on_error = forward  # type: ignore[method-assign]
            if reports:
                context.report_error(too_complex(limit, maximum, reports[0].message, reports[0].nodes))

    return Typed


class DepthLimit(QueryDepthLimiter):
    def __init__(self, max_depth: int) -> None:
        super().__init__(max_depth=max_depth)
        self.validation_rules = [_typed(r, "depth", max_depth) for r in self.validation_rules]


class AliasLimit(MaxAliasesLimiter):
    def __init__(self, max_aliases: int) -> None:
        super().__init__(max_alias_count=max_aliases)
        self.validation_rules = [_typed(r, "aliases", max_aliases) for r in self.validation_rules]


# --- time budget ---------------------------------------------------------------------------------------


class TimeBudget(SchemaExtension):
    """A query running longer than ``seconds`` is cancelled and answered with DEADLINE_EXCEEDED.

    Mutations are not cut: some wait on purpose (a model deployment with ``wait``, a recipe's schema probe)
    under limits of their own, and stopping one half-way would leave its outside effects without their
    rows. The budget covers execution; ErrorsAndTransaction rolls the transaction back."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def on_execute(self) -> AsyncIterator[None]:
        if self.execution_context.operation_type is not OperationType.QUERY:
            yield
            return
        stop = await statement_stopper(self.execution_context.context)
        budget = asyncio.timeout(self.seconds)
        try:
            async with budget:
                timer = asyncio.get_running_loop().call_at(budget.when(), stop) if stop else None  # type: ignore[arg-type]
                try:
                    yield
                finally:
                    if timer:
                        timer.cancel()
        except TimeoutError:
            if not budget.expired():
                raise
            error = DeadlineExceeded(
                f"The query ran longer than its time budget of {self.seconds:g} s and was cancelled "
                "(setting ADAPTIVE_GRAPHQL_TIMEOUT_S): ask for less, e.g. smaller pages"
            )
            raise GraphQLError(error.message, original_error=error) from None


async def statement_stopper(context: Any) -> Callable[[], None] | None:
    """What stops the statement a query is running when its budget ends, on SQLite. There aiosqlite runs it
    in a thread of its own, which a cancelled await does not stop, and SQLAlchemy's clean-up of the cancelled
    connection waits for it: only SQLite's interrupt ends it. (asyncpg has PostgreSQL cancel the statement
    as soon as its await is cancelled.) Taken before the query runs: once cancelled, the connection is out
    of reach."""
    session = getattr(context, "session", None)
    if session is None or session.bind is None or session.bind.dialect.name != "sqlite":
        return None
    driver = (await (await session.connection()).get_raw_connection()).driver_connection

    async def interrupt() -> None:
        with contextlib.suppress(ValueError):  # the connection closed in the meantime: nothing runs
            await driver.interrupt()

    def stop() -> None:
        asyncio.ensure_future(interrupt())

    return stop
