"""Every auth table on one metadata: the only module that imports all the domains' models.

Alembic's environment reads `metadata` from here; `base.py` stays free of domain imports, so no model
module and its base import each other.
"""

from __future__ import annotations

from owr_auth.api_tokens import models as api_tokens
from owr_auth.audit import models as audit
from owr_auth.base import SCHEMA, AuthBase
from owr_auth.email_tokens import models as email_tokens
from owr_auth.invitations import models as invitations
from owr_auth.mail import models as mail
from owr_auth.mfa import models as mfa
from owr_auth.sessions import models as sessions
from owr_auth.users import models as users
from owr_auth.workspaces import models as workspaces

__all__ = ["SCHEMA", "metadata"]

DOMAIN_MODELS = (api_tokens, audit, email_tokens, invitations, mail, mfa, sessions, users, workspaces)
metadata = AuthBase.metadata
