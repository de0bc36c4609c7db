"""Every keys table on one metadata: the only module that imports all the domains' models.

Alembic's environment reads `metadata` from here; `base.py` stays free of domain imports, so no model
module and its base import each other.
"""

from __future__ import annotations

from owr_keys.audit import models as audit
from owr_keys.base import SCHEMA, KeysBase
from owr_keys.erasure import models as erasure
from owr_keys.keys import models as keys

__all__ = ["SCHEMA", "metadata"]

DOMAIN_MODELS = (audit, erasure, keys)
metadata = KeysBase.metadata
