"""Rebuild the catalog's search index from its read model: `python -m services.catalog.reindex`.

The index is derived data (services/catalog/search_index.py): this reads every
visible course of the read model and replaces the index's documents in one
commit, so searches answer from the old documents until the new ones are
there. The catalog worker holds the index's writer lock while it runs, and
itself rebuilds a missing index, or one of an older schema, when it starts:
stop the worker first, or just restart it after deleting the index folder.
"""

from __future__ import annotations

import logging
import sys
import time

from services.catalog.store import ReadModel
from shared.config import Settings
from shared.logs import configure_logging
from shared.mongo import connect, database

log = logging.getLogger(__name__)


def main() -> int:
    settings = Settings.from_env(service="catalog")
    configure_logging(settings.school, "catalog-reindex", settings.log_level)
    db = database(connect(settings), settings)
    model = ReadModel(db, settings.search_index_dir)
    model.ensure_indexes()
    started = time.monotonic()
    try:
        count = model.search.rebuild(db)
    except ValueError as exc:
        print(f"cannot write {model.search.path}: {exc}. The catalog worker holds the index while it runs: "
              "stop it first (it also rebuilds a missing index when it starts).", file=sys.stderr)
        return 1
    model.search.close()
    print(f"indexed {count} courses into {model.search.path} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
