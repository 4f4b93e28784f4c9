"""The service's OpenAPI document, as served at ``/api/v1/openapi.json`` and committed as
``docs/openapi.json``. Regenerate it after changing a route or a model with::

    python -m disclosure_ledger.service.openapi docs/openapi.json

and a unit test fails while the committed document differs from the routes. The text is
deterministic (keys sorted, two-space indent, a newline at the end), so its diff shows
only what changed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from disclosure_ledger.service.app import create_app
from disclosure_ledger.service.auth.accounts import AccountStore


def openapi_document() -> dict[str, Any]:
    """The document of the app's routes (no ledger, no accounts are needed to build it)."""
    with tempfile.TemporaryDirectory(prefix="disclosure-ledger-openapi-") as folder:
        app = create_app(None, AccountStore(Path(folder) / "users.sqlite"))
        return app.openapi()


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_openapi(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(openapi_text(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_openapi(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.json")))
