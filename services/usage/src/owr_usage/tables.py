"""Every usage table on one metadata: the only module that imports all the domains' models.

Alembic's environment reads `metadata` from here; `base.py` stays free of domain imports, so no model
module and its base import each other.
"""

from __future__ import annotations

from owr_usage.accounts import models as accounts
from owr_usage.alerts import models as alerts
from owr_usage.anomalies import models as anomalies
from owr_usage.base import SCHEMA, UsageBase
from owr_usage.budgets import models as budgets
from owr_usage.channels import models as channels
from owr_usage.erasure import models as erasure
from owr_usage.key_actions import models as key_actions
from owr_usage.rollups import models as rollups
from owr_usage.snapshots import models as snapshots

__all__ = ["SCHEMA", "metadata"]

DOMAIN_MODELS = (accounts, alerts, anomalies, budgets, channels, erasure, key_actions, rollups, snapshots)
metadata = UsageBase.metadata
