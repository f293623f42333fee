"""Store locations: a local path is absolute from the moment it is named, so a worker in
another working directory opens the same store as the driver."""

from __future__ import annotations

import os
import pickle

import pytest

from pipeline.storage.location import StoreLocation


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("data/quickstart.zarr", "{cwd}/data/quickstart.zarr"),
        ("./cubes/../q.zarr", "{cwd}/q.zarr"),
        ("/abs/q.zarr", "/abs/q.zarr"),
        ("file://data/q.zarr", "file://{cwd}/data/q.zarr"),
        ("file:///abs/q.zarr", "file:///abs/q.zarr"),
        ("~/q.zarr", "{home}/q.zarr"),
        ("s3://bucket/cubes/q.zarr", "s3://bucket/cubes/q.zarr"),
    ],
)
def test_local_paths_are_resolved_when_named(tmp_path, monkeypatch, given, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    location = StoreLocation(given)
    assert location.url == expected.format(cwd=tmp_path, home=tmp_path / "home")
    assert location.sibling(".lock").url == location.url + ".lock"


def test_a_location_sent_to_a_worker_elsewhere_stays_where_it_was_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sent = pickle.dumps(StoreLocation("data/q.zarr"))
    (tmp_path / "worker").mkdir()
    monkeypatch.chdir(tmp_path / "worker")  # as a worker started in another folder unpickles it
    received = pickle.loads(sent)
    assert received.url == str(tmp_path / "data" / "q.zarr")
    assert received.fs()[1] == str(tmp_path / "data" / "q.zarr")
    assert received.zarr_store() == str(tmp_path / "data" / "q.zarr")
    assert os.getcwd() == str(tmp_path / "worker")
