"""asyncgroups: an async client for the Add to Calendar PRO Groups API.

```python
async with GroupsClient() as client:
    key = await client.groups.create(NewGroup("Team events"))
    group = await client.groups.get(key)
```
"""

from . import _public
from ._bulk import BulkProgress, BulkResult, Outcome, check_concurrency
from ._client import GroupsClient
from ._config import DEFAULT_BASE_URL, DEFAULT_RATE_LIMIT
from ._limiter import ClientLimiter, Limiter
from ._retry import RetryPolicy
from ._stats import ClientStats
from ._version import __version__
from .errors import (
    APIError,
    AsyncGroupsError,
    AuthenticationError,
    BadRequestError,
    BulkError,
    ClientStateError,
    ConflictError,
    ConnectError,
    ConnectTimeout,
    LimiterUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    SubscriptionLockedError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from .groups import GroupsResource
from .models import (
    UNSET,
    WRITABLE_FIELDS,
    Group,
    GroupPatch,
    GroupStatus,
    GroupSummary,
    NewGroup,
    Subscription,
    UnsetType,
    validate_prokey,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_RATE_LIMIT",
    "UNSET",
    "WRITABLE_FIELDS",
    "APIError",
    "AsyncGroupsError",
    "AuthenticationError",
    "BadRequestError",
    "BulkError",
    "BulkProgress",
    "BulkResult",
    "ClientLimiter",
    "ClientStateError",
    "ClientStats",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "Group",
    "GroupPatch",
    "GroupStatus",
    "GroupSummary",
    "GroupsClient",
    "GroupsResource",
    "Limiter",
    "LimiterUnavailableError",
    "NewGroup",
    "NotFoundError",
    "Outcome",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeout",
    "RetryPolicy",
    "ServerError",
    "Subscription",
    "SubscriptionLockedError",
    "TransportError",
    "UnexpectedResponseError",
    "UnsetType",
    "ValidationError",
    "__version__",
    "check_concurrency",
    "validate_prokey",
]

_public.publish(globals(), __all__)
