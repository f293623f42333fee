"""Where a store lives: a local path or an fsspec URL (``s3://...``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import fsspec


@dataclass(frozen=True)
class StoreLocation:
    """A store's address. Credentials and endpoints of remote stores come from the
    environment (e.g. ``AWS_ENDPOINT_URL``), as fsspec reads them."""

    url: str

    @classmethod
    def of(cls, where: str | os.PathLike[str] | StoreLocation) -> StoreLocation:
        return where if isinstance(where, StoreLocation) else cls(os.fspath(where))

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    def fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.url)
        return fs, root.rstrip("/")

    def zarr_store(self) -> Any:
        """Something ``zarr.open_group`` and ``xarray`` accept."""
        if self.is_local:
            return self.url.removeprefix("file://")
        import zarr

        return zarr.storage.FsspecStore.from_url(self.url)

    def sibling(self, suffix: str) -> StoreLocation:
        """``<url><suffix>`` beside this store (staging areas, locks)."""
        return StoreLocation(self.url.rstrip("/") + suffix)

    def exists(self) -> bool:
        """Whether Zarr metadata is here."""
        fs, root = self.fs()
        return bool(fs.exists(f"{root}/zarr.json"))
