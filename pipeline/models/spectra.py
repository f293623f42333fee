"""Spectrum notation, real Jordan matrices and the theory's critical parameter count.

Grammar (MATH.md section 1.1)::

    spectrum := term (',' term)*
    term     := eig [ '^' sizes ]
    eig      := REAL | MAG '@' DEGREES
    sizes    := INT | '[' INT (',' INT)* ']'

Everything here is pure numpy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

MAX_DIMENSION = 32

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TERM_RE = re.compile(
    rf"^\s*(?P<eig>(?P<real>{_NUM})|(?P<mag>{_NUM})\s*@\s*(?P<deg>{_NUM}))\s*"
    r"(?:\^\s*(?P<sizes>\[[^\]]*\]|[^\s\[\]]*))?\s*$"
)
_INT_RE = re.compile(r"^\s*\d+\s*$")


class SpectrumError(ValueError):
    """A spectrum text that does not follow the grammar; the message is one line."""


@dataclass(frozen=True)
class JordanBlock:
    """One real Jordan block on the diagonal of the real Jordan matrix.

    ``m`` is the block size counted in eigenvalues; ``dim`` the real dimension
    (``m`` for a real eigenvalue, ``2 m`` for a complex pair). ``start`` is the
    first row/column index. ``group`` indexes :attr:`Spectrum.groups`.
    """

    start: int
    m: int
    dim: int
    real: float  # the eigenvalue (real case) or its real part a (pair)
    imag: float  # 0 for a real eigenvalue, b > 0 for a pair a +- i b
    group: int

    @property
    def is_pair(self) -> bool:
        return self.dim != self.m

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.dim)


GroupKey = tuple[str, float] | tuple[str, float, float]
"""An eigenvalue group's key: ``("real", value)`` or ``("pair", magnitude, degrees)``."""


@dataclass(frozen=True)
class EigenGroup:
    """All Jordan blocks of one eigenvalue (or one complex pair).

    ``sizes`` are the block sizes ``p_a``; ``multiplicity = sum(sizes)``;
    ``indices`` the coordinates of the (real) generalised eigenspace.
    """

    key: GroupKey
    modulus: float
    is_pair: bool
    sizes: tuple[int, ...]
    indices: tuple[int, ...]

    @property
    def multiplicity(self) -> int:
        return sum(self.sizes)

    @property
    def unstable(self) -> bool:
        return self.modulus >= 1.0

    @property
    def centraliser_dim(self) -> int:
        """Real dimension of the centraliser of this group's Jordan matrix."""
        c = sum(min(p, q) for p in self.sizes for q in self.sizes)
        return 2 * c if self.is_pair else c


@dataclass(frozen=True)
class Term:
    text: str
    real: float | None
    magnitude: float | None
    degrees: float | None
    sizes: tuple[int, ...]


@dataclass(frozen=True)
class Spectrum:
    """A parsed spectrum: its terms, Jordan blocks and eigenvalue groups."""

    text: str
    terms: tuple[Term, ...]
    blocks: tuple[JordanBlock, ...]
    groups: tuple[EigenGroup, ...]

    @property
    def n(self) -> int:
        return sum(b.dim for b in self.blocks)

    @property
    def n_unstable(self) -> int:
        return sum(len(g.indices) for g in self.groups if g.unstable)

    @property
    def spectral_radius(self) -> float:
        return max(g.modulus for g in self.groups)

    @cached_property
    def unstable_indices(self) -> np.ndarray:
        """Coordinates of the eigenvalues with ``|lam| >= 1``, sorted (read-only: cached)."""
        return _frozen([i for g in self.groups if g.unstable for i in g.indices])

    @cached_property
    def stable_indices(self) -> np.ndarray:
        """Coordinates of the eigenvalues with ``|lam| < 1``, sorted (read-only: cached)."""
        return _frozen([i for g in self.groups if not g.unstable for i in g.indices])

    def jordan_matrix(self) -> np.ndarray:
        """The real Jordan matrix (MATH.md section 1.1 layout), float64."""
        n = self.n
        J = np.zeros((n, n))
        for b in self.blocks:
            J[b.start : b.start + b.dim, b.start : b.start + b.dim] = block_matrix(b)
        return J


def _frozen(indices: list[int]) -> np.ndarray:
    out = np.array(sorted(indices), dtype=np.int64)
    out.setflags(write=False)
    return out


def block_matrix(b: JordanBlock) -> np.ndarray:
    """The real Jordan block of ``b`` (``dim x dim``)."""
    if b.dim == b.m:
        return np.diag(np.full(b.m, b.real)) + np.diag(np.ones(b.m - 1), 1)
    R = np.array([[b.real, -b.imag], [b.imag, b.real]])
    return np.asarray(np.kron(np.eye(b.m), R) + np.kron(np.eye(b.m, k=1), np.eye(2)))


def _fail(term: str, why: str) -> SpectrumError:
    return SpectrumError(f"spectrum term {term!r}: {why}")


_GRAMMAR = "allowed: REAL or MAG@DEGREES, optionally ^SIZE or ^[SIZE,...]"


def _parse_sizes(term: str, raw: str | None) -> tuple[int, ...]:
    if raw is None:
        return (1,)
    raw = raw.strip()
    if raw.startswith("["):
        inner = raw[1:-1]
        parts = inner.split(",")
        if any(not _INT_RE.match(p) for p in parts):
            raise _fail(term, "block sizes must be a bracketed list of positive integers, e.g. ^[2,1]")
        sizes = tuple(int(p) for p in parts)
    else:
        if not _INT_RE.match(raw):
            raise _fail(term, "block size must be a positive integer, e.g. ^2 or ^[2,1]")
        sizes = (int(raw),)
    if any(s < 1 for s in sizes):
        raise _fail(term, "block sizes must be positive integers (>= 1)")
    return sizes


def _split_terms(text: str) -> list[str]:
    """Split on the commas that are not inside brackets."""
    pieces: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            pieces.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    pieces.append("".join(cur))
    return pieces


def _parse_term(text: str, piece: str) -> Term:
    term = piece.strip()
    if not term:
        raise SpectrumError(f"spectrum {text!r}: empty term; {_GRAMMAR}")
    mt = _TERM_RE.match(term)
    if mt is None:
        raise _fail(term, _GRAMMAR)
    sizes = _parse_sizes(term, mt.group("sizes"))
    if mt.group("real") is not None:
        value = float(mt.group("real"))
        if not math.isfinite(value):
            raise _fail(term, "eigenvalue must be finite")
        return Term(term, value, None, None, sizes)
    mag, deg = float(mt.group("mag")), float(mt.group("deg"))
    if not (math.isfinite(mag) and mag > 0):
        raise _fail(term, "magnitude of a complex pair must be > 0")
    if not (0.0 < deg < 180.0):
        raise _fail(term, "degrees must lie strictly between 0 and 180")
    return Term(term, None, mag, deg, sizes)


def _eigenvalue(t: Term) -> tuple[GroupKey, float, float, float, bool]:
    """(group key, real part, imaginary part, modulus, is a pair) of a term."""
    if t.real is not None:
        return ("real", t.real + 0.0), t.real, 0.0, abs(t.real), False
    assert t.magnitude is not None and t.degrees is not None
    rad = math.radians(t.degrees)
    return ("pair", t.magnitude, t.degrees), t.magnitude * math.cos(rad), t.magnitude * math.sin(rad), t.magnitude, True


def _layout(terms: list[Term]) -> tuple[tuple[JordanBlock, ...], tuple[EigenGroup, ...]]:
    """Jordan blocks in order of the terms, and the eigenvalue groups they form."""
    blocks: list[JordanBlock] = []
    keys: list[GroupKey] = []
    modulus_of: dict[GroupKey, tuple[float, bool]] = {}
    sizes_of: dict[GroupKey, list[int]] = {}
    indices_of: dict[GroupKey, list[int]] = {}
    start = 0
    for t in terms:
        key, re_, im_, modulus, pair = _eigenvalue(t)
        if key not in modulus_of:
            keys.append(key)
            modulus_of[key], sizes_of[key], indices_of[key] = (modulus, pair), [], []
        gi = keys.index(key)
        for m in t.sizes:
            dim = 2 * m if pair else m
            blocks.append(JordanBlock(start, m, dim, re_, im_, gi))
            sizes_of[key].append(m)
            indices_of[key].extend(range(start, start + dim))
            start += dim
    groups = tuple(
        EigenGroup(k, modulus_of[k][0], modulus_of[k][1], tuple(sizes_of[k]), tuple(indices_of[k])) for k in keys
    )
    return tuple(blocks), groups


def parse_spectrum(text: str) -> Spectrum:
    """Parse a spectrum text; raise :class:`SpectrumError` with a one-line message."""
    if not isinstance(text, str):
        raise SpectrumError(f"spectrum {text!r}: must be a string like '1.0^2, 0.5'")
    if not text.strip():
        raise SpectrumError("spectrum '': empty; " + _GRAMMAR)
    terms = [_parse_term(text, piece) for piece in _split_terms(text)]
    n = sum(s * (1 if t.real is not None else 2) for t in terms for s in t.sizes)
    if n > MAX_DIMENSION:
        raise SpectrumError(f"spectrum {text!r}: total dimension {n} exceeds the maximum {MAX_DIMENSION}")
    blocks, groups = _layout(terms)
    return Spectrum(text, tuple(terms), blocks, groups)


def random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed orthogonal matrix."""
    if n == 0:
        return np.zeros((0, 0))
    Z = rng.standard_normal((n, n))
    Q, R = np.linalg.qr(Z)
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def system_matrix(spectrum: Spectrum, basis: str = "jordan", rng: np.random.Generator | None = None) -> np.ndarray:
    """``J`` (basis ``"jordan"``) or ``Q J Q'`` with ``Q`` Haar orthogonal from ``rng``."""
    J = spectrum.jordan_matrix()
    if basis == "jordan":
        return J
    if basis == "random":
        if rng is None:
            raise ValueError("basis 'random' needs a random generator")
        Q = random_orthogonal(spectrum.n, rng)
        return np.asarray(Q @ J @ Q.T)
    raise ValueError(f"basis {basis!r}: allowed 'jordan', 'random'")


FAMILIES = ("block", "full", "similarity")


def critical_d_theory(spectrum: Spectrum, family: str) -> int:
    """Closed-form ``d*`` of MATH.md section 1.4."""
    unstable = [g for g in spectrum.groups if g.unstable]
    if family == "block":
        return sum((2 if g.is_pair else 1) * g.multiplicity**2 for g in unstable)
    if family == "full":
        return spectrum.n * spectrum.n_unstable
    if family == "similarity":
        return spectrum.n * spectrum.n_unstable - sum(g.centraliser_dim for g in unstable)
    raise ValueError(f"family {family!r}: allowed {', '.join(FAMILIES)}")


def family_dimension(spectrum: Spectrum, family: str) -> int:
    """Dimension ``D`` of the family (MATH.md section 1.3)."""
    if family == "block":
        return sum((2 if g.is_pair else 1) * g.multiplicity**2 for g in spectrum.groups)
    if family == "full":
        return spectrum.n**2
    if family == "similarity":
        return spectrum.n**2 - sum(g.centraliser_dim for g in spectrum.groups)
    raise ValueError(f"family {family!r}: allowed {', '.join(FAMILIES)}")
