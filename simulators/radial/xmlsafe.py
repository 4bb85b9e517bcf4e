"""A small, safe XML reader and writer for the Radial simulator.

Reading uses the standard library's expat with namespace processing and refuses any DOCTYPE,
entity declaration or external entity outright, so no entity is ever expanded (no "billion laughs",
no external fetches). Nesting depth and element count are bounded. The result is a plain tree of
:class:`Element` (namespace, local name, attributes, text, children).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

_SEP = "\x01"
MAX_DEPTH = 32
MAX_ELEMENTS = 2000


class XmlRefused(ValueError):
    """The document is not well-formed, or uses a feature the reader refuses (DTD, entities)."""


@dataclass
class Element:
    namespace: str | None
    name: str
    attributes: dict[str, str]
    line: int
    text: str = ""
    children: list[Element] = field(default_factory=list)

    def canonical(self) -> tuple[object, ...]:
        """A comparable form that ignores formatting (indentation, attribute order)."""
        return (
            self.namespace,
            self.name,
            tuple(sorted(self.attributes.items())),
            self.text.strip(),
            tuple(child.canonical() for child in self.children),
        )


def _split(qualified: str) -> tuple[str | None, str]:
    if _SEP in qualified:
        namespace, local = qualified.split(_SEP, 1)
        return namespace, local
    return None, qualified


def parse(data: bytes) -> Element:
    parser = expat.ParserCreate(namespace_separator=_SEP)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Element] = []
    root: list[Element] = []
    count = 0

    def refuse(*_: object) -> None:
        raise XmlRefused("DOCTYPE and entity declarations are not allowed")

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS or len(stack) >= MAX_DEPTH:
            raise XmlRefused("the document is too large or too deeply nested")
        namespace, local = _split(name)
        attrs: dict[str, str] = {}
        for key, value in attributes.items():
            attr_ns, attr_local = _split(key)
            attrs[attr_local if attr_ns is None else f"{{{attr_ns}}}{attr_local}"] = value
        element = Element(namespace, local, attrs, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)

    def end(_: str) -> None:
        stack.pop()

    def characters(text: str) -> None:
        if stack:
            stack[-1].text += text

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlRefused(f"not well-formed XML: {expat.ErrorString(exc.code)} (line {exc.lineno})") from None
    if not root:
        raise XmlRefused("the document has no root element")
    return root[0]


# --- writing ---------------------------------------------------------------------------------------


def text_element(name: str, text: str, **attributes: str) -> str:
    attrs = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    return f"<{name}{attrs}>{escape(text)}</{name}>"


def document(root: str, namespace: str, children: list[str], indent: str = "  ") -> bytes:
    """An XML document: declaration, root in ``namespace``, one child per line."""
    body = "".join(f"\n{indent}{child}" for child in children)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{namespace}">{body}\n</{root}>\n'.encode()
