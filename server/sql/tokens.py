"""A tokenizer and cursor for Snowflake's control statements (CREATE, DROP, LIST, ...).

sqlglot parses queries well but falls back to opaque "Command" strings for much of
Snowflake's DDL (compute pools, REMOVE, SHOW COMPUTE POOLS, services), so control
statements get this small explicit grammar, with errors that point at the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NoReturn

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import resolve_identifier

__all__ = ["Cursor", "Kind", "Token", "tokenize"]


class Kind(Enum):
    WORD = "word"  # unquoted identifier or keyword
    QUOTED = "quoted"  # "quoted identifier"
    STRING = "string"  # 'literal' or $$literal$$
    NUMBER = "number"
    STAGE = "stage"  # @db.schema.stage/path
    PUNCT = "punct"
    END = "end"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    value: str
    pos: int


_PUNCT = ("=>", "=", "(", ")", ",", ".", ";", "*")


def tokenize(sql: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i) or sql.startswith("//", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise InvalidArgumentError("SQL compilation error: unterminated /* comment.")
            i = end + 2
        elif sql.startswith("$$", i):
            end = sql.find("$$", i + 2)
            if end < 0:
                raise InvalidArgumentError("SQL compilation error: unterminated $$ string.")
            tokens.append(Token(Kind.STRING, sql[i : end + 2], sql[i + 2 : end], i))
            i = end + 2
        elif ch == "'":
            value, j = _read_quoted(sql, i, "'")
            tokens.append(Token(Kind.STRING, sql[i:j], value, i))
            i = j
        elif ch == '"':
            value, j = _read_quoted(sql, i, '"')
            tokens.append(Token(Kind.QUOTED, sql[i:j], value, i))
            i = j
        elif ch == "@":
            j = i + 1
            quoted = False
            while j < n and (quoted or not (sql[j].isspace() or sql[j] in ";,()")):
                if sql[j] == '"':
                    quoted = not quoted
                j += 1
            tokens.append(Token(Kind.STAGE, sql[i:j], sql[i:j], i))
            i = j
        elif ch.isdigit() or (ch in "+-" and i + 1 < n and sql[i + 1].isdigit()):
            j = i + 1
            while j < n and (sql[j].isdigit() or sql[j] == "."):
                j += 1
            tokens.append(Token(Kind.NUMBER, sql[i:j], sql[i:j], i))
            i = j
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            tokens.append(Token(Kind.WORD, sql[i:j], sql[i:j], i))
            i = j
        else:
            for p in _PUNCT:
                if sql.startswith(p, i):
                    tokens.append(Token(Kind.PUNCT, p, p, i))
                    i += len(p)
                    break
            else:
                raise InvalidArgumentError(
                    f"SQL compilation error: unexpected character {ch!r} at position {i}."
                )
    tokens.append(Token(Kind.END, "", "", n))
    return tokens


def _read_quoted(sql: str, start: int, quote: str) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(sql):
        ch = sql[i]
        if ch == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        if ch == "\\" and quote == "'" and i + 1 < len(sql):
            out.append({"n": "\n", "t": "\t"}.get(sql[i + 1], sql[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    what = "string literal" if quote == "'" else "quoted identifier"
    raise InvalidArgumentError(f"SQL compilation error: unterminated {what} starting at position {start}.")


class Cursor:
    """Walks a token list; ``expect_*`` raise SQL compilation errors naming what was found."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = tokenize(sql)
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def at_keyword(self, *words: str) -> bool:
        for k, word in enumerate(words):
            tok = self.peek(k)
            if tok.kind is not Kind.WORD or tok.text.upper() != word:
                return False
        return True

    def accept_keyword(self, *words: str) -> bool:
        if self.at_keyword(*words):
            self.i += len(words)
            return True
        return False

    def expect_keyword(self, *words: str) -> None:
        if not self.accept_keyword(*words):
            self.fail(f"expected {' '.join(words)}")

    def accept_punct(self, p: str) -> bool:
        tok = self.peek()
        if tok.kind is Kind.PUNCT and tok.text == p:
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        if not self.accept_punct(p):
            self.fail(f"expected '{p}'")

    def identifier(self) -> str:
        """One identifier, resolved (unquoted -> upper case)."""
        tok = self.next()
        if tok.kind is Kind.WORD:
            return resolve_identifier(tok.text)
        if tok.kind is Kind.QUOTED:
            if not tok.value:
                self.fail("empty quoted identifier", tok)
            return tok.value
        self.fail("expected an identifier", tok)

    def qualified_name(self, max_parts: int = 3) -> list[str]:
        parts = [self.identifier()]
        while len(parts) < max_parts and self.accept_punct("."):
            parts.append(self.identifier())
        return parts

    def string(self) -> str:
        tok = self.next()
        if tok.kind is not Kind.STRING:
            self.fail("expected a string literal", tok)
        return tok.value

    def value(self) -> str:
        """A property value: a string, number or bare word."""
        tok = self.next()
        if tok.kind in (Kind.STRING, Kind.NUMBER, Kind.WORD, Kind.QUOTED):
            return tok.value
        self.fail("expected a value", tok)

    def end(self) -> None:
        self.accept_punct(";")
        if self.peek().kind is not Kind.END:
            self.fail("unexpected text")

    def fail(self, what: str, tok: Token | None = None) -> NoReturn:
        tok = tok or self.peek()
        found = repr(tok.text) if tok.kind is not Kind.END else "end of statement"
        raise InvalidArgumentError(f"SQL compilation error: {what} at position {tok.pos}, found {found}.")
