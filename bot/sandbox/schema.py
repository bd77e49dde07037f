"""Shopify's Admin GraphQL schema of the version orderbot asks for (bot/shopify/version.py), loaded from the SDL file
beside this module (admin-<version>.graphql) and cached."""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import tempfile
from pathlib import Path

import graphql
from graphql import GraphQLSchema, build_client_schema, build_schema, introspection_from_schema

from bot.shopify.version import API_VERSION

SCHEMA_PATH = Path(__file__).with_name(f"admin-{API_VERSION}.graphql")


@functools.cache
def load_schema() -> GraphQLSchema:
    """Shopify's Admin schema, built once per process.

    `build_schema` on the 3.5 MB SDL takes about 4.5 s, mostly parsing. Its introspection result, cached as JSON in the
    temp dir (keyed by the SDL's hash and graphql-core's version), rebuilds the same schema in about 1.3 s. JSON, unlike
    a pickle, cannot run code if someone else writes the file.
    """
    sdl = SCHEMA_PATH.read_bytes()
    key = hashlib.sha256(sdl + graphql.__version__.encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"orderbot-shopify-admin-schema-{key}.json"
    try:
        schema = build_client_schema(json.loads(cache.read_bytes()))
    except (OSError, ValueError):
        schema = build_schema(sdl.decode())
        _write_atomically(cache, json.dumps(introspection_from_schema(schema)).encode())
    # The schema lives as long as the process: freeze it (and what else is alive now) out of the garbage collector,
    # or every full collection walks its objects, 125 ms a time, which showed as event-loop stalls.
    gc.collect()
    gc.freeze()
    return schema


def _write_atomically(path: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    os.replace(tmp, path)
