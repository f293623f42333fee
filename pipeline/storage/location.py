"""Where a store lives: a local path or an fsspec URL (``s3://...``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import fsspec

FILE_SCHEME = "file://"


@dataclass(frozen=True)
class StoreLocation:
    """A store's address. Credentials and endpoints of remote stores come from the
    environment (e.g. ``AWS_ENDPOINT_URL``), as fsspec reads them.

    A local path is made absolute when the location is made, against this process's
    working directory (and ``~`` expanded): workers of a cluster run in directories of
    their own and receive the location as it is here, never a relative path.
    """

    url: str

    def __post_init__(self) -> None:
        if self.is_local:
            object.__setattr__(self, "url", _absolute(self.url))

    @classmethod
    def of(cls, where: str | os.PathLike[str] | StoreLocation) -> StoreLocation:
        return where if isinstance(where, StoreLocation) else cls(os.fspath(where))

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith(FILE_SCHEME)

    def fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.url)
        return fs, root.rstrip("/")

    def zarr_store(self) -> Any:
        """Something ``zarr.open_group`` and ``xarray`` accept."""
        if self.is_local:
            return self.url.removeprefix(FILE_SCHEME)
        import zarr

        return zarr.storage.FsspecStore.from_url(self.url)

    def sibling(self, suffix: str) -> StoreLocation:
        """``<url><suffix>`` beside this store (staging areas, locks)."""
        return StoreLocation(self.url.rstrip("/") + suffix)

    def exists(self) -> bool:
        """Whether Zarr metadata is here."""
        fs, root = self.fs()
        return bool(fs.exists(f"{root}/zarr.json"))


def _absolute(path: str) -> str:
    """``path`` (or ``file://path``) made absolute, in the same form."""
    scheme = FILE_SCHEME if path.startswith(FILE_SCHEME) else ""
    return scheme + os.path.abspath(os.path.expanduser(path.removeprefix(scheme)))
