"""A small GraphQL engine: enough of the language for the gift card subset of Shopify's Admin API.

It parses real GraphQL documents (operations, variables with defaults, aliases, fragments, inline
fragments, ``__typename``, literals of every kind, comments, block strings), validates them against
a tiny schema (unknown fields and arguments, missing required arguments, selection mismatches,
undeclared or unused variables, literal and variable type mismatches), coerces variables strictly,
then executes root fields through resolvers and shapes each result to the selection.

Error messages and ``extensions.code`` values follow graphql-ruby, which Shopify runs; they are
close to, not guaranteed identical with, Shopify's wording. Not supported (answered with an
error): directives, subscriptions, introspection (``__schema``, ``__type``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# --- errors ----------------------------------------------------------------------------------------


class GraphQLError(Exception):
    """One entry of the response's top-level ``errors``."""

    def __init__(
        self,
        message: str,
        locations: list[tuple[int, int]] | None = None,
        *,
        path: list[str | int] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.locations = locations or []
        self.path = path
        self.extensions = extensions

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"message": self.message}
        if self.locations:
            entry["locations"] = [{"line": line, "column": column} for line, column in self.locations]
        if self.path is not None:
            entry["path"] = self.path
        if self.extensions:
            entry["extensions"] = self.extensions
        return entry


class FieldError(Exception):
    """Raised by a resolver: the field becomes null and the message a located, pathed error."""

    def __init__(self, message: str, extensions: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


# --- lexer -----------------------------------------------------------------------------------------

PUNCTUATORS = {
    "{": "LCURLY",
    "}": "RCURLY",
    "(": "LPAREN",
    ")": "RPAREN",
    "[": "LBRACKET",
    "]": "RBRACKET",
    ":": "COLON",
    "$": "VAR_SIGN",
    "!": "BANG",
    "=": "EQUALS",
    "@": "DIR_SIGN",
    "...": "ELLIPSIS",
    "|": "PIPE",
    "&": "AMP",
}
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?P<frac>\.[0-9]+)?(?P<exp>[eE][+-]?[0-9]+)?")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class Token:
    kind: str  # PUNCT, NAME, INT, FLOAT, STRING, EOF
    value: str
    line: int
    column: int

    def describe(self) -> str:
        if self.kind == "PUNCT":
            return f'"{self.value}" ({PUNCTUATORS[self.value]})'
        label = {"NAME": "IDENTIFIER"}.get(self.kind, self.kind)
        return f'"{self.value}" ({label})'


def _parse_error(message: str, line: int, column: int) -> GraphQLError:
    return GraphQLError(message, [(line, column)], extensions={"code": "parseError"})


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, line_start, n = 0, 1, 0, len(source)
    while i < n:
        ch = source[i]
        column = i - line_start + 1
        if ch in " \t,\ufeff":
            i += 1
        elif ch in "\r\n":
            i += 2 if source.startswith("\r\n", i) else 1
            line, line_start = line + 1, i
        elif ch == "#":
            while i < n and source[i] not in "\r\n":
                i += 1
        elif source.startswith("...", i):
            tokens.append(Token("PUNCT", "...", line, column))
            i += 3
        elif ch in PUNCTUATORS:
            tokens.append(Token("PUNCT", ch, line, column))
            i += 1
        elif match := _NAME.match(source, i):
            tokens.append(Token("NAME", match.group(), line, column))
            i = match.end()
        elif (match := _NUMBER.match(source, i)) and (ch.isdigit() or ch == "-"):
            kind = "FLOAT" if match.group("frac") or match.group("exp") else "INT"
            end = match.end()
            if end < n and (source[end] == "." or _NAME.match(source, end)):
                raise _parse_error(f'Parse error on "{source[i:end + 1]}" (error) at [{line}, {column}]', line, column)
            tokens.append(Token(kind, match.group(), line, column))
            i = end
        elif source.startswith('"""', i):
            end = source.find('"""', i + 3)
            while end != -1 and source[end - 1] == "\\":
                end = source.find('"""', end + 1)
            if end == -1:
                raise _parse_error(f"Parse error on unterminated string at [{line}, {column}]", line, column)
            raw = source[i + 3 : end].replace('\\"""', '"""')
            tokens.append(Token("STRING", _block_string(raw), line, column))
            newlines = raw.count("\n")
            if newlines:
                line += newlines
                line_start = source.rfind("\n", i, end) + 1
            i = end + 3
        elif ch == '"':
            value, i = _string(source, i, line, column)
            tokens.append(Token("STRING", value, line, column))
        else:
            raise _parse_error(f'Parse error on "{ch}" (UNKNOWN_CHAR) at [{line}, {column}]', line, column)
    tokens.append(Token("EOF", "", line, i - line_start + 1))
    return tokens


def _string(source: str, i: int, line: int, column: int) -> tuple[str, int]:
    out: list[str] = []
    i += 1
    while i < len(source):
        ch = source[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch in "\r\n":
            break
        if ch == "\\":
            nxt = source[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", source[i + 2 : i + 6]):
                out.append(chr(int(source[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise _parse_error(f"Parse error on bad Unicode escape sequence at [{line}, {column}]", line, column)
        out.append(ch)
        i += 1
    raise _parse_error(f"Parse error on unterminated string at [{line}, {column}]", line, column)


def _block_string(raw: str) -> str:
    lines = raw.splitlines()
    indents = [len(text) - len(text.lstrip(" \t")) for text in lines[1:] if text.strip()]
    common = min(indents) if indents else 0
    lines = lines[:1] + [text[common:] for text in lines[1:]]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


# --- AST -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeRef:
    kind: str  # named, list, non_null
    name: str | None = None
    of: TypeRef | None = None

    def __str__(self) -> str:
        if self.kind == "named":
            return str(self.name)
        if self.kind == "list":
            return f"[{self.of}]"
        return f"{self.of}!"

    @property
    def named(self) -> str:
        ref: TypeRef = self
        while ref.kind != "named":
            assert ref.of is not None
            ref = ref.of
        return str(ref.name)


@dataclass(frozen=True)
class Value:
    kind: str  # variable, int, float, string, boolean, null, enum, list, object
    value: Any
    line: int
    column: int

    def literal(self) -> str:
        """The value as GraphQL source text (for messages)."""
        if self.kind == "variable":
            return f"${self.value}"
        if self.kind == "string":
            return '"' + self.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if self.kind == "null":
            return "null"
        if self.kind == "boolean":
            return "true" if self.value else "false"
        if self.kind == "list":
            return "[" + ", ".join(item.literal() for item in self.value) + "]"
        if self.kind == "object":
            return "{" + ", ".join(f"{key}: {item.literal()}" for key, item in self.value.items()) + "}"
        return str(self.value)


@dataclass
class FieldNode:
    alias: str | None
    name: str
    arguments: dict[str, Value]
    selections: list[Any] | None
    line: int
    column: int

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class FragmentSpread:
    name: str
    line: int
    column: int


@dataclass
class InlineFragment:
    type_condition: str | None
    selections: list[Any]
    line: int
    column: int


@dataclass
class VariableDefinition:
    name: str
    type: TypeRef
    default: Value | None
    line: int
    column: int


@dataclass
class Operation:
    kind: str  # query, mutation, subscription
    name: str | None
    variables: list[VariableDefinition]
    selections: list[Any]
    line: int
    column: int


@dataclass
class Fragment:
    name: str
    type_condition: str
    selections: list[Any]
    line: int
    column: int


@dataclass
class Document:
    operations: list[Operation] = field(default_factory=list)
    fragments: dict[str, Fragment] = field(default_factory=dict)


# --- parser ----------------------------------------------------------------------------------------


class Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.pos = 0

    # helpers
    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def peek(self, value: str, kind: str = "PUNCT") -> bool:
        return self.token.kind == kind and self.token.value == value

    def unexpected(self, token: Token | None = None) -> GraphQLError:
        token = token or self.token
        if token.kind == "EOF":
            return _parse_error("Unexpected end of document", token.line, token.column)
        message = f"Parse error on {token.describe()} at [{token.line}, {token.column}]"
        return _parse_error(message, token.line, token.column)

    def expect(self, value: str) -> Token:
        if not self.peek(value):
            raise self.unexpected()
        return self.advance()

    def name(self) -> Token:
        if self.token.kind != "NAME":
            raise self.unexpected()
        return self.advance()

    def reject_directives(self) -> None:
        if self.peek("@"):
            token = self.token
            raise GraphQLError(
                "Directives are not supported by the Shopify simulator",
                [(token.line, token.column)],
                extensions={"code": "directivesNotSupported"},
            )

    # grammar
    def document(self) -> Document:
        doc = Document()
        if self.token.kind == "EOF":
            raise _parse_error("Unexpected end of document", 1, 1)
        while self.token.kind != "EOF":
            token = self.token
            if self.peek("{"):
                doc.operations.append(Operation("query", None, [], self.selection_set(), token.line, token.column))
            elif token.kind == "NAME" and token.value in ("query", "mutation", "subscription"):
                doc.operations.append(self.operation())
            elif token.kind == "NAME" and token.value == "fragment":
                fragment = self.fragment()
                if fragment.name in doc.fragments:
                    raise GraphQLError(
                        f'Fragment name "{fragment.name}" must be unique',
                        [(fragment.line, fragment.column)],
                        extensions={"code": "fragmentNotUnique", "fragmentName": fragment.name},
                    )
                doc.fragments[fragment.name] = fragment
            else:
                raise self.unexpected()
        return doc

    def operation(self) -> Operation:
        token = self.advance()
        name = self.name().value if self.token.kind == "NAME" else None
        variables: list[VariableDefinition] = []
        if self.peek("("):
            self.advance()
            while not self.peek(")"):
                start = self.expect("$")
                var_name = self.name().value
                self.expect(":")
                type_ref = self.type_ref()
                default = None
                if self.peek("="):
                    self.advance()
                    default = self.value(const=True)
                self.reject_directives()
                variables.append(VariableDefinition(var_name, type_ref, default, start.line, start.column))
            self.advance()
            if not variables:
                raise self.unexpected(self.tokens[self.pos - 1])
        self.reject_directives()
        return Operation(token.value, name, variables, self.selection_set(), token.line, token.column)

    def fragment(self) -> Fragment:
        token = self.advance()
        name = self.name()
        if name.value == "on":
            raise self.unexpected(name)
        if not (self.token.kind == "NAME" and self.token.value == "on"):
            raise self.unexpected()
        self.advance()
        type_condition = self.name().value
        self.reject_directives()
        return Fragment(name.value, type_condition, self.selection_set(), token.line, token.column)

    def type_ref(self) -> TypeRef:
        if self.peek("["):
            self.advance()
            ref = TypeRef("list", of=self.type_ref())
            self.expect("]")
        else:
            ref = TypeRef("named", name=self.name().value)
        if self.peek("!"):
            self.advance()
            ref = TypeRef("non_null", of=ref)
        return ref

    def selection_set(self) -> list[Any]:
        self.expect("{")
        selections: list[Any] = []
        while not self.peek("}"):
            selections.append(self.selection())
        if not selections:
            raise self.unexpected()
        self.advance()
        return selections

    def selection(self) -> Any:
        token = self.token
        if self.peek("..."):
            self.advance()
            if self.token.kind == "NAME" and self.token.value != "on":
                name = self.advance().value
                self.reject_directives()
                return FragmentSpread(name, token.line, token.column)
            type_condition = None
            if self.token.kind == "NAME" and self.token.value == "on":
                self.advance()
                type_condition = self.name().value
            self.reject_directives()
            return InlineFragment(type_condition, self.selection_set(), token.line, token.column)
        first = self.name()
        alias, name = None, first.value
        if self.peek(":"):
            self.advance()
            alias, name = first.value, self.name().value
        arguments: dict[str, Value] = {}
        if self.peek("("):
            self.advance()
            while not self.peek(")"):
                arg = self.name()
                self.expect(":")
                if arg.value in arguments:
                    raise GraphQLError(
                        f"There can be only one argument named \"{arg.value}\"",
                        [(arg.line, arg.column)],
                        extensions={"code": "argumentNotUnique", "name": arg.value},
                    )
                arguments[arg.value] = self.value(const=False)
            self.advance()
            if not arguments:
                raise self.unexpected(self.tokens[self.pos - 1])
        self.reject_directives()
        selections = self.selection_set() if self.peek("{") else None
        return FieldNode(alias, name, arguments, selections, first.line, first.column)

    def value(self, const: bool) -> Value:
        token = self.token
        if self.peek("$"):
            if const:
                raise self.unexpected()
            self.advance()
            return Value("variable", self.name().value, token.line, token.column)
        if self.peek("["):
            self.advance()
            items = []
            while not self.peek("]"):
                items.append(self.value(const))
            self.advance()
            return Value("list", items, token.line, token.column)
        if self.peek("{"):
            self.advance()
            fields: dict[str, Value] = {}
            while not self.peek("}"):
                key = self.name().value
                self.expect(":")
                fields[key] = self.value(const)
            self.advance()
            return Value("object", fields, token.line, token.column)
        self.advance()
        if token.kind == "INT":
            return Value("int", int(token.value), token.line, token.column)
        if token.kind == "FLOAT":
            return Value("float", float(token.value), token.line, token.column)
        if token.kind == "STRING":
            return Value("string", token.value, token.line, token.column)
        if token.kind == "NAME":
            if token.value in ("true", "false"):
                return Value("boolean", token.value == "true", token.line, token.column)
            if token.value == "null":
                return Value("null", None, token.line, token.column)
            return Value("enum", token.value, token.line, token.column)
        raise self.unexpected(token)


def parse(source: str) -> Document:
    return Parser(source).document()


def parse_type(text: str) -> TypeRef:
    parser = Parser(text)
    ref = parser.type_ref()
    if parser.token.kind != "EOF":
        raise ValueError(f"bad type {text!r}")
    return ref


# --- schema ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    type: TypeRef
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True)
class FieldDef:
    type: TypeRef
    args: dict[str, Arg] = field(default_factory=dict)


def F(type_text: str, **args: str | tuple[str, Any]) -> FieldDef:
    """A field definition: ``F("GiftCard", id="ID!")``; an argument default as ``("Int", 10)``."""
    parsed: dict[str, Arg] = {}
    for name, spec in args.items():
        if isinstance(spec, tuple):
            parsed[name] = Arg(parse_type(spec[0]), spec[1], True)
        else:
            parsed[name] = Arg(parse_type(spec))
    return FieldDef(parse_type(type_text), parsed)


@dataclass
class Schema:
    query: str
    mutation: str
    objects: dict[str, dict[str, FieldDef] | None]  # None: an opaque type (any field, always null here)
    inputs: dict[str, dict[str, TypeRef]]
    enums: dict[str, frozenset[str]]
    scalars: dict[str, Callable[[Any], Any]]  # JSON variable value -> Python value (raise ValueError)
    literal_scalars: dict[str, Callable[[Value], Any]]  # literal -> Python value (raise ValueError)
    serializers: dict[str, Callable[[Any], Any]]

    def is_input(self, name: str) -> bool:
        return name in self.scalars or name in self.enums or name in self.inputs

    def is_leaf(self, name: str) -> bool:
        return name in self.scalars or name in self.enums


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise ValueError
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError
    return float(value)


def _string_value(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError
    return str(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


_DECIMAL = re.compile(r"-?\d+(\.\d+)?")


def _decimal(value: Any) -> Decimal:
    # Shopify serialises Decimal as a string; the simulator insists on strings as input too.
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise ValueError
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError from None


def _date(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError
    date.fromisoformat(value)
    return value


def _datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    datetime.fromisoformat(value)
    return value


BASE_SCALARS: dict[str, Callable[[Any], Any]] = {
    "Int": _int,
    "Float": _float,
    "String": _string_value,
    "ID": _id,
    "Boolean": _bool,
    "Decimal": _decimal,
    "Date": _date,
    "DateTime": _datetime,
    "URL": _string_value,
}
_LITERAL_KINDS = {
    "Int": ("int",),
    "Float": ("int", "float"),
    "String": ("string",),
    "ID": ("string", "int"),
    "Boolean": ("boolean",),
    "Decimal": ("string",),
    "Date": ("string",),
    "DateTime": ("string",),
    "URL": ("string",),
}


def base_literal(name: str) -> Callable[[Value], Any]:
    def convert(value: Value) -> Any:
        if value.kind not in _LITERAL_KINDS[name]:
            raise ValueError
        return BASE_SCALARS[name](value.value)

    return convert


# --- validation ------------------------------------------------------------------------------------


@dataclass
class Request:
    """A validated operation, ready to execute."""

    operation: Operation
    fragments: dict[str, Fragment]
    variables: dict[str, Any]
    root_type: str


def prepare(schema: Schema, source: str, variables: Any, operation_name: str | None) -> Request:
    """Parse, pick the operation, validate statically, coerce variables; raises a list of errors."""
    try:
        doc = parse(source)
    except GraphQLError as exc:
        raise ValidationErrors([exc]) from None
    operation = _pick_operation(doc, operation_name)
    if operation.kind == "subscription":
        raise ValidationErrors(
            [GraphQLError("Subscriptions are not supported", [(operation.line, operation.column)])]
        )
    root = schema.query if operation.kind == "query" else schema.mutation
    errors = Validator(schema, doc, operation).run(root)
    if errors:
        raise ValidationErrors(errors)
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise ValidationErrors([GraphQLError("Variables must be a JSON object")])
    coerced = coerce_variables(schema, operation, variables)
    return Request(operation, doc.fragments, coerced, root)


class ValidationErrors(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else "invalid")
        self.errors = errors


def _pick_operation(doc: Document, name: str | None) -> Operation:
    if not doc.operations:
        raise ValidationErrors([GraphQLError("No operations in this document")])
    if name:
        for operation in doc.operations:
            if operation.name == name:
                return operation
        raise ValidationErrors([GraphQLError(f'No operation named "{name}"')])
    if len(doc.operations) > 1:
        raise ValidationErrors(
            [GraphQLError("An operation name is required when sending a document with multiple operations")]
        )
    return doc.operations[0]


class Validator:
    def __init__(self, schema: Schema, doc: Document, operation: Operation) -> None:
        self.schema = schema
        self.doc = doc
        self.operation = operation
        self.declared = {var.name: var for var in operation.variables}
        self.used: set[str] = set()
        self.errors: list[GraphQLError] = []
        self.visiting: list[str] = []

    def error(self, message: str, line: int, column: int, **extensions: Any) -> None:
        self.errors.append(GraphQLError(message, [(line, column)], extensions=extensions or None))

    def run(self, root: str) -> list[GraphQLError]:
        seen: set[str] = set()
        for var in self.operation.variables:
            if var.name in seen:
                self.error(f'There can only be one variable named "{var.name}"', var.line, var.column,
                           code="variableNotUnique", variableName=var.name)
            seen.add(var.name)
            if not self.schema.is_input(var.type.named):
                self.error(f"{var.type.named} isn't a defined input type (on ${var.name})", var.line, var.column,
                           code="variableRequiresValidType", typeName=var.type.named, variableName=var.name)
            elif var.default is not None:
                self.check_value(var.default, var.type, f"Default value for ${var.name}", var.line, var.column)
        self.selections(self.operation.selections, root)
        for var in self.operation.variables:
            if var.name not in self.used:
                op = self.operation.name or "anonymous " + self.operation.kind
                self.error(f"Variable ${var.name} is declared by {op} but not used", var.line, var.column,
                           code="variableNotUsed", variableName=var.name)
        return self.errors

    def selections(self, selections: list[Any], type_name: str) -> None:
        fields = self.schema.objects.get(type_name)
        for selection in selections:
            if isinstance(selection, FragmentSpread):
                fragment = self.doc.fragments.get(selection.name)
                if fragment is None:
                    self.error(f"Fragment {selection.name} was used, but not defined", selection.line,
                               selection.column, code="useAndDefineFragment", fragmentName=selection.name)
                    continue
                if selection.name in self.visiting:
                    self.error(f"Fragment {selection.name} contains an infinite loop", selection.line,
                               selection.column, code="infiniteLoop", fragmentName=selection.name)
                    continue
                if not self.type_matches(fragment.type_condition, type_name, selection):
                    continue
                self.visiting.append(selection.name)
                self.selections(fragment.selections, type_name)
                self.visiting.pop()
            elif isinstance(selection, InlineFragment):
                if selection.type_condition and not self.type_matches(selection.type_condition, type_name, selection):
                    continue
                self.selections(selection.selections, type_name)
            else:
                self.field(selection, type_name, fields)

    def type_matches(self, condition: str, type_name: str, node: Any) -> bool:
        if condition not in self.schema.objects:
            self.error(f"No such type {condition}, so it can't be a fragment condition", node.line, node.column,
                       code="undefinedType", typeName=condition)
            return False
        if condition != type_name and self.schema.objects.get(type_name) is not None:
            self.error(f"Fragment cannot be spread here as objects of type {type_name} can never be of type "
                       f"{condition}", node.line, node.column, code="cannotSpreadFragment")
            return False
        return True

    def field(self, node: FieldNode, type_name: str, fields: dict[str, FieldDef] | None) -> None:
        if node.name == "__typename":
            if node.arguments or node.selections:
                self.error("Selections can't be made on scalars (field '__typename' returns String!)",
                           node.line, node.column, code="selectionMismatch")
            return
        if node.name in ("__schema", "__type"):
            self.error("Introspection is not supported by the Shopify simulator", node.line, node.column,
                       code="introspectionNotSupported")
            return
        if fields is None:  # opaque type: any field, values are always null
            for value in node.arguments.values():
                self.note_variables(value)
            if node.selections:
                self.selections(node.selections, "__opaque__")
            return
        definition = fields.get(node.name)
        if definition is None:
            self.error(f"Field '{node.name}' doesn't exist on type '{type_name}'", node.line, node.column,
                       code="undefinedField", typeName=type_name, fieldName=node.name)
            return
        for arg_name, value in node.arguments.items():
            arg = definition.args.get(arg_name)
            if arg is None:
                self.error(f"Field '{node.name}' doesn't accept argument '{arg_name}'", value.line, value.column,
                           code="argumentNotAccepted", name=node.name, typeName="Field", argumentName=arg_name)
                continue
            self.check_value(value, arg.type, f"Argument '{arg_name}' on Field '{node.name}'", value.line,
                             value.column, arg_name)
        missing = [
            name
            for name, arg in definition.args.items()
            if arg.type.kind == "non_null" and not arg.has_default and name not in node.arguments
        ]
        if missing:
            self.error(f"Field '{node.name}' is missing required arguments: {', '.join(missing)}", node.line,
                       node.column, code="missingRequiredArguments", className="Field", name=node.name,
                       arguments=", ".join(missing))
        target = definition.type.named
        if self.schema.is_leaf(target):
            if node.selections:
                self.error(f"Selections can't be made on scalars (field '{node.name}' returns {definition.type} "
                           f"but has selections [{', '.join(_selection_names(node.selections))}])",
                           node.line, node.column, code="selectionMismatch", nodeName=f"field '{node.name}'",
                           typeName=str(definition.type))
        elif not node.selections:
            self.error(f"Field must have selections (field '{node.name}' returns {definition.type} but has no "
                       f"selections. Did you mean '{node.name} {{ ... }}'?)", node.line, node.column,
                       code="selectionMismatch", nodeName=f"field '{node.name}'", typeName=str(definition.type))
        else:
            self.selections(node.selections, target)

    def note_variables(self, value: Value) -> None:
        if value.kind == "variable":
            self.used.add(value.value)
        elif value.kind == "list":
            for item in value.value:
                self.note_variables(item)
        elif value.kind == "object":
            for item in value.value.values():
                self.note_variables(item)

    def check_value(
        self, value: Value, expected: TypeRef, where: str, line: int, column: int, argument: str = "value"
    ) -> None:
        if value.kind == "variable":
            self.used.add(value.value)
            var = self.declared.get(value.value)
            if var is None:
                op = self.operation.name or "anonymous " + self.operation.kind
                self.error(f"Variable ${value.value} is used by {op} but not declared", value.line, value.column,
                           code="variableNotDefined", variableName=value.value)
            elif not _compatible(var.type, expected, var.default is not None):
                self.error(f"Type mismatch on variable ${var.name} and argument {argument} "
                           f"({var.type} / {expected})", value.line, value.column, code="variableMismatch",
                           variableName=var.name, typeName=str(var.type), argumentName=argument)
            return
        problem = self.literal_problem(value, expected, argument)
        if problem is not None:
            self.errors.append(problem if isinstance(problem, GraphQLError) else GraphQLError(
                f"{where} has an invalid value ({value.literal()}). Expected type '{expected}'.",
                [(line, column)], extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"}))

    def literal_problem(self, value: Value, expected: TypeRef, argument: str = "value") -> GraphQLError | bool | None:
        """None if the literal fits ``expected``; a specific error, or True for the generic one."""
        if value.kind == "variable":
            self.check_value(value, expected, "Argument", value.line, value.column, argument)
            return None
        if expected.kind == "non_null":
            assert expected.of is not None
            if value.kind == "null":
                return True
            return self.literal_problem(value, expected.of, argument)
        if value.kind == "null":
            return None
        if expected.kind == "list":
            assert expected.of is not None
            items = value.value if value.kind == "list" else [value]
            for item in items:
                problem = self.literal_problem(item, expected.of, argument)
                if problem is not None:
                    return problem
            return None
        name = str(expected.name)
        if name in self.schema.enums:
            return None if value.kind == "enum" and value.value in self.schema.enums[name] else True
        if name in self.schema.literal_scalars:
            try:
                self.schema.literal_scalars[name](value)
            except ValueError:
                return True
            return None
        fields = self.schema.inputs.get(name)
        if fields is None or value.kind != "object":
            return True
        for key, item in value.value.items():
            if key not in fields:
                return GraphQLError(f"InputObject '{name}' doesn't accept argument '{key}'",
                                    [(item.line, item.column)],
                                    extensions={"code": "argumentNotAccepted", "name": name,
                                                "typeName": "InputObject", "argumentName": key})
            problem = self.literal_problem(item, fields[key], key)
            if problem is True:
                return GraphQLError(
                    f"Argument '{key}' on InputObject '{name}' has an invalid value ({item.literal()}). "
                    f"Expected type '{fields[key]}'.", [(item.line, item.column)],
                    extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"})
            if problem is not None:
                return problem
        for key, ref in fields.items():
            if ref.kind == "non_null" and key not in value.value:
                return GraphQLError(f"Argument '{key}' on InputObject '{name}' is required. Expected type {ref}",
                                    [(value.line, value.column)],
                                    extensions={"code": "missingRequiredInputObjectAttribute", "argumentName": key,
                                                "argumentType": str(ref), "inputObjectType": name})
        return None


def _selection_names(selections: list[Any]) -> Iterator[str]:
    for selection in selections:
        yield selection.name if isinstance(selection, (FieldNode, FragmentSpread)) else "..."


def _compatible(var_type: TypeRef, expected: TypeRef, has_default: bool) -> bool:
    if expected.kind == "non_null":
        if var_type.kind != "non_null":
            return has_default and _compatible(var_type, expected.of, False)  # type: ignore[arg-type]
        return _compatible(var_type.of, expected.of, False)  # type: ignore[arg-type]
    if var_type.kind == "non_null":
        return _compatible(var_type.of, expected, False)  # type: ignore[arg-type]
    if expected.kind == "list":
        return var_type.kind == "list" and _compatible(var_type.of, expected.of, False)  # type: ignore[arg-type]
    return var_type.kind == "named" and var_type.name == expected.name


# --- variables -------------------------------------------------------------------------------------


def coerce_variables(schema: Schema, operation: Operation, given: dict[str, Any]) -> dict[str, Any]:
    coerced: dict[str, Any] = {}
    errors: list[GraphQLError] = []
    for var in operation.variables:
        if var.name in given:
            raw = given[var.name]
        elif var.default is not None:
            coerced[var.name] = literal_to_python(schema, var.default, var.type, {})
            continue
        else:
            raw = None
            if var.type.kind != "non_null":
                continue
        problems: list[dict[str, Any]] = []
        value = _coerce(schema, raw, var.type, [], problems)
        if problems:
            errors.append(_variable_error(var, raw, problems))
        else:
            coerced[var.name] = value
    if errors:
        raise ValidationErrors(errors)
    return coerced


def _variable_error(var: VariableDefinition, raw: Any, problems: list[dict[str, Any]]) -> GraphQLError:
    message = f"Variable ${var.name} of type {var.type} was provided invalid value"
    located = [p for p in problems if p["path"]]
    if located:
        message += " for " + ", ".join(f"{'.'.join(map(str, p['path']))} ({p['explanation']})" for p in located)
    return GraphQLError(message, [(var.line, var.column)], extensions={"value": raw, "problems": problems})


def _coerce(schema: Schema, raw: Any, ref: TypeRef, path: list[str | int], problems: list[dict[str, Any]]) -> Any:
    if ref.kind == "non_null":
        assert ref.of is not None
        if raw is None:
            problems.append({"path": path, "explanation": "Expected value to not be null"})
            return None
        return _coerce(schema, raw, ref.of, path, problems)
    if raw is None:
        return None
    if ref.kind == "list":
        assert ref.of is not None
        items = raw if isinstance(raw, list) else [raw]
        return [_coerce(schema, item, ref.of, [*path, i], problems) for i, item in enumerate(items)]
    name = str(ref.name)
    if name in schema.enums:
        if isinstance(raw, str) and raw in schema.enums[name]:
            return raw
        problems.append({"path": path, "explanation": f"Expected \"{raw}\" to be one of: "
                                                      f"{', '.join(sorted(schema.enums[name]))}"})
        return None
    if name in schema.scalars:
        try:
            return schema.scalars[name](raw)
        except ValueError:
            shown = f'"{raw}"' if isinstance(raw, str) else _json_text(raw)
            problems.append({"path": path, "explanation": f"Could not coerce value {shown} to {name}"})
            return None
    fields = schema.inputs[name]
    if not isinstance(raw, dict):
        problems.append({"path": path, "explanation": f"Expected \"{_json_text(raw)}\" to be a key-value object."})
        return None
    out: dict[str, Any] = {}
    for key, item in raw.items():
        if key not in fields:
            problems.append({"path": [*path, key], "explanation": f"Field is not defined on {name}"})
            continue
        out[key] = _coerce(schema, item, fields[key], [*path, key], problems)
    for key, field_ref in fields.items():
        if field_ref.kind == "non_null" and key not in raw:
            problems.append({"path": [*path, key], "explanation": "Expected value to not be null"})
    return out


def _json_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


def literal_to_python(schema: Schema, value: Value, ref: TypeRef, variables: dict[str, Any]) -> Any:
    """A validated literal (or variable) as the Python value resolvers receive."""
    if value.kind == "variable":
        return variables.get(value.value)
    if value.kind == "null":
        return None
    if ref.kind == "non_null":
        assert ref.of is not None
        return literal_to_python(schema, value, ref.of, variables)
    if ref.kind == "list":
        assert ref.of is not None
        items = value.value if value.kind == "list" else [value]
        return [literal_to_python(schema, item, ref.of, variables) for item in items]
    name = str(ref.name)
    if name in schema.enums:
        return value.value
    if name in schema.literal_scalars:
        return schema.literal_scalars[name](value)
    fields = schema.inputs[name]
    return {key: literal_to_python(schema, item, fields[key], variables) for key, item in value.value.items()}


# --- execution -------------------------------------------------------------------------------------

Resolver = Callable[[dict[str, Any]], Any]


def collect_fields(request: Request, type_name: str, selections: list[Any], out: dict[str, list[FieldNode]]) -> None:
    for selection in selections:
        if isinstance(selection, FieldNode):
            out.setdefault(selection.key, []).append(selection)
        elif isinstance(selection, FragmentSpread):
            fragment = request.fragments[selection.name]
            collect_fields(request, type_name, fragment.selections, out)
        else:
            collect_fields(request, type_name, selection.selections, out)


def execute(
    schema: Schema,
    request: Request,
    resolvers: dict[str, Resolver],
    before_field: Callable[[str, FieldNode], None] | None = None,
) -> tuple[dict[str, Any], list[GraphQLError]]:
    """Runs the root fields in order; ``resolvers`` maps a root field name to a resolver of its arguments.

    ``before_field(name, node)`` may raise :class:`FieldError` (access checks).
    """
    fields: dict[str, list[FieldNode]] = {}
    collect_fields(request, request.root_type, request.operation.selections, fields)
    root_defs = schema.objects[request.root_type]
    assert root_defs is not None
    data: dict[str, Any] = {}
    errors: list[GraphQLError] = []
    for key, nodes in fields.items():
        node = nodes[0]
        if node.name == "__typename":
            data[key] = request.root_type
            continue
        definition = root_defs[node.name]
        args: dict[str, Any] = {}
        for arg_name, arg in definition.args.items():
            if arg_name in node.arguments:
                args[arg_name] = literal_to_python(schema, node.arguments[arg_name], arg.type, request.variables)
            elif arg.has_default:
                args[arg_name] = arg.default
        try:
            if before_field is not None:
                before_field(node.name, node)
            value = resolvers[node.name](args)
        except FieldError as exc:
            errors.append(GraphQLError(exc.message, [(node.line, node.column)], path=[key],
                                       extensions=exc.extensions))
            data[key] = None
            continue
        data[key] = _complete(schema, request, value, definition.type, nodes)
    return data, errors


def _complete(schema: Schema, request: Request, value: Any, ref: TypeRef, nodes: list[FieldNode]) -> Any:
    if ref.kind == "non_null":
        assert ref.of is not None
        return _complete(schema, request, value, ref.of, nodes)
    if value is None:
        return None
    if ref.kind == "list":
        assert ref.of is not None
        return [_complete(schema, request, item, ref.of, nodes) for item in value]
    name = str(ref.name)
    if schema.is_leaf(name):
        serializer = schema.serializers.get(name)
        return serializer(value) if serializer else value
    fields_def = schema.objects.get(name)
    if fields_def is None:
        return None
    selected: dict[str, list[FieldNode]] = {}
    for node in nodes:
        collect_fields(request, name, node.selections or [], selected)
    out: dict[str, Any] = {}
    for key, field_nodes in selected.items():
        field_name = field_nodes[0].name
        if field_name == "__typename":
            out[key] = name
            continue
        item = value.get(field_name) if isinstance(value, dict) else getattr(value, field_name, None)
        if callable(item):
            item = item()
        out[key] = _complete(schema, request, item, fields_def[field_name].type, field_nodes)
    return out
